"""Environment side: Gymnasium environments served as ``cogmentAPI.EnvironmentSP``."""

from cogment_gym.adapters.hosting import EnvHost, Implementation, UnknownImplementationError
from cogment_gym.adapters.server import EnvServer, serve, serve_forever
from cogment_gym.adapters.service import EnvironmentServicer, EnvSpecServicer

__all__ = [
    "EnvHost",
    "EnvServer",
    "EnvSpecServicer",
    "EnvironmentServicer",
    "Implementation",
    "UnknownImplementationError",
    "serve",
    "serve_forever",
]
