"""Trial parameter files: Cogment 2.x ``--params`` YAML <-> ``cogmentAPI.TrialParams``.

A params file has one top-level key, ``trial_params``, holding a ``TrialParams`` in protobuf's
JSON mapping (docs/protocol.md §6.1)::

    trial_params:
      properties: {team: blue}
      max_steps: 500
      environment:
        endpoint: grpc://127.0.0.1:9001
        implementation: CartPole-v1
        config: {seed: 7, render_mode: rgb_array, options: {low: -0.1}}
      actors:
        - name: player
          actor_class: player
          endpoint: cogment://client
          response_timeout: 5
          optional: true
          default_action: {content: CgIQAQ==}
      datalog: {endpoint: grpc://127.0.0.1:9003, exclude_fields: [observations]}

Rules (those of the Cogment Orchestrator, made strict):

- keys are the proto field names or their lowerCamelCase JSON names (``actor_class`` or
  ``actorClass``); any other key is an error naming the key, its path and the file;
- scalars must have the field's type (a number for ``max_steps``, a bool for ``optional``...);
  integers and floats may also be written as decimal strings, because the Cogment Orchestrator
  reads every scalar as a string; ``properties`` values are turned into strings;
- ``bytes`` fields are base64 (standard or URL-safe alphabet, padding optional), as in
  protobuf's JSON mapping, so ``config: {content: <base64>}`` works everywhere;
- an empty value (``implementation:``) means the field is absent;
- ``max_inactivity`` defaults to 30 s when a file does not give it, as in Cogment; params sent in
  a StartTrial request keep their own value (0: never reclaimed).

cogment_gym extension for readable configs (the choice is made by the keys, not the endpoint,
because an endpoint does not tell what serves it): a ``config`` mapping of the environment
*without* ``content`` is a ``cogment_gym.v1.EnvConfig`` (``seed``, ``render_mode``,
``options``: any YAML mapping, encoded as our ``Value``); an actor ``config`` mapping without
``content`` is a ``cogment_gym.v1.ActorConfig`` (``settings``: any YAML value). Both are stored
as the serialised bytes, exactly what ``CogmentEnv`` itself sends. Files written by
:func:`dump_trial_params` always use the base64 form, which the real Cogment Orchestrator reads.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
from typing import Any, Mapping

import yaml
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec import encode_object
from cogment_gym.errors import TrialParamsError, UnsupportedValueError

__all__ = [
    "DEFAULT_MAX_INACTIVITY",
    "dump_trial_params",
    "load_trial_params",
    "parse_trial_params",
    "trial_params_from_dict",
    "trial_params_to_dict",
]

# Seconds of inactivity after which a trial whose params came from a file is reclaimed, unless
# the file says otherwise (the Cogment Orchestrator's default).
DEFAULT_MAX_INACTIVITY = 30

_TOP_KEY = "trial_params"
_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FLOAT_TYPES = (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE)


# ---------------------------------------------------------------------------------------- loading


def load_trial_params(path: str | os.PathLike[str]) -> common_pb2.TrialParams:
    """Read a Cogment params file (YAML with a top-level ``trial_params`` key).

    Example:
        >>> params = load_trial_params("params.yaml")  # doctest: +SKIP
        >>> params.max_inactivity  # 30 unless the file says otherwise
        30

    Raises:
        TrialParamsError: the file is not valid YAML, or a key/value does not fit ``TrialParams``.
        OSError: the file cannot be read.
    """
    source = os.fspath(path)
    with open(source, encoding="utf-8") as file:
        text = file.read()
    return parse_trial_params(text, source=source)


def parse_trial_params(text: str, *, source: str = "<string>") -> common_pb2.TrialParams:
    """Like :func:`load_trial_params`, from the text of a params file."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise TrialParamsError(f"not valid YAML: {err}", source=source) from None
    if not isinstance(document, Mapping):
        raise TrialParamsError(f"expected a mapping with a top-level {_TOP_KEY!r} key, got {_describe(document)}", source=source)
    unknown = [key for key in document if key != _TOP_KEY]
    if unknown:
        raise TrialParamsError(f"unknown top-level key {unknown[0]!r}; a params file has only {_TOP_KEY!r}", source=source, key=str(unknown[0]))
    if _TOP_KEY not in document:
        raise TrialParamsError(f"no top-level {_TOP_KEY!r} key", source=source)
    body = document[_TOP_KEY]
    params = trial_params_from_dict({} if body is None else body, source=source, path=_TOP_KEY)
    if not _given(body, "max_inactivity"):
        params.max_inactivity = DEFAULT_MAX_INACTIVITY
    return params


def trial_params_from_dict(data: Mapping[str, Any], *, source: str = "<dict>", path: str = "") -> common_pb2.TrialParams:
    """Build ``TrialParams`` from the mapping found under ``trial_params`` (no file defaults)."""
    params = common_pb2.TrialParams()
    _fill(params, data, _Context(source), path)
    return params


def _given(body: Any, name: str) -> bool:
    if not isinstance(body, Mapping):
        return False
    field = common_pb2.TrialParams.DESCRIPTOR.fields_by_name[name]
    return any(body.get(key) is not None for key in (field.name, field.json_name))


class _Context:
    __slots__ = ("source",)

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, path: str, message: str) -> TrialParamsError:
        return TrialParamsError(message, source=self.source, key=path)


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fields(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    names: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        names[field.name] = field
        names[field.json_name] = field
    return names


def _is_repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)
    if flag is not None:
        return bool(flag)
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)  # protobuf < 5


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _fill(message: Message, data: Any, ctx: _Context, path: str) -> None:
    descriptor = message.DESCRIPTOR
    if not isinstance(data, Mapping):
        raise ctx.error(path, f"expected a mapping (a {descriptor.name}), got {_describe(data)}")
    fields = _fields(descriptor)
    seen: dict[str, str] = {}
    for key, value in data.items():
        key_path = _join(path, str(key))
        field = fields.get(key) if isinstance(key, str) else None
        if field is None:
            valid = ", ".join(f.name for f in descriptor.fields)
            raise ctx.error(key_path, f"unknown key {key!r} in {descriptor.name}; valid keys: {valid}")
        if field.name in seen:
            raise ctx.error(key_path, f"{field.name!r} is given twice (as {seen[field.name]!r} and {key!r})")
        seen[field.name] = key
        if value is None:
            continue  # an empty YAML value: the field stays absent
        if (descriptor.full_name, field.name) in _FRIENDLY_CONFIGS:
            _config(message, field, value, ctx, key_path, _FRIENDLY_CONFIGS[(descriptor.full_name, field.name)])
        elif _is_map(field):
            _map(message, field, value, ctx, key_path)
        elif _is_repeated(field):
            if not isinstance(value, list):
                raise ctx.error(key_path, f"expected a list, got {_describe(value)}")
            target = getattr(message, field.name)
            for i, item in enumerate(value):
                item_path = f"{key_path}[{i}]"
                if item is None:
                    raise ctx.error(item_path, "empty list item")
                if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                    _fill(target.add(), item, ctx, item_path)
                else:
                    target.append(_scalar(field, item, ctx, item_path))
        elif field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            sub = getattr(message, field.name)
            sub.SetInParent()
            _fill(sub, value, ctx, key_path)
        else:
            setattr(message, field.name, _scalar(field, value, ctx, key_path))


def _map(message: Message, field: FieldDescriptor, value: Any, ctx: _Context, path: str) -> None:
    if not isinstance(value, Mapping):
        raise ctx.error(path, f"expected a mapping of strings, got {_describe(value)}")
    target = getattr(message, field.name)
    for key, item in value.items():
        item_path = f"{path}.{key}"
        if isinstance(key, bool) or not isinstance(key, (str, int, float)):
            raise ctx.error(item_path, f"a key of {field.name!r} must be a string, got {_describe(key)}")
        if item is None:
            item = ""
        if isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, (int, float)):
            item = str(item)
        elif not isinstance(item, str):
            raise ctx.error(item_path, f"a value of {field.name!r} must be a string (or number, bool), got {_describe(item)}")
        target[str(key)] = item


def _scalar(field: FieldDescriptor, value: Any, ctx: _Context, path: str) -> Any:
    cpp = field.cpp_type
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _base64(value, ctx, path)
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        if not isinstance(value, str):
            raise ctx.error(path, f"expected a string, got {_describe(value)}; quote it")
        return value
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        if not isinstance(value, bool):
            raise ctx.error(path, f"expected true or false, got {_describe(value)}")
        return value
    if cpp in _INT_RANGES:
        number = _number(value, ctx, path, "an integer")
        if isinstance(number, float):
            if not number.is_integer():
                raise ctx.error(path, f"expected an integer, got {_describe(value)}")
            number = int(number)
        low, high = _INT_RANGES[cpp]
        if not low <= number <= high:
            raise ctx.error(path, f"{number} is out of range [{low}, {high}]")
        return number
    if cpp in _FLOAT_TYPES:
        number = float(_number(value, ctx, path, "a number"))
        if not math.isfinite(number):
            raise ctx.error(path, f"expected a finite number, got {_describe(value)}")
        return number
    raise ctx.error(path, f"fields of type {field.type} are not supported")  # no such field in TrialParams


def _number(value: Any, ctx: _Context, path: str, expected: str) -> int | float:
    if isinstance(value, bool):
        raise ctx.error(path, f"expected {expected}, got {_describe(value)}")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            pass
    raise ctx.error(path, f"expected {expected}, got {_describe(value)}")


def _base64(value: Any, ctx: _Context, path: str) -> bytes:
    if not isinstance(value, str):
        raise ctx.error(path, f"expected base64 text, got {_describe(value)}")
    text = "".join(value.split()).replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ctx.error(path, f"not valid base64: {_describe(value)}") from None


# ---------------------------------------------------------------------------------------- friendly configs


def _env_config(value: Mapping[str, Any], ctx: _Context, path: str) -> bytes:
    config = env_pb2.EnvConfig()
    for key, item in value.items():
        item_path = _join(path, str(key))
        if item is None:
            continue
        if key == "seed":
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < 2**64:
                raise ctx.error(item_path, f"expected a non-negative integer seed, got {_describe(item)}")
            config.seed = item
        elif key in ("render_mode", "renderMode"):
            if not isinstance(item, str):
                raise ctx.error(item_path, f"expected a render mode such as 'rgb_array', got {_describe(item)}")
            config.render_mode = item
        elif key == "options":
            if not isinstance(item, Mapping):
                raise ctx.error(item_path, f"reset options must be a mapping, got {_describe(item)}")
            config.options.CopyFrom(_encode(dict(item), ctx, item_path))
        else:
            raise ctx.error(
                item_path,
                f"unknown key {key!r} in an environment config; give either 'content' (base64 bytes) "
                "or cogment_gym.v1.EnvConfig keys: seed, render_mode, options",
            )
    return config.SerializeToString()


def _actor_config(value: Mapping[str, Any], ctx: _Context, path: str) -> bytes:
    config = env_pb2.ActorConfig()
    for key, item in value.items():
        item_path = _join(path, str(key))
        if key != "settings":
            raise ctx.error(
                item_path,
                f"unknown key {key!r} in an actor config; give either 'content' (base64 bytes) "
                "or the cogment_gym.v1.ActorConfig key: settings",
            )
        config.settings.CopyFrom(_encode(item, ctx, item_path))
    return config.SerializeToString()


def _encode(value: Any, ctx: _Context, path: str) -> Any:
    try:
        return encode_object(value, path)
    except UnsupportedValueError as err:
        raise ctx.error(path, str(err)) from None


_FRIENDLY_CONFIGS = {
    ("cogmentAPI.EnvironmentParams", "config"): _env_config,
    ("cogmentAPI.ActorParams", "config"): _actor_config,
}


def _config(message: Message, field: FieldDescriptor, value: Any, ctx: _Context, path: str, friendly: Any) -> None:
    target = getattr(message, field.name)
    if not isinstance(value, Mapping):
        raise ctx.error(path, f"expected a mapping ({{content: <base64>}} or the readable form), got {_describe(value)}")
    if "content" in value:
        _fill(target, value, ctx, path)
        target.SetInParent()
        return
    target.content = friendly(value, ctx, path)


# ---------------------------------------------------------------------------------------- dumping

_TOP_ORDER = ("properties", "max_steps", "max_inactivity", "nb_buffered_ticks", "environment", "actors", "datalog", "trial_config")


def trial_params_to_dict(params: common_pb2.TrialParams) -> dict[str, Any]:
    """``TrialParams`` as the mapping found under ``trial_params`` in a file (proto field names,
    bytes in base64). ``max_inactivity`` is always written, since a file without it means 30 s."""
    raw = json_format.MessageToDict(params, preserving_proto_field_name=True)
    if "nb_buffered_ticks" in raw:
        raw["nb_buffered_ticks"] = int(raw["nb_buffered_ticks"])  # int64 is a JSON string
    raw["max_inactivity"] = params.max_inactivity
    return {key: raw[key] for key in _TOP_ORDER if key in raw}


def dump_trial_params(params: common_pb2.TrialParams, path: str | os.PathLike[str] | None = None) -> str:
    """The text of a params file for ``params`` (readable back by :func:`load_trial_params` and
    by the Cogment Orchestrator); also written to ``path`` when given.

    Example:
        >>> text = dump_trial_params(common_pb2.TrialParams(max_steps=10))
        >>> parse_trial_params(text).max_steps
        10
    """
    text = yaml.safe_dump({_TOP_KEY: trial_params_to_dict(params)}, sort_keys=False, default_flow_style=False)
    if path is not None:
        with open(os.fspath(path), "w", encoding="utf-8") as file:
            file.write(text)
    return text
