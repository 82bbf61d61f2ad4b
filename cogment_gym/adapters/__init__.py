"""Environment side: Gymnasium environments served as ``cogmentAPI.EnvironmentSP``."""

from cogment_gym.adapters.hosting import EnvHost, Implementation, UnknownImplementationError
from cogment_gym.adapters.server import EnvServer, serve, serve_forever
from cogment_gym.adapters.service import EnvironmentServicer, EnvSpecServicer
from cogment_gym.adapters.workers import EnvSourceNotPicklableError, EnvWorkers, WorkerStartError

__all__ = [
    "EnvHost",
    "EnvServer",
    "EnvSourceNotPicklableError",
    "EnvSpecServicer",
    "EnvWorkers",
    "EnvironmentServicer",
    "Implementation",
    "UnknownImplementationError",
    "WorkerStartError",
    "serve",
    "serve_forever",
]
