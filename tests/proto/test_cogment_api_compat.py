"""Wire compatibility of our ``protos/cogment/api`` with the official Cogment Python SDK 2.10.1.

The official ``.proto`` files are taken from the SDK wheel on the package registry (cached under
``.cache/``), compiled with the same pinned protoc as ``scripts/generate_protos.py`` and loaded into
a private descriptor pool. They are compared with the descriptors of the generated modules that
``cogment_gym`` actually ships: structure first (readable differences), then the serialized
``FileDescriptorProto`` byte for byte.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, FileDescriptor

pytestmark = pytest.mark.network

ROOT = Path(__file__).resolve().parents[2]
SDK_VERSION = "2.10.1"
CACHE = ROOT / ".cache" / f"cogment-sdk-{SDK_VERSION}"
API_FILES = ("common", "environment", "agent", "orchestrator", "datalog", "hooks", "trial_datastore", "directory")
PROTO_NAMES = tuple(f"cogment/api/{name}.proto" for name in API_FILES)


# --------------------------------------------------------------------------- helpers


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_generate_protos", ROOT / "scripts" / "generate_protos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fetch_wheel() -> Path:
    wheel = CACHE / f"cogment-{SDK_VERSION}-py3-none-any.whl"
    if wheel.exists():
        return wheel
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python", "--only-binary=:all:",
             "--disable-pip-version-check", f"cogment=={SDK_VERSION}", "-d", tmp],
            capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, f"pip download failed:\n{proc.stdout}\n{proc.stderr}"
        found = list(Path(tmp).glob("cogment-*.whl"))
        assert len(found) == 1, f"expected one wheel, got {found}"
        found[0].replace(wheel)  # atomic: a half-downloaded wheel never lands in the cache
    return wheel


def _strip_json_names(messages) -> None:
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
        _strip_json_names(message.nested_type)


def _pool_from(files: list[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """A fresh pool (never the default one) holding ``files``, given in dependency order."""
    pool = descriptor_pool.DescriptorPool()
    for file_proto in files:
        pool.AddSerializedFile(file_proto.SerializeToString())
    return pool


def _label(field: FieldDescriptor) -> str:
    if hasattr(field, "is_repeated"):  # protobuf >= 6 drops `label`
        return "repeated" if field.is_repeated else ("required" if field.is_required else "optional")
    return {1: "optional", 2: "required", 3: "repeated"}[field.label]  # pragma: no cover


def _type_name(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        return field.message_type.full_name
    if field.enum_type is not None:
        return field.enum_type.full_name
    return ""


def _field_summary(field: FieldDescriptor) -> dict[str, object]:
    return {
        "number": field.number,
        "type": descriptor_pb2.FieldDescriptorProto.Type.Name(field.type),
        "label": _label(field),
        "type_name": _type_name(field),
        "oneof": field.containing_oneof.name if field.containing_oneof is not None else None,
        "map": field.message_type is not None and field.message_type.GetOptions().map_entry,
        "packed": field.is_packed,
        "presence": field.has_presence,
        "json_name": field.json_name,
    }


def _diff_order(diffs: list[str], where: str, ours: list[str], official: list[str]) -> bool:
    """Record missing/extra/reordered names; True if both lists hold the same names."""
    missing = [n for n in official if n not in ours]
    extra = [n for n in ours if n not in official]
    if missing:
        diffs.append(f"{where}: missing {missing}")
    if extra:
        diffs.append(f"{where}: unexpected {extra}")
    if not missing and not extra and ours != official:
        diffs.append(f"{where}: declaration order {ours} != official {official}")
    return not missing and not extra


def _diff_enum(diffs: list[str], ours: EnumDescriptor, official: EnumDescriptor) -> None:
    where = f"enum {official.full_name}"
    values = [(v.name, v.number) for v in ours.values]
    want = [(v.name, v.number) for v in official.values]
    if values != want:
        diffs.append(f"{where}: values {values} != official {want}")


def _diff_enums(diffs: list[str], where: str, ours: dict, official: dict) -> None:
    _diff_order(diffs, f"{where} enums", list(ours), list(official))
    for name in official.keys() & ours.keys():
        _diff_enum(diffs, ours[name], official[name])


def _diff_message(diffs: list[str], ours: Descriptor, official: Descriptor) -> None:
    where = f"message {official.full_name}"
    if ours.GetOptions().map_entry != official.GetOptions().map_entry:
        diffs.append(f"{where}: map_entry {ours.GetOptions().map_entry} != official {official.GetOptions().map_entry}")
    ours_fields = {f.name: f for f in ours.fields}
    official_fields = {f.name: f for f in official.fields}
    _diff_order(diffs, f"{where} fields", list(ours_fields), list(official_fields))
    for name, want_field in official_fields.items():
        if name not in ours_fields:
            continue
        have, want = _field_summary(ours_fields[name]), _field_summary(want_field)
        for key in want:
            if have[key] != want[key]:
                diffs.append(f"field {official.full_name}.{name}: {key} {have[key]!r} != official {want[key]!r}")
    ours_oneofs = {o.name: [f.name for f in o.fields] for o in ours.oneofs}
    official_oneofs = {o.name: [f.name for f in o.fields] for o in official.oneofs}
    _diff_order(diffs, f"{where} oneofs", list(ours_oneofs), list(official_oneofs))
    for name in official_oneofs.keys() & ours_oneofs.keys():
        if ours_oneofs[name] != official_oneofs[name]:
            diffs.append(
                f"oneof {official.full_name}.{name}: members {ours_oneofs[name]} != official {official_oneofs[name]}"
            )
    _diff_messages(diffs, where, {m.name: m for m in ours.nested_types}, {m.name: m for m in official.nested_types})
    _diff_enums(diffs, where, {e.name: e for e in ours.enum_types}, {e.name: e for e in official.enum_types})


def _diff_messages(diffs: list[str], where: str, ours: dict, official: dict) -> None:
    _diff_order(diffs, f"{where} messages", list(ours), list(official))
    for name in official:
        if name in ours:
            _diff_message(diffs, ours[name], official[name])


def diff_files(ours: FileDescriptor, official: FileDescriptor) -> list[str]:
    """Every structural difference between two file descriptors, as readable lines (empty = same)."""
    diffs: list[str] = []
    where = f"file {official.name}"
    for attr in ("name", "package"):
        if getattr(ours, attr) != getattr(official, attr):
            diffs.append(f"{where}: {attr} {getattr(ours, attr)!r} != official {getattr(official, attr)!r}")
    if ours.GetOptions().go_package != official.GetOptions().go_package:
        have_go, want_go = ours.GetOptions().go_package, official.GetOptions().go_package
        diffs.append(f"{where}: go_package {have_go!r} != official {want_go!r}")
    deps, want_deps = [d.name for d in ours.dependencies], [d.name for d in official.dependencies]
    if deps != want_deps:
        diffs.append(f"{where}: imports {deps} != official {want_deps}")
    public, want_public = [d.name for d in ours.public_dependencies], [d.name for d in official.public_dependencies]
    if public != want_public:
        diffs.append(f"{where}: public imports {public} != official {want_public}")
    _diff_messages(diffs, where, dict(ours.message_types_by_name), dict(official.message_types_by_name))
    _diff_enums(diffs, where, dict(ours.enum_types_by_name), dict(official.enum_types_by_name))
    _diff_order(diffs, f"{where} extensions", list(ours.extensions_by_name), list(official.extensions_by_name))
    services, want_services = dict(ours.services_by_name), dict(official.services_by_name)
    _diff_order(diffs, f"{where} services", list(services), list(want_services))
    for name, want_service in want_services.items():
        if name not in services:
            continue
        methods = {m.name: m for m in services[name].methods}
        want_methods = {m.name: m for m in want_service.methods}
        _diff_order(diffs, f"service {want_service.full_name} methods", list(methods), list(want_methods))
        for method_name, want in want_methods.items():
            if method_name not in methods:
                continue
            have = methods[method_name]
            for attr, get in (
                ("input", lambda m: m.input_type.full_name),
                ("output", lambda m: m.output_type.full_name),
                ("client_streaming", lambda m: m.client_streaming),
                ("server_streaming", lambda m: m.server_streaming),
            ):
                if get(have) != get(want):
                    diffs.append(f"method {want.full_name}: {attr} {get(have)!r} != official {get(want)!r}")
    return diffs


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def official_wheel() -> Path:
    return _fetch_wheel()


@pytest.fixture(scope="session")
def official_set(official_wheel: Path) -> descriptor_pb2.FileDescriptorSet:
    """The official API compiled by the pinned protoc, imports included, in dependency order."""
    protos = CACHE / "protos"
    if protos.exists():
        shutil.rmtree(protos)
    with zipfile.ZipFile(official_wheel) as wheel:
        members = [n for n in wheel.namelist() if n.startswith("cogment/api/") and n.endswith(".proto")]
        assert set(PROTO_NAMES) <= set(members), f"wheel lacks {set(PROTO_NAMES) - set(members)}"
        for member in members:
            wheel.extract(member, protos)
    raw = _load_generator().descriptor_set(protos, list(PROTO_NAMES))
    return descriptor_pb2.FileDescriptorSet.FromString(raw)


@pytest.fixture(scope="session")
def official_pool(official_set: descriptor_pb2.FileDescriptorSet) -> descriptor_pool.DescriptorPool:
    return _pool_from(list(official_set.file))


def _official_proto(official_set: descriptor_pb2.FileDescriptorSet, name: str) -> descriptor_pb2.FileDescriptorProto:
    for file_proto in official_set.file:
        if file_proto.name == name:
            copy = descriptor_pb2.FileDescriptorProto()
            copy.CopyFrom(file_proto)
            return copy
    raise AssertionError(f"{name} not in the official descriptor set")


def _ours(name: str) -> FileDescriptor:
    return importlib.import_module(f"cogment_gym._proto.cogment.api.{name}_pb2").DESCRIPTOR


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", API_FILES)
def test_same_structure_as_official(name: str, official_pool: descriptor_pool.DescriptorPool) -> None:
    ours = _ours(name)
    official = official_pool.FindFileByName(f"cogment/api/{name}.proto")
    assert ours.pool is not official.pool
    diffs = diff_files(ours, official)
    assert not diffs, f"cogment/api/{name}.proto differs from Cogment SDK {SDK_VERSION}:\n  " + "\n  ".join(diffs)


@pytest.mark.parametrize("name", API_FILES)
def test_serialized_descriptor_is_byte_identical(name: str, official_set: descriptor_pb2.FileDescriptorSet) -> None:
    official = _official_proto(official_set, f"cogment/api/{name}.proto")
    # A descriptor set written by protoc carries computed json_name values that protoc's Python
    # generator leaves out of the embedded descriptor; they are derived data, so drop them.
    _strip_json_names(official.message_type)
    official.ClearField("source_code_info")
    ours = _ours(name).serialized_pb
    if ours != official.SerializeToString():
        mine = descriptor_pb2.FileDescriptorProto.FromString(ours)
        pytest.fail(
            f"serialized descriptor of cogment/api/{name}.proto differs\n--- ours\n{mine}\n--- official\n{official}"
        )


@pytest.mark.parametrize("name", API_FILES)
def test_matches_descriptor_embedded_in_official_sdk(name: str, official_wheel: Path) -> None:
    """What the official SDK registers at import time is exactly what we register."""
    with zipfile.ZipFile(official_wheel) as wheel:
        source = wheel.read(f"cogment/api/{name}_pb2.py").decode()
    embedded = [
        node.args[0].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "AddSerializedFile"
        and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, bytes)
    ]
    assert len(embedded) == 1, f"could not find the embedded descriptor in the SDK's {name}_pb2.py"
    assert _ours(name).serialized_pb == embedded[0]


def _set_field(file_proto, message: str, field: str, **changes) -> None:
    [target] = [f for m in file_proto.message_type if m.name == message for f in m.field if f.name == field]
    for key, value in changes.items():
        if value is None:
            target.ClearField(key)
        else:
            setattr(target, key, value)


def _swap_first_messages(file_proto) -> None:
    first, second = (descriptor_pb2.DescriptorProto() for _ in range(2))
    first.CopyFrom(file_proto.message_type[0])
    second.CopyFrom(file_proto.message_type[1])
    file_proto.message_type[0].CopyFrom(second)
    file_proto.message_type[1].CopyFrom(first)


def _set_enum_value(file_proto, enum: str, value: str, number: int) -> None:
    [target] = [v for e in file_proto.enum_type if e.name == enum for v in e.value if v.name == value]
    target.number = number


def _set_method(file_proto, service: str, method: str, **changes) -> None:
    [target] = [m for s in file_proto.service if s.name == service for m in s.method if m.name == method]
    for key, value in changes.items():
        setattr(target, key, value)


FDP = descriptor_pb2.FieldDescriptorProto
MUTATIONS: dict[str, tuple[str, Callable[[descriptor_pb2.FileDescriptorProto], None], str]] = {
    "field number": ("common", lambda p: _set_field(p, "TrialParams", "max_steps", number=15),
                     "cogmentAPI.TrialParams.max_steps: number 15 != official 5"),
    "field type": ("common", lambda p: _set_field(p, "Observation", "tick_id", type=FDP.TYPE_INT64),
                   "cogmentAPI.Observation.tick_id: type 'TYPE_INT64' != official 'TYPE_UINT64'"),
    "field label": ("common", lambda p: _set_field(p, "VersionInfo", "versions", label=FDP.LABEL_OPTIONAL),
                    "cogmentAPI.VersionInfo.versions: label 'optional' != official 'repeated'"),
    "message type": ("hooks", lambda p: _set_field(p, "PreTrialParams", "params", type_name=".cogmentAPI.ActorParams"),
                     "type_name 'cogmentAPI.ActorParams' != official 'cogmentAPI.TrialParams'"),
    "oneof membership": ("common", lambda p: _set_field(p, "ActorRunTrialInput", "details", oneof_index=None),
                         "cogmentAPI.ActorRunTrialInput.details: oneof None != official 'data'"),
    "message order": ("common", _swap_first_messages, "declaration order"),
    "enum value": ("common", lambda p: _set_enum_value(p, "CommunicationState", "END", 6),
                   "enum cogmentAPI.CommunicationState: values"),
    "streaming": ("hooks", lambda p: _set_method(p, "TrialHooksSP", "OnPreTrial", server_streaming=True),
                  "method cogmentAPI.TrialHooksSP.OnPreTrial: server_streaming True != official False"),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_comparison_detects_alterations(mutation: str, official_set, official_pool) -> None:
    """Self-check: the comparison is not vacuous; an altered official descriptor is reported."""
    name, mutate, expected = MUTATIONS[mutation]
    path = f"cogment/api/{name}.proto"
    altered = _official_proto(official_set, path)
    mutate(altered)
    names = [f.name for f in official_set.file]
    deps = list(official_set.file)[: names.index(path)]  # the set is in dependency order
    altered_file = _pool_from([*deps, altered]).FindFileByName(path)
    diffs = diff_files(altered_file, official_pool.FindFileByName(path))
    assert diffs, f"{mutation}: the alteration went unnoticed"
    assert any(expected in line for line in diffs), f"{mutation}: expected {expected!r} in:\n  " + "\n  ".join(diffs)
    assert altered.SerializeToString() != _official_proto(official_set, path).SerializeToString()
