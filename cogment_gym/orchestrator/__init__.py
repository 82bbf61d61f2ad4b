"""A pure-Python Orchestrator speaking the Cogment 2.x API, embedded or standalone."""

from cogment_gym.orchestrator.admission import EndpointPolicy
from cogment_gym.orchestrator.datalog import DatalogWriter
from cogment_gym.orchestrator.orchestrator import Orchestrator
from cogment_gym.orchestrator.params import (
    DEFAULT_MAX_INACTIVITY,
    dump_trial_params,
    load_trial_params,
    parse_trial_params,
    trial_params_from_dict,
    trial_params_to_dict,
)
from cogment_gym.orchestrator.services import ClientActorServicer, TrialLifecycleServicer
from cogment_gym.orchestrator.trial import TrialState

__all__ = [
    "DEFAULT_MAX_INACTIVITY",
    "ClientActorServicer",
    "DatalogWriter",
    "EndpointPolicy",
    "Orchestrator",
    "TrialState",
    "dump_trial_params",
    "load_trial_params",
    "parse_trial_params",
    "trial_params_from_dict",
    "trial_params_to_dict",
]
