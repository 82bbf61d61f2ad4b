"""Replies to the ``Version`` and ``Status`` calls every Cogment service has."""

from __future__ import annotations

import grpc

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym._version import __version__

__all__ = ["COGMENT_API_VERSION", "status_reply", "version_info"]

# The Cogment release whose API (cogmentAPI) cogment_gym speaks.
COGMENT_API_VERSION = "2.22.0"


def version_info() -> common_pb2.VersionInfo:
    return common_pb2.VersionInfo(
        versions=[
            common_pb2.VersionInfo.Version(name="cogment", version=COGMENT_API_VERSION),
            common_pb2.VersionInfo.Version(name="cogment-api", version=COGMENT_API_VERSION),
            common_pb2.VersionInfo.Version(name="grpc", version=grpc.__version__),
            common_pb2.VersionInfo.Version(name="cogment_gym", version=__version__),
        ]
    )


def status_reply(request: common_pb2.StatusRequest, load: float = 0.0) -> common_pb2.StatusReply:
    """Empty ``names`` gives an empty reply; ``"*"`` or ``"overall_load"`` gives the load."""
    reply = common_pb2.StatusReply()
    if "*" in request.names or "overall_load" in request.names:
        reply.statuses["overall_load"] = f"{load:g}"
    return reply
