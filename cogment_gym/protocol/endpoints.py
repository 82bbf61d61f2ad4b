"""Endpoints as Cogment writes them.

- ``grpc://host:port``: a gRPC server over TCP.
- ``unix:///path/to/socket`` (or ``unix:/path``): a gRPC server on a unix socket.
- ``cogment://client``: the actor is a client actor; it connects to the Orchestrator itself.
- ``local://name``: a component living in the same process as the Orchestrator, connected
  directly (cogment_gym only; never sent to another process).
- ``cogment://discover...``: looked up in a Cogment Directory first
  (:mod:`cogment_gym.protocol.directory`); :func:`parse_endpoint` refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass

from cogment_gym.errors import EndpointError

__all__ = ["CLIENT_ENDPOINT", "Endpoint", "parse_endpoint"]

CLIENT_ENDPOINT = "cogment://client"


@dataclass(frozen=True)
class Endpoint:
    """A parsed endpoint. ``scheme`` is ``grpc``, ``unix``, ``client`` or ``local``."""

    scheme: str
    address: str  # host:port, socket path, or local name

    @property
    def grpc_target(self) -> str:
        """The target string grpc channels take (``host:port`` or ``unix:/path``)."""
        if self.scheme == "grpc":
            return self.address
        if self.scheme == "unix":
            return f"unix:{self.address}"
        raise EndpointError(f"endpoint {self} is not reached over gRPC")

    def __str__(self) -> str:
        if self.scheme == "client":
            return CLIENT_ENDPOINT
        if self.scheme == "unix":
            return f"unix://{self.address}"
        return f"{self.scheme}://{self.address}"


def parse_endpoint(text: str) -> Endpoint:
    """Parse an endpoint string.

    Example:
        >>> parse_endpoint("grpc://127.0.0.1:9000").grpc_target
        '127.0.0.1:9000'
    """
    if not isinstance(text, str):
        raise EndpointError(f"an endpoint must be a str such as 'grpc://127.0.0.1:9000', got {text!r}")
    if text == CLIENT_ENDPOINT:
        return Endpoint("client", "")
    if text.startswith("grpc://"):
        address = text[len("grpc://") :].rstrip("/")
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise EndpointError(f"endpoint {text!r} needs a host and a port, as in 'grpc://127.0.0.1:9000'")
        return Endpoint("grpc", address)
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        path = path[2:] if path.startswith("//") else path
        if not path:
            raise EndpointError(f"endpoint {text!r} needs a socket path, as in 'unix:///tmp/env.sock'")
        return Endpoint("unix", path)
    if text.startswith("local://") and len(text) > len("local://"):
        return Endpoint("local", text[len("local://") :])
    if text.lower().startswith("cogment://discover"):
        raise EndpointError(
            f"endpoint {text!r} is found through a Cogment Directory: give the Orchestrator (or facade) "
            "a directory (--directory_endpoint, COGMENT_DIRECTORY_ENDPOINT), or a grpc:// or unix: endpoint"
        )
    raise EndpointError(
        f"unknown endpoint {text!r}; expected 'grpc://host:port', 'unix:///path', or 'cogment://client'"
    )
