"""The same-host unix socket of an environment server: where it lives, and how a directory a
killed server left behind is removed.

A server on TCP also listens on ``<temp dir>/cogment-gym-XXXX/env.sock``, in a private directory
of its own (see :class:`~cogment_gym.adapters.server.EnvServer`). The server removes it when it
stops, and on SIGTERM (:func:`track_socket_directory`); a parent whose worker was killed
(``serve(..., workers=K)``) removes it with :func:`remove_socket_directory`.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

from cogment_gym.protocol import parse_endpoint

__all__ = ["SOCKET_DIR_PREFIX", "SOCKET_NAME", "remove_socket_directory", "track_socket_directory", "untrack_socket_directory"]

# The same-host socket: <temp dir>/cogment-gym-XXXX/env.sock, a private directory per server.
SOCKET_DIR_PREFIX, SOCKET_NAME = "cogment-gym-", "env.sock"

# Same-host socket directories of this process's running servers, removed by the SIGTERM handler.
_socket_directories: set[str] = set()
_directories_lock = threading.Lock()


def _on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM while SIGTERM did what it does by default: remove the running servers' socket
    directories, then let the signal do what it would have done (end the process, killed by
    SIGTERM)."""
    for directory in list(_socket_directories):
        shutil.rmtree(directory, ignore_errors=True)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def track_socket_directory(directory: str) -> None:
    """Remove ``directory`` on SIGTERM too. The handler is set only where it changes nothing
    else: in the main thread, while SIGTERM has its default action (a handler of the
    application's, such as ``serve_forever``'s or the CLI's, stops the server itself)."""
    with _directories_lock:
        _socket_directories.add(directory)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def untrack_socket_directory(directory: str) -> None:
    """Remove ``directory`` now (its server stopped); the last one gone, SIGTERM gets its
    default action back (when this runs in the main thread)."""
    shutil.rmtree(directory, ignore_errors=True)
    with _directories_lock:
        _socket_directories.discard(directory)
        last = not _socket_directories
    if last and threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


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
