"""A pure-Python Orchestrator speaking the Cogment 2.x API, embedded or standalone."""

from cogment_gym.orchestrator.orchestrator import Orchestrator
from cogment_gym.orchestrator.services import ClientActorServicer, TrialLifecycleServicer
from cogment_gym.orchestrator.transports import Connector
from cogment_gym.orchestrator.trial import Trial, TrialState

__all__ = ["ClientActorServicer", "Connector", "Orchestrator", "Trial", "TrialLifecycleServicer", "TrialState"]
