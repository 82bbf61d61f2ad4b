"""Shared helpers of the SDK-side scripts (run with the SDK venv's interpreter, see ../sdk.py).

* :func:`serve` serves a ``cogment.Context`` on 127.0.0.1 with a port chosen by the OS, prints
  ``PORT <n>`` on stdout once the gRPC server is started, and stops the server cleanly on
  SIGTERM / SIGINT.

  The SDK (cogment/context.py ``_make_server``) always binds ``[::]:<ServedEndpoint.port>``,
  i.e. every interface; with port 0 it does use the port returned by ``add_insecure_port``
  (``Context.served_port``, log line "Serving on port [n]"), but it never prints or returns it.
  So ``grpc.aio.server`` is wrapped here: the server it returns binds ``127.0.0.1:0`` whatever
  address the SDK asks for, and reports the real port after ``start()``.
* Encoding / decoding of our payload values (``cogment_gym_v1``) without numpy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import struct
import sys
from typing import Any, Callable

import grpc
import grpc.aio

from cogment_gym_v1 import tensor_pb2, values_pb2

logging.basicConfig(
    stream=sys.stderr,
    level=os.environ.get("COGMENT_GYM_INTEROP_LOG_LEVEL", "INFO").upper(),
    format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
)
log = logging.getLogger("sdk_script")

_servers: list["_LocalhostServer"] = []


class _LocalhostServer:
    """Wraps a ``grpc.aio.Server`` so that it only ever binds 127.0.0.1 on an OS-chosen port."""

    def __init__(self, server: grpc.aio.Server):
        self._server = server
        self.requested_address: str | None = None
        self.port: int | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)

    def add_insecure_port(self, address: str) -> int:
        if self.port is not None:
            raise RuntimeError("the interop harness serves one port per process")
        self.requested_address = address
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        if not self.port:
            raise RuntimeError("could not bind 127.0.0.1:0")
        log.info("SDK asked to bind [%s]; bound 127.0.0.1:%d instead", address, self.port)
        return self.port

    def add_secure_port(self, address: str, credentials: Any) -> int:
        raise RuntimeError("the interop harness does not use TLS")

    async def start(self) -> None:
        await self._server.start()
        print(f"PORT {self.port}", flush=True)


_original_aio_server = grpc.aio.server


def _localhost_aio_server(*args: Any, **kwargs: Any) -> _LocalhostServer:
    server = _LocalhostServer(_original_aio_server(*args, **kwargs))
    _servers.append(server)
    return server


grpc.aio.server = _localhost_aio_server


async def serve(context: Any) -> None:
    """Serve everything registered on ``context`` until SIGTERM / SIGINT."""
    import cogment

    loop = asyncio.get_running_loop()

    def _stop() -> None:
        log.info("signal received: stopping the gRPC server")
        for server in _servers:
            loop.create_task(server.stop(1.0))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stop)
    await context.serve_all_registered(cogment.ServedEndpoint(port=0))
    log.info("gRPC server stopped")


def task_cancelled() -> bool:
    """Whether the current task was asked to cancel (and the request was swallowed).

    The SDK runs an implementation in a task that it cancels when its RunTrial handler is
    cancelled (the caller cancelled the RPC); ``session.all_events()`` catches that
    CancelledError and just stops, so the implementation returns as if the trial had ended.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def emit(tag: str, payload: dict) -> None:
    """One line ``<TAG> <json>`` on stdout (the test side waits for such lines)."""
    print(f"{tag} {json.dumps(payload, sort_keys=True)}", flush=True)


def append_json_line(path: str | None, payload: dict) -> None:
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(payload, sort_keys=True) + "\n")


# ---- payload values ------------------------------------------------------------------------


def int64_scalar(n: int) -> values_pb2.Value:
    """A Discrete-like value: ``Value(scalar=Tensor(DTYPE_INT64, shape=[], 8 LE bytes))``."""
    return values_pb2.Value(scalar=tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_INT64, shape=[], data=struct.pack("<q", n)))


def decode_int64_scalar(value: values_pb2.Value) -> int:
    if value.WhichOneof("kind") != "scalar":
        raise ValueError(f"expected a scalar value, got {value.WhichOneof('kind')}")
    tensor = value.scalar
    if tensor.dtype != tensor_pb2.DTYPE_INT64 or list(tensor.shape) or len(tensor.data) != 8:
        raise ValueError(f"expected an int64 scalar, got {tensor}")
    return struct.unpack("<q", tensor.data)[0]


# struct format of one element, per DType (DTYPE_FLOAT16 is "e"; complex types are left out).
_ELEMENT_FORMATS = {
    tensor_pb2.DTYPE_BOOL: "?",
    tensor_pb2.DTYPE_INT8: "b",
    tensor_pb2.DTYPE_INT16: "h",
    tensor_pb2.DTYPE_INT32: "i",
    tensor_pb2.DTYPE_INT64: "q",
    tensor_pb2.DTYPE_UINT8: "B",
    tensor_pb2.DTYPE_UINT16: "H",
    tensor_pb2.DTYPE_UINT32: "I",
    tensor_pb2.DTYPE_UINT64: "Q",
    tensor_pb2.DTYPE_FLOAT16: "e",
    tensor_pb2.DTYPE_FLOAT32: "f",
    tensor_pb2.DTYPE_FLOAT64: "d",
}


def decode_tensor(tensor: tensor_pb2.Tensor) -> list:
    """The elements of a Tensor (little-endian, row-major), as a flat list of Python numbers."""
    fmt = _ELEMENT_FORMATS.get(tensor.dtype)
    if fmt is None:
        raise ValueError(f"unsupported tensor dtype {tensor.dtype}")
    count = 1
    for dim in tensor.shape:
        count *= dim
    if len(tensor.data) != count * struct.calcsize(fmt):
        raise ValueError(f"tensor of shape {list(tensor.shape)} has {len(tensor.data)} data bytes")
    return list(struct.unpack(f"<{count}{fmt}", tensor.data))


def decode_value(value: values_pb2.Value) -> Any:
    """A JSON-able form of an observation value: an int64 scalar as its int (as
    :func:`decode_int64_scalar`), another scalar as its number, an array as the flat list of its
    elements, anything else as ``{"kind": <oneof name>}``."""
    kind = value.WhichOneof("kind")
    if kind == "scalar":
        if value.scalar.dtype == tensor_pb2.DTYPE_INT64:
            return decode_int64_scalar(value)
        return decode_tensor(value.scalar)[0]
    if kind == "array":
        return decode_tensor(value.array)
    return {"kind": kind}


def dict_value(entries: dict[str, values_pb2.Value]) -> values_pb2.Value:
    value = values_pb2.Value()
    value.dict.SetInParent()
    for key, item in entries.items():
        value.dict.entries.add(str_key=key, value=item)
    return value


def dict_get(value: values_pb2.Value, key: str) -> values_pb2.Value | None:
    if value.WhichOneof("kind") != "dict":
        return None
    for entry in value.dict.entries:
        if entry.WhichOneof("key") == "str_key" and entry.str_key == key:
            return entry.value
    return None


def dict_get_int(value: values_pb2.Value, key: str) -> int | None:
    item = dict_get(value, key)
    if item is None:
        return None
    kind = item.WhichOneof("kind")
    if kind == "int_value":
        return item.int_value
    if kind == "scalar":
        return decode_int64_scalar(item)
    raise ValueError(f"{key}: expected an integer, got {kind}")


# ---- the random Discrete(2) "player" (service actor and client actor) ------------------------


def make_random_player(default_seed: int | None, on_trial_end: Callable[[dict], None]):
    """An actor implementation for class "player": a random Discrete(2) policy.

    It answers each observation received while the trial is active (event type ACTIVE) with an
    ``ActionPayload(value=int64 scalar 0 or 1)``; the random generator is seeded from
    ``ActorConfig.settings["seed"]`` when present, else ``default_seed``. When the trial is over
    it calls ``on_trial_end(summary)`` with what it saw: observations (count, values decoded by
    ``decode_value``, tick ids, terminated/truncated flags), rewards, actions sent, the SDK event
    types, and how it ended ("final": soft end, the FINAL event came; "hard": END without LAST, or the stream
    went away; ``last_exchanged``: LAST was received; ``rpc_cancelled``: see ``task_cancelled``).
    """
    import cogment
    from cogment_gym_v1 import env_pb2

    async def random_player(session: "cogment.actor.ActorSession") -> None:
        seed = default_seed
        config = session.config
        if config is not None and config.HasField("settings"):
            configured = dict_get_int(config.settings, "seed")
            if configured is not None:
                seed = configured
        rng = random.Random(seed)
        summary: dict[str, Any] = {
            "trial_id": session.get_trial_id(),
            "actor_name": session.name,
            "actor_class": session.actor_class,
            "impl_name": session.impl_name,
            "env_name": session.env_name,
            "seed": seed,
            "observations": 0,
            "observation_values": [],
            "observation_ticks": [],
            "observation_flags": [],
            "rewards": [],
            "actions": [],
            "messages": 0,
            "event_types": [],
            "ended": "hard",
        }
        log.info("trial [%s]: actor [%s] started, config %s", summary["trial_id"], session.name, config)

        session.start()
        async for event in session.all_events():
            summary["event_types"].append(event.type.name)
            if event.type == cogment.EventType.FINAL:
                summary["ended"] = "final"
            for reward in event.rewards:
                summary["rewards"].append({
                    "tick_id": reward.tick_id,
                    "value": reward.value,
                    "sources": [src.sender_name for src in reward.all_sources()] if reward.get_nb_sources() else [],
                })
            summary["messages"] += len(event.messages)
            if event.observation is None:
                continue
            payload = event.observation.observation  # an env_pb2.ObservationPayload
            summary["observations"] += 1
            summary["observation_ticks"].append(event.observation.tick_id)
            summary["observation_values"].append(decode_value(payload.value))
            summary["observation_flags"].append([payload.terminated, payload.truncated])
            if event.type == cogment.EventType.ACTIVE:
                action = rng.randrange(2)
                session.do_action(env_pb2.ActionPayload(value=int64_scalar(action)))
                summary["actions"].append(action)

        summary["last_exchanged"] = "ENDING" in summary["event_types"]
        summary["rpc_cancelled"] = task_cancelled()
        on_trial_end(summary)

    return random_player


# ---------------------------------------------------------------------------------------- TLS


def add_tls_arguments(parser: Any) -> None:
    """``--root-cert`` (an SSL endpoint), ``--private-key`` / ``--cert-chain`` (a client certificate)."""
    parser.add_argument("--root-cert", help="PEM of the authority the server's certificate is signed by (SSL endpoint)")
    parser.add_argument("--private-key", help="PEM of the client's key (mTLS)")
    parser.add_argument("--cert-chain", help="PEM of the client's certificate chain (mTLS)")


def endpoint(args: Any) -> Any:
    """``cogment.Endpoint(args.endpoint)``, an SSL one as the SDK's users make it when TLS is asked."""
    import cogment

    if not args.root_cert:
        return cogment.Endpoint(args.endpoint)
    # set_from_files marks the endpoint SSL only when a key is given: without one, say it.
    result = cogment.Endpoint(args.endpoint, use_ssl=True)
    result.set_from_files(private_key_file=args.private_key, root_certificates_file=args.root_cert,
                          certificate_chain_file=args.cert_chain)
    return result
