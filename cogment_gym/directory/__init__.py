"""A Cogment Directory (``cogmentAPI.DirectorySP``): where services register and
``cogment://discover`` endpoints are resolved. Its client is
:class:`cogment_gym.protocol.directory.DirectoryClient`."""

from cogment_gym.directory.server import DEFAULT_DIRECTORY_PORT, DirectoryServer, run_directory, serve_directory
from cogment_gym.directory.service import DirectoryServicer, ServiceTable

__all__ = ["DEFAULT_DIRECTORY_PORT", "DirectoryServer", "DirectoryServicer", "ServiceTable", "run_directory", "serve_directory"]
