"""Hand-written equivalent of what ``cogment generate`` makes from a cogment.yaml like:

    import:
      proto: [cogment_gym/v1/env.proto]
    environment:
      config_type: cogment_gym.v1.EnvConfig
    trial:
      config_type: cogment_gym.v1.EnvConfig
    actor_classes:
      - name: player
        action: {space: cogment_gym.v1.ActionPayload}
        observation: {space: cogment_gym.v1.ObservationPayload}
        config_type: cogment_gym.v1.ActorConfig

The SDK reads ``actor_classes`` (an ``ActorClassList`` of ``ActorClass``: name, config_type,
action_space, observation_space), ``trial.config_type`` and ``environment.config_type``
(see cogment/generate.py in the SDK). Runs only inside the SDK venv (see tests/interop/sdk.py),
where our payload schema is importable as ``cogment_gym_v1``.
"""

from types import SimpleNamespace

import cogment as _cog
from cogment_gym_v1 import env_pb2 as env_pb

_player_class = _cog.actor.ActorClass(
    name="player",
    config_type=env_pb.ActorConfig,
    action_space=env_pb.ActionPayload,
    observation_space=env_pb.ObservationPayload,
)

actor_classes = _cog.actor.ActorClassList(_player_class)

# Any message would do: only pre-trial hooks and datalogs look at the trial config.
trial = SimpleNamespace(config_type=env_pb.EnvConfig)

environment = SimpleNamespace(config_type=env_pb.EnvConfig)
