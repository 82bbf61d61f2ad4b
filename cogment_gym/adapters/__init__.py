"""Environment side: Gymnasium environments served as ``cogmentAPI.EnvironmentSP``."""

from cogment_gym.adapters.hosting import EnvHost, Implementation
from cogment_gym.adapters.server import EnvServer, serve, serve_forever
from cogment_gym.adapters.service import EnvironmentServicer, EnvSpecServicer
from cogment_gym.adapters.workers import EnvWorkers

__all__ = [
    "EnvHost",
    "EnvServer",
    "EnvSpecServicer",
    "EnvWorkers",
    "EnvironmentServicer",
    "Implementation",
    "serve",
    "serve_forever",
]
