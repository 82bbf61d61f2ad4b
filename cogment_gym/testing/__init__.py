"""Checkers and test environments shipped for users of cogment_gym.

- :func:`check_bridge_matches`: an environment stepped directly and through a bridge
  (e.g. :class:`cogment_gym.CogmentEnv`) with the same seeds and actions must match exactly.
- :func:`assert_data_equal`: the strict recursive comparison it uses.
- :func:`check_environment` / :class:`EnvironmentCompliance`: the compliance check of a served
  environment (handshake, spec, reset/step semantics, errors, deadlines), also
  ``cogment-gym check ENDPOINT``.
- Test environments: :class:`CompositeSpacesEnv` (registered with Gymnasium as
  ``cogment_gym/CompositeSpaces-v0`` when this package is imported; ``import cogment_gym``
  alone registers nothing), :class:`CountingEnv`, :class:`RaisingEnv`, :class:`HangingEnv`
  (``cogment_gym/Hanging-v0``).

Example:
    >>> import cogment_gym
    >>> from cogment_gym.testing import COMPOSITE_ENV_ID, check_bridge_matches
    >>> bridged = cogment_gym.CogmentEnv(COMPOSITE_ENV_ID)
    >>> check_bridge_matches(COMPOSITE_ENV_ID, bridged, seeds=[1, 2], canonical=False).episodes
    2
    >>> bridged.close()
"""

from cogment_gym.testing.compliance import PROPERTIES, ComplianceReport, EnvironmentCompliance, PropertyResult, check_environment
from cogment_gym.testing.env_match import MatchReport, assert_data_equal, canonical_value, check_bridge_matches
from cogment_gym.testing.envs import (
    COMPOSITE_ENV_ID,
    CompositeSpacesEnv,
    CountingEnv,
    HANGING_ENV_ID,
    HangingEnv,
    InjectedFault,
    RaisingEnv,
    StepCounter,
    register_envs,
)

__all__ = [
    "COMPOSITE_ENV_ID",
    "ComplianceReport",
    "EnvironmentCompliance",
    "PROPERTIES",
    "PropertyResult",
    "check_environment",
    "CompositeSpacesEnv",
    "CountingEnv",
    "HANGING_ENV_ID",
    "HangingEnv",
    "InjectedFault",
    "MatchReport",
    "RaisingEnv",
    "StepCounter",
    "assert_data_equal",
    "canonical_value",
    "check_bridge_matches",
    "register_envs",
]

register_envs()
