"""The same-host unix socket of an environment server: where it lives, and how a directory a
killed server left behind is removed.

A server on TCP also listens on ``<temp dir>/cogment-gym-XXXX/env.sock``, in a private directory
of its own (see :class:`~cogment_gym.adapters.server.EnvServer`). The server removes it when it
stops; a parent whose worker was killed (``serve(..., workers=K)``) removes it with
:func:`remove_socket_directory`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cogment_gym.protocol import parse_endpoint

__all__ = ["SOCKET_DIR_PREFIX", "SOCKET_NAME", "remove_socket_directory"]

# The same-host socket: <temp dir>/cogment-gym-XXXX/env.sock, a private directory per server.
SOCKET_DIR_PREFIX, SOCKET_NAME = "cogment-gym-", "env.sock"


def remove_socket_directory(local_endpoint: str) -> None:
    """Remove the directory of a server's same-host socket (``EnvServer.local_endpoint``) that
    its process could not remove (killed). Only a directory such a server made is touched:
    ``cogment-gym-*`` holding at most ``env.sock``."""
    if not local_endpoint.startswith("unix:"):
        return
    directory = Path(parse_endpoint(local_endpoint).address).parent
    try:
        if directory.name.startswith(SOCKET_DIR_PREFIX) and {p.name for p in directory.iterdir()} <= {SOCKET_NAME}:
            shutil.rmtree(directory, ignore_errors=True)
    except OSError:  # already gone
        pass
