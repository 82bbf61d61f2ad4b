"""What one worker process of :class:`~cogment_gym.adapters.workers.EnvWorkers` runs: read the
spec its parent sends, serve it (an :class:`~cogment_gym.adapters.server.EnvServer`), report the
endpoint, serve until the parent asks to stop or is gone.

The parent side (``workers.py``) starts ``python -c`` with a bootstrap that imports this module
once ``sys.path`` is the parent's; nothing imports it in the parent.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sys
import traceback
from multiprocessing.connection import Connection

import gymnasium as gym

from cogment_gym.adapters.hosting import EnvHost
from cogment_gym.adapters.server import EnvServer
from cogment_gym.adapters.workers import DEFAULT_START_TIMEOUT, PARENT_CHECK_INTERVAL, WorkerSpec

__all__ = ["worker_entry"]

logger = logging.getLogger(__name__)


def worker_entry(conn: Connection, argv: list[str]) -> None:
    # SIGINT is ignored (see _BOOTSTRAP): a Ctrl-C in a terminal signals the whole process
    # group, and the parent decides when workers stop. SIGTERM (the parent's second try) exits
    # through the server's stop, which also removes its same-host socket's directory.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    index, address, parent_pid = int(argv[0]), argv[1], int(argv[2])
    sys.exit(_worker_main(conn, index, address, parent_pid))


def _worker_main(conn: Connection, index: int, address: str, parent_pid: int) -> int:
    """A worker process: read the spec, serve, report, wait for ``stop`` / EOF / the parent's end, stop."""
    try:
        if not conn.poll(DEFAULT_START_TIMEOUT):
            return 1  # the parent never sent the spec
        spec: WorkerSpec = pickle.loads(conn.recv_bytes())
        for gym_spec in spec.gym_specs:
            if gym_spec.id not in gym.registry:
                gym.registry[gym_spec.id] = gym_spec
        host = EnvHost(spec.env, spec.env_kwargs, api=spec.api, max_agents=spec.max_agents, env_threads=spec.env_threads)
        try:
            server = EnvServer(host, address, servicer_options=spec.servicer_options, local_socket=spec.local_socket,
                               security=spec.security)
        except BaseException:
            host.close()
            raise
    except BaseException as err:
        _report_failure(conn, err)
        return 1
    logger.debug("env worker %d serving %s at %s", index, list(server.host.implementations), server.endpoint)
    grace: float | None = 0.0
    try:
        conn.send(("ready", server.endpoint, list(server.host.implementations), server.local_endpoint))
        grace = _wait_for_stop(conn, parent_pid)
    except (EOFError, OSError):  # the parent is gone
        pass
    finally:
        server.stop(grace)
        conn.close()
    return 0


def _report_failure(conn: Connection, err: BaseException) -> None:
    try:
        conn.send(("failed", type(err).__name__, str(err), traceback.format_exc()))
    except (OSError, EOFError):  # the parent is gone: nobody to tell
        pass
    finally:
        conn.close()


def _wait_for_stop(conn: Connection, parent_pid: int) -> float | None:
    """Block until the parent asks to stop (returns its grace period) or is gone (returns 0)."""
    while True:
        try:
            if conn.poll(PARENT_CHECK_INTERVAL):
                message = conn.recv()
                if isinstance(message, tuple) and message and message[0] == "stop":
                    grace: float | None = message[1]
                    return grace
                logger.warning("env worker: unexpected message from the parent ignored: %r", message)
                continue
        except (EOFError, OSError):  # the parent closed its end, or died
            return 0.0
        if os.getppid() != parent_pid:  # the parent died: this process was re-parented
            return 0.0
