"""The official Cogment Python SDK (``cogment==2.10.1``), in a venv of its own, for interop tests.

The SDK declares ``python<3.11`` and pins grpcio < 1.49 / protobuf < 4, so it is installed here
with ``--no-deps --ignore-requires-python`` next to modern versions of its runtime dependencies,
and the ``cogment/api/*_pb2*.py`` it ships (generated for protobuf 3) are regenerated from the
``.proto`` files it also ships, with the grpcio-tools of that venv.

Our payload schema (``protos/cogment_gym/v1/*.proto``) is compiled for that venv too, as the
top-level package ``cogment_gym_v1`` (so that it cannot clash with the ``cogment_gym`` package
of this repository), so SDK-side scripts can ``from cogment_gym_v1 import env_pb2``.

Everything is cached under ``<repo root>/.cache/cogment-sdk-2.10.1/``:

* ``venv/``: the virtual environment; rebuilt when :data:`_VENV_KEY` changes (SDK version,
  requirements, interpreter version).
* ``pylib/cogment_gym_v1/``: our generated payload code, put on the venv's path by a ``.pth``
  file; regenerated when the ``.proto`` files (or the venv) change.

Building takes the lock ``.cache/cogment-sdk-2.10.1/.lock`` so that concurrent test processes
build it once.

SDK-side scripts (``sdk_scripts/``) are started by :func:`start_sdk_server`: the script binds
127.0.0.1 on a port chosen by the OS and writes ``PORT <n>`` as its first stdout line once its
gRPC server is started.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Iterable, Mapping, Sequence

SDK_VERSION = "2.10.1"

# Modern runtime dependencies of the SDK (it imports grpc, grpc.aio, google.protobuf,
# prometheus_client, typing_extensions, psutil; PyYAML is for our controller script).
# grpcio-reflection is not imported by the SDK at run time, so it is not installed.
RUNTIME_REQUIREMENTS = (
    "grpcio>=1.62,<2",
    "grpcio-tools>=1.62,<2",
    "protobuf>=5.26,<8",
    "prometheus-client>=0.17",
    "typing-extensions>=4.6.3",
    "psutil>=5.9",
    "PyYAML>=6.0",
)

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
PROTOS_DIR = REPO_ROOT / "protos"
PAYLOAD_PROTO_DIR = PROTOS_DIR / "cogment_gym" / "v1"
SCRIPTS_DIR = HERE / "sdk_scripts"

CACHE_DIR = REPO_ROOT / ".cache" / f"cogment-sdk-{SDK_VERSION}"
VENV_DIR = CACHE_DIR / "venv"
PYLIB_DIR = CACHE_DIR / "pylib"
PAYLOAD_PACKAGE = "cogment_gym_v1"

_VENV_STAMP = CACHE_DIR / "venv.stamp.json"
_PAYLOAD_STAMP = CACHE_DIR / "payload.stamp"
_LOCK_FILE = CACHE_DIR / ".lock"

# Bump to force a rebuild when the build steps below change.
_BUILD_REVISION = 1
_VENV_KEY = {
    "revision": _BUILD_REVISION,
    "sdk": SDK_VERSION,
    "requirements": list(RUNTIME_REQUIREMENTS),
    "python": list(sys.version_info[:2]),
    "python_executable": os.path.realpath(sys.executable),
}

# Environment variables that would make the SDK (Context) talk to a Cogment directory.
_SCRUBBED_ENV = ("COGMENT_DIRECTORY_ENDPOINT", "COGMENT_DIRECTORY_AUTHENTICATION_TOKEN", "PYTHONPATH")

_ready = False
_ready_lock = threading.Lock()


class SdkSetupError(RuntimeError):
    """The SDK venv could not be built."""


class SdkProcessError(RuntimeError):
    """An SDK-side script failed to start or misbehaved."""


# ------------------------------------------------------------------------------------------
# venv


def _venv_python_path() -> Path:
    return VENV_DIR / "bin" / "python"


def _run(cmd: Sequence[str | os.PathLike], *, timeout: float, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        env=_child_env(),
    )
    if proc.returncode != 0:
        raise SdkSetupError(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stdout}")
    return proc.stdout


def _purelib(python: Path) -> Path:
    out = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], timeout=60)
    return Path(out.strip().splitlines()[-1])


def _build_venv() -> None:
    if VENV_DIR.exists():
        shutil.rmtree(VENV_DIR)
    _VENV_STAMP.unlink(missing_ok=True)
    _PAYLOAD_STAMP.unlink(missing_ok=True)

    _run([sys.executable, "-m", "venv", VENV_DIR], timeout=300)
    python = _venv_python_path()
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "install", *RUNTIME_REQUIREMENTS], timeout=900)
    _run([*pip, "install", "--no-deps", "--ignore-requires-python", f"cogment=={SDK_VERSION}"], timeout=600)

    # Regenerate the SDK's protobuf / gRPC code from the .proto files it ships.
    site = _purelib(python)
    api_dir = site / "cogment" / "api"
    protos = sorted(p.name for p in api_dir.glob("*.proto"))
    if not protos:
        raise SdkSetupError(f"no .proto files in {api_dir}")
    for old in api_dir.glob("*_pb2*.py"):
        old.unlink()
    shutil.rmtree(api_dir / "__pycache__", ignore_errors=True)
    _run(
        [
            python, "-m", "grpc_tools.protoc", "-I", ".",
            "--python_out=.", "--grpc_python_out=.",
            *(f"cogment/api/{name}" for name in protos),
        ],
        cwd=site,
        timeout=300,
    )
    (api_dir / "__init__.py").touch()

    # Our generated payload code lives in PYLIB_DIR; put it on the venv's path.
    (site / "cogment_gym_interop.pth").write_text(f"{PYLIB_DIR}\n")

    out = _run([python, "-c", "import cogment, cogment.context; print(cogment.__version__)"], timeout=120)
    if out.strip().splitlines()[-1] != SDK_VERSION:
        raise SdkSetupError(f"unexpected cogment version in venv: {out!r}")
    _VENV_STAMP.write_text(json.dumps(_VENV_KEY, sort_keys=True))


def _payload_hash() -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(_VENV_KEY, sort_keys=True).encode())
    for path in sorted(PAYLOAD_PROTO_DIR.glob("*.proto")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


_IMPORT_RE = re.compile(r"^from cogment_gym\.v1 import ", re.MULTILINE)


def _build_payload_package(expected_hash: str) -> None:
    python = _venv_python_path()
    protos = sorted(p.name for p in PAYLOAD_PROTO_DIR.glob("*.proto"))
    if not protos:
        raise SdkSetupError(f"no .proto files in {PAYLOAD_PROTO_DIR}")
    PYLIB_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=PYLIB_DIR) as tmp:
        _run(
            [
                python, "-m", "grpc_tools.protoc", "-I", PROTOS_DIR,
                f"--python_out={tmp}", f"--grpc_python_out={tmp}",
                *(PAYLOAD_PROTO_DIR / name for name in protos),
            ],
            timeout=300,
        )
        staged = Path(tmp) / PAYLOAD_PACKAGE
        staged.mkdir()
        for generated in sorted((Path(tmp) / "cogment_gym" / "v1").glob("*_pb2*.py")):
            text = _IMPORT_RE.sub(f"from {PAYLOAD_PACKAGE} import ", generated.read_text())
            (staged / generated.name).write_text(text)
        (staged / "__init__.py").write_text('"""cogment_gym.v1 payload schema, generated for the SDK venv."""\n')
        target = PYLIB_DIR / PAYLOAD_PACKAGE
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)

    check = (f"import sys; sys.path.insert(0, {str(PYLIB_DIR)!r}); "
             f"from {PAYLOAD_PACKAGE} import env_pb2; env_pb2.ObservationPayload()")
    _run([python, "-c", check], timeout=120)
    _PAYLOAD_STAMP.write_text(expected_hash)


def _ensure_payload_package() -> bool:
    """Regenerate our payload code if the .proto files (or the venv) changed; True if it did."""
    payload_hash = _payload_hash()
    if _stamp_matches(_PAYLOAD_STAMP, payload_hash) and (PYLIB_DIR / PAYLOAD_PACKAGE / "env_pb2.py").exists():
        return False
    _build_payload_package(payload_hash)
    return True


def _stamp_matches(path: Path, expected: str) -> bool:
    try:
        return path.read_text() == expected
    except FileNotFoundError:
        return False


def ensure_sdk() -> Path:
    """Build (or check) the SDK venv and generated code; return the venv interpreter."""
    global _ready
    with _ready_lock:
        if _ready:
            return _venv_python_path()
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        with open(_LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not (_stamp_matches(_VENV_STAMP, json.dumps(_VENV_KEY, sort_keys=True))
                        and _venv_python_path().exists()):
                    _build_venv()
                _ensure_payload_package()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        _ready = True
        return _venv_python_path()


def sdk_python() -> Path:
    """The interpreter of the venv holding the official SDK (built on first use)."""
    return ensure_sdk()


# ------------------------------------------------------------------------------------------
# SDK-side processes


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("COGMENT_LOG_LEVEL", "INFO")
    if extra:
        env.update(extra)
    return env


def script_path(name: str) -> Path:
    path = SCRIPTS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


@dataclasses.dataclass
class SdkProcess:
    """An SDK-side script running as a subprocess.

    Its stdout is read line by line by a thread (so the process never blocks on a full pipe);
    lines after the ``PORT`` line can be awaited with :meth:`wait_line`. Its stderr (logs) goes
    to a temporary file, included in error messages.
    """

    proc: subprocess.Popen
    port: int
    name: str
    _lines: "queue.Queue[str | None]"
    _stderr: IO[str]
    _stderr_path: Path
    _reader: threading.Thread

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def endpoint(self) -> str:
        """``grpc://127.0.0.1:<port>``, as Cogment writes endpoints."""
        return f"grpc://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, as gRPC channels take it."""
        return f"127.0.0.1:{self.port}"

    def stderr_text(self) -> str:
        try:
            return self._stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_line(self, prefix: str, timeout: float) -> str:
        """Wait for the next stdout line starting with ``prefix``; return the rest of it."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SdkProcessError(
                    f"{self.name}: no stdout line starting with {prefix!r} within {timeout}s\n"
                    f"--- stderr ---\n{self.stderr_text()}"
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self._lines.put(None)  # keep the EOF marker for later callers
                raise SdkProcessError(
                    f"{self.name}: stdout closed (exit code {self.proc.poll()}) while waiting for {prefix!r}\n"
                    f"--- stderr ---\n{self.stderr_text()}"
                )
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def wait_json(self, prefix: str, timeout: float) -> dict:
        return json.loads(self.wait_line(prefix, timeout))

    def stop(self, timeout: float = 10.0) -> int | None:
        """Terminate this process (by its PID), wait, kill only if it does not exit in time."""
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=timeout)
        finally:
            # The process is gone: the reader thread reaches EOF on its own.
            self._reader.join(timeout=timeout)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._stderr.close()
        return self.proc.returncode

    def discard_log(self) -> None:
        """Remove the stderr log file (after :meth:`stop`)."""
        self._stderr_path.unlink(missing_ok=True)

    def __enter__(self) -> "SdkProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _read_lines(stream: IO[str], lines: "queue.Queue[str | None]") -> None:
    try:
        for line in stream:
            lines.put(line.rstrip("\n"))
    except (ValueError, OSError):  # closed by stop()
        pass
    finally:
        lines.put(None)


def start_sdk_server(
    script: str,
    args: Iterable[str] = (),
    *,
    deadline: float = 60.0,
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
) -> SdkProcess:
    """Start ``sdk_scripts/<script>`` with the SDK venv and wait (at most ``deadline`` seconds)
    for its ``PORT <n>`` line. On failure, the process is stopped and the error carries its
    stderr."""
    python = sdk_python()
    path = script_path(script)
    fd, stderr_name = tempfile.mkstemp(prefix=f"{path.stem}-", suffix=".log", dir=log_dir)
    stderr_path = Path(stderr_name)
    stderr = os.fdopen(fd, "w")
    proc = subprocess.Popen(
        [str(python), str(path), *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=str(SCRIPTS_DIR),
        env=_child_env(env),
    )
    lines: "queue.Queue[str | None]" = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), name=f"{path.stem}-stdout", daemon=True)
    reader.start()
    handle = SdkProcess(proc=proc, port=0, name=path.stem, _lines=lines, _stderr=stderr,
                        _stderr_path=stderr_path, _reader=reader)
    try:
        handle.port = int(handle.wait_line("PORT ", deadline))
    except BaseException:
        handle.stop()
        raise
    if not 0 < handle.port < 65536:
        handle.stop()
        raise SdkProcessError(f"{path.stem}: bad port {handle.port}")
    return handle


def run_sdk_script(
    script: str,
    args: Iterable[str] = (),
    *,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run a short-lived SDK-side script (controller, client actor) to completion."""
    python = sdk_python()
    path = script_path(script)
    proc = subprocess.Popen(
        [str(python), str(path), *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(SCRIPTS_DIR),
        env=_child_env(env),
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise SdkProcessError(f"{path.stem} did not finish within {timeout}s\n--- stderr ---\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def last_json_line(text: str) -> dict:
    """The last stdout line that parses as a JSON object."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise ValueError(f"no JSON line in output:\n{text}")


if __name__ == "__main__":  # python -m tests.interop.sdk / python tests/interop/sdk.py
    print(sdk_python())
