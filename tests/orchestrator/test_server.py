"""``run_orchestrator`` (what the CLI calls): serves until SIGTERM, prints nothing, ends trials."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc
import pytest

from cogment_gym._proto.cogment.api import common_pb2, orchestrator_pb2_grpc
from cogment_gym.errors import TrialParamsError
from cogment_gym.orchestrator.server import OrchestratorServer, run_orchestrator

from .peers import WAIT, ClientActor, Lifecycle, ScriptedEnv, run, serving

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from cogment_gym.orchestrator.server import run_orchestrator

    def ready(lifecycle, actor):
        os.write(int(sys.argv[1]), f"{lifecycle} {actor}\\n".encode())

    run_orchestrator(host="127.0.0.1", lifecycle_port=0, actor_port=None, params_file=sys.argv[2],
                     pre_trial_hooks=[], on_ready=ready)
    """
)


def _read_line(fd: int, timeout: float) -> str:
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise AssertionError(f"no endpoints from the orchestrator process within {timeout:g} s")
        chunk = os.read(fd, 1024)
        if not chunk:
            raise AssertionError("the orchestrator process closed its pipe without reporting endpoints")
        data += chunk
    return data.decode().strip()


def test_run_orchestrator_serves_until_sigterm(tmp_path: Path) -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        async with serving(env) as env_endpoint:
            params_file = tmp_path / "params.yaml"
            params_file.write_text(
                "trial_params:\n"
                f"  environment: {{endpoint: '{env_endpoint}'}}\n"
                "  actors: [{name: p1, actor_class: player, endpoint: 'cogment://client'}]\n"
            )
            read_fd, write_fd = os.pipe()
            env_vars = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
            process = subprocess.Popen(
                [sys.executable, "-c", SCRIPT, str(write_fd), str(params_file)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
                env=env_vars,
            )
            os.close(write_fd)
            try:
                lifecycle_endpoint, actor_endpoint = _read_line(read_fd, WAIT).split()
                assert lifecycle_endpoint == actor_endpoint and lifecycle_endpoint.startswith("grpc://127.0.0.1:")
                async with grpc.aio.insecure_channel(lifecycle_endpoint[len("grpc://"):]) as channel:
                    stub = orchestrator_pb2_grpc.TrialLifecycleSPStub(channel)
                    versions = await stub.Version(common_pb2.VersionRequest(), timeout=WAIT)
                    assert "cogment" in {v.name for v in versions.versions}
                    trial_id = await Lifecycle(channel).start(config=b"")  # the file's params
                    player = ClientActor(channel, trial_id, name="p1", behaviour="never")
                    await player.until(lambda: player.record.observations, "the first observation")
                    process.send_signal(signal.SIGTERM)
                    record = await player.finished()
                    assert record.got_end and "shutting down" in (record.end_details or "")
                stdout, stderr = process.communicate(timeout=WAIT)
            finally:
                os.close(read_fd)
                if process.poll() is None:
                    process.kill()
                    process.wait()
            assert process.returncode == 0, stderr.decode()
            assert stdout == b""
            assert b"Traceback" not in stderr

    run(scenario())


def test_run_orchestrator_rejects_a_bad_params_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("trial_params: {max_steps: lots}\n")
    with pytest.raises(TrialParamsError, match="max_steps"):
        run_orchestrator(host="127.0.0.1", lifecycle_port=0, params_file=str(path))


def test_orchestrator_server_default_params_path(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("trial_params: {max_steps: 9}\n")
    with OrchestratorServer(default_params=path) as server:
        params = server.orchestrator.default_params
        assert params is not None and params.max_steps == 9 and params.max_inactivity == 30
    bad = tmp_path / "bad.yaml"
    bad.write_text("trial_params: {colour: red}\n")
    with pytest.raises(TrialParamsError, match="colour"):
        OrchestratorServer(default_params=str(bad))
