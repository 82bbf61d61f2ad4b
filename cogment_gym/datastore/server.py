"""``serve_datalog()``: a datalog service and the datastore over what it records, on one port
(as Cogment's ``cogment services datastore`` serves ``DatalogSP`` and ``TrialDatastoreSP``);
and :class:`TrialRecorder`, the same recording in-process, for an embedded Orchestrator.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import grpc

from cogment_gym._proto.cogment.api import datalog_pb2_grpc, trial_datastore_pb2_grpc
from cogment_gym.datastore.datalog_service import DatalogServicer
from cogment_gym.datastore.datastore_service import TrialDatastoreServicer
from cogment_gym.datastore.store import TrialStore
from cogment_gym.protocol.security import NO_SECURITY, Security
from cogment_gym.protocol.serving import BackgroundServer, serve_until_signal

__all__ = ["DatalogServer", "TrialRecorder", "serve_datalog", "serve_datalog_forever"]

logger = logging.getLogger(__name__)


class DatalogServer(BackgroundServer):
    """A running datalog + datastore service writing trial files into a directory.

    Attributes:
        endpoint: give it as the trial params' ``datalog.endpoint`` (and to the SDK's
            ``get_datastore``), e.g. ``"grpc://127.0.0.1:40123"``.
        port: the bound TCP port (0 for a unix socket).
        store: the :class:`~cogment_gym.datastore.TrialStore` of the directory.
    """

    def __init__(self, store: TrialStore, address: str, *, security: Security = NO_SECURITY) -> None:
        self.store = store
        self.datalog = DatalogServicer(store)
        super().__init__(address, thread_name="cogment-gym-datalog", security=security)

    def _add_services(self, server: grpc.aio.Server) -> None:
        datalog_pb2_grpc.add_DatalogSPServicer_to_server(self.datalog, server)
        trial_datastore_pb2_grpc.add_TrialDatastoreSPServicer_to_server(TrialDatastoreServicer(self.store), server)

    def _started(self, endpoint: str) -> None:
        logger.info("recording trials into %s; datalog and datastore at %s", self.store.directory, endpoint)

    def _stopped_serving(self) -> None:
        # Streams cancelled by the stop ended their files with the reason; anything left is
        # closed without an END so that it reads as interrupted, never as complete.
        self.store.abandon_all()

    def __repr__(self) -> str:
        return f"DatalogServer({str(self.store.directory)!r}, endpoint={self.endpoint!r})"


def serve_datalog(
    directory: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0, unix_socket: str | None = None,
    security: Security | None = None,
) -> DatalogServer:
    """Record the trials Orchestrators stream here (``cogmentAPI.DatalogSP``) into ``directory``,
    one file per trial, and serve them back (``cogmentAPI.TrialDatastoreSP``); returns at once
    (a background thread serves until ``stop()``).

    Args:
        directory: where trial files go (created if missing; existing files are served too).
        host, port: TCP address to bind; port 0 lets the OS choose (see ``.endpoint``).
        unix_socket: bind this unix socket path instead of TCP.
        security: TLS, client certificates (mTLS) and a token required on every call, for the
            datalog and the datastore alike (:class:`~cogment_gym.protocol.security.Security`;
            default: plaintext, no token). See ``docs/security.md``.

    Example:
        >>> import tempfile, cogment_gym
        >>> from cogment_gym.datastore import serve_datalog
        >>> with serve_datalog(tempfile.mkdtemp()) as datalog:
        ...     env = cogment_gym.CogmentEnv("CartPole-v1", datalog=datalog.endpoint)
        ...     _ = env.reset(seed=1); env.close()
    """
    store = TrialStore(directory)
    address = f"unix:{os.path.abspath(unix_socket)}" if unix_socket else f"{host}:{port}"
    return DatalogServer(store, address, security=security or NO_SECURITY)


def serve_datalog_forever(directory: str | os.PathLike[str], **kwargs: Any) -> None:
    """Like :func:`serve_datalog`, but blocks until SIGINT/SIGTERM."""
    serve_until_signal(serve_datalog(directory, **kwargs))


class TrialRecorder:
    """Records trials of an embedded Orchestrator into a directory, without a port.

    Give it to a facade (``CogmentEnv(..., datalog=TrialRecorder("out"))``, or a
    ``pathlib.Path``, which makes one), or register :attr:`run_trial_datalog` with an
    Orchestrator's connector (``connector.add_local_datalog(name, recorder.run_trial_datalog)``)
    and name its ``local://`` endpoint in the trial params' ``datalog.endpoint``. The same
    servicer as :func:`serve_datalog`'s, reached in-process: samples are handed over as objects
    and serialized once, into the file.

    Attributes:
        store: the :class:`~cogment_gym.datastore.TrialStore` of the directory.
        name: the name it registers under (``local://<name>``).
    """

    def __init__(self, directory: str | os.PathLike[str], *, name: str = "datalog") -> None:
        self.store = TrialStore(directory)
        self.name = name
        self._servicer = DatalogServicer(self.store)

    @property
    def directory(self) -> Any:
        return self.store.directory

    async def run_trial_datalog(self, request_iterator: Any, context: Any) -> None:
        """``DatalogSP.RunTrialDatalog`` for a :class:`~cogment_gym.protocol.LocalCall`."""
        await self._servicer.RunTrialDatalog(request_iterator, context)

    def __repr__(self) -> str:
        return f"TrialRecorder({str(self.store.directory)!r})"
