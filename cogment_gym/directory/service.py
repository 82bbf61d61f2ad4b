"""``cogmentAPI.DirectorySP``: services say where they are; the Orchestrator, clients and the
official SDK look them up.

A registration is kept until it is deregistered (or the directory stops): there are no health
checks, so every service of ours deregisters itself when it stops. An inquiry by details returns
every registration of that type having all the properties asked for, the most recent first (a
restarted service registers again at its new address, and the first answer is the one used).
A registration made with an ``authentication-token`` is seen and removed only with that token.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
from dataclasses import dataclass
from typing import Any, AsyncIterator

from cogment_gym._proto.cogment.api import common_pb2, directory_pb2, directory_pb2_grpc
from cogment_gym.protocol import status_reply, version_info
from cogment_gym.protocol.directory import AUTHENTICATION_METADATA
from cogment_gym.protocol.metadata import metadata_value

__all__ = ["DirectoryServicer", "ServiceTable"]

logger = logging.getLogger(__name__)

Protocol = directory_pb2.ServiceEndpoint


@dataclass
class _Entry:
    data: directory_pb2.FullServiceData
    secret: str
    token: str


class ServiceTable:
    """The registrations of one directory (thread-safe: read by tests and the CLI from other threads)."""

    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, request: directory_pb2.RegisterRequest, token: str) -> directory_pb2.RegisterReply:
        problem = _check(request)
        if problem:
            return directory_pb2.RegisterReply(status=directory_pb2.RegisterReply.FAILED, error_msg=problem)
        with self._lock:
            service_id = next(self._ids)
            data = directory_pb2.FullServiceData(endpoint=request.endpoint, service_id=service_id, details=request.details, permanent=request.permanent)
            entry = _Entry(data, secrets.token_hex(16), token)
            self._entries[service_id] = entry
        logger.info("registered service %d: %s at %s:%d %s", service_id, directory_pb2.ServiceType.Name(request.details.type),
                    request.endpoint.host, request.endpoint.port, dict(request.details.properties))
        return directory_pb2.RegisterReply(status=directory_pb2.RegisterReply.OK, service_id=service_id, secret=entry.secret)

    def remove(self, request: directory_pb2.DeregisterRequest, token: str) -> directory_pb2.DeregisterReply:
        with self._lock:
            entry = self._entries.get(request.service_id)
            if entry is None or entry.token != token:
                problem = f"no service {request.service_id} is registered" + (" with this authentication token" if entry is not None else "")
            elif entry.secret != request.secret:
                problem = f"the secret does not match the one service {request.service_id} was given"
            else:
                del self._entries[request.service_id]
                problem = ""
        if problem:
            return directory_pb2.DeregisterReply(status=directory_pb2.DeregisterReply.FAILED, error_msg=problem)
        logger.info("deregistered service %d", request.service_id)
        return directory_pb2.DeregisterReply(status=directory_pb2.DeregisterReply.OK)

    def find(self, request: directory_pb2.InquireRequest, token: str) -> list[directory_pb2.FullServiceData]:
        with self._lock:
            entries = [e for e in self._entries.values() if e.token in ("", token)]
        if request.WhichOneof("inquiry") == "service_id":
            return [e.data for e in entries if e.data.service_id == request.service_id]
        wanted = request.details
        found = [
            e.data
            for e in entries
            if e.data.details.type == wanted.type and all(e.data.details.properties.get(k) == v for k, v in wanted.properties.items())
        ]
        return sorted(found, key=lambda d: d.service_id, reverse=True)  # the most recent first

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def entries(self) -> list[directory_pb2.FullServiceData]:
        """Every registration, oldest first."""
        with self._lock:
            return [e.data for e in self._entries.values()]


def _check(request: directory_pb2.RegisterRequest) -> str:
    endpoint = request.endpoint
    if request.details.type == directory_pb2.UNKNOWN_SERVICE:
        return "the service type is missing (UNKNOWN_SERVICE)"
    if endpoint.protocol in (Protocol.GRPC, Protocol.GRPC_SSL):
        if not endpoint.host or endpoint.port == 0:
            return f"a gRPC endpoint needs a host and a port, got {endpoint.host!r}:{endpoint.port}"
    elif endpoint.protocol == Protocol.COGMENT:
        if endpoint.host != "client":
            return f"a cogment endpoint can only be cogment://client, got host {endpoint.host!r}"
    else:
        return "the endpoint protocol is missing (UNKNOWN)"
    return ""


class DirectoryServicer(directory_pb2_grpc.DirectorySPServicer):
    """``DirectorySP`` over a :class:`ServiceTable`."""

    def __init__(self, table: ServiceTable | None = None) -> None:
        self.table = table if table is not None else ServiceTable()

    @staticmethod
    def _token(context: Any) -> str:
        return metadata_value(context.invocation_metadata(), AUTHENTICATION_METADATA) or ""

    async def Register(self, request_iterator: AsyncIterator[directory_pb2.RegisterRequest], context: Any) -> AsyncIterator[directory_pb2.RegisterReply]:
        token = self._token(context)
        async for request in request_iterator:
            yield self.table.add(request, token)

    async def Deregister(self, request_iterator: AsyncIterator[directory_pb2.DeregisterRequest], context: Any) -> AsyncIterator[directory_pb2.DeregisterReply]:
        token = self._token(context)
        async for request in request_iterator:
            yield self.table.remove(request, token)

    async def Inquire(self, request: directory_pb2.InquireRequest, context: Any) -> AsyncIterator[directory_pb2.InquireReply]:
        for data in self.table.find(request, self._token(context)):
            yield directory_pb2.InquireReply(data=data)

    async def Version(self, request: common_pb2.VersionRequest, context: Any) -> common_pb2.VersionInfo:
        return version_info()

    async def Status(self, request: common_pb2.StatusRequest, context: Any) -> common_pb2.StatusReply:
        return status_reply(request, load=float(len(self.table)))
