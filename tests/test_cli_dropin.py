"""``cogment-gym orchestrator`` as a drop-in for ``cogment services orchestrator``: Cogment's flag
spellings and ``COGMENT_*`` variables, the status file, ``cogment-gym services ...``, and the
official SDK test harness's launcher (tests/interop/launcher.py) run against it unchanged."""

from __future__ import annotations

import os
import threading
from concurrent import futures
from pathlib import Path

import grpc
import pytest

import cogment_gym
from cogment_gym._proto.cogment.api import common_pb2, hooks_pb2, hooks_pb2_grpc, orchestrator_pb2, orchestrator_pb2_grpc
from cogment_gym.cli import main
from cogment_gym.cli.orchestrator import StatusFile, parse

from tests.interop.launcher import entry_point, free_port, launch_orchestrator

WAIT = 30.0


def test_cogment_spellings_and_ours_give_the_same_options() -> None:
    cogment = parse(["--lifecycle_port=9100", "--actor_port=9101", "--params=p.yaml", "--pre_trial_hooks=grpc://a:1,grpc://b:2",
                     "--pre_trial_hooks=grpc://c:3", "--status_file=s"], {})
    ours = parse(["--lifecycle-port", "9100", "--actor-port", "9101", "--params", "p.yaml", "--pre-trial-hooks", "grpc://a:1", "grpc://b:2",
                  "grpc://c:3", "--status-file", "s"], {})
    assert vars(cogment) == vars(ours)
    assert cogment.lifecycle_port == 9100 and cogment.actor_port == 9101
    assert cogment.pre_trial_hooks == ["grpc://a:1", "grpc://b:2", "grpc://c:3"]
    assert cogment.host == "127.0.0.1"  # binds loopback unless told (Cogment binds every interface)


def test_cogment_environment_variables_are_defaults_and_flags_win() -> None:
    environ = {
        "COGMENT_LIFECYCLE_PORT": "9200", "COGMENT_ACTOR_PORT": "9201", "COGMENT_DEFAULT_PARAMS_FILE": "d.yaml",
        "COGMENT_PRE_TRIAL_HOOKS": "grpc://h:1,grpc://h:2", "COGMENT_STATUS_FILE": "st", "COGMENT_DIRECTORY_ENDPOINT": "grpc://dir:9005",
        "COGMENT_DIRECTORY_AUTHENTICATION_TOKEN": "tok", "COGMENT_ORCHESTRATOR_DIRECTORY_REGISTRATION_PROPERTIES": "a=1,b=2",
        "COGMENT_ORCHESTRATOR_DIRECTORY_AUTO_REGISTER": "false", "COGMENT_LOG_LEVEL": "DEBUG",
    }
    args = parse([], environ)
    assert (args.lifecycle_port, args.actor_port, args.params, args.status_file) == (9200, 9201, "d.yaml", "st")
    assert args.pre_trial_hooks == ["grpc://h:1", "grpc://h:2"]
    assert (args.directory_endpoint, args.directory_token, args.registration_properties) == ("grpc://dir:9005", "tok", {"a": "1", "b": "2"})
    assert args.auto_register is False and args.log_level == "debug"
    args = parse(["--lifecycle_port=9300", "--pre_trial_hooks=grpc://x:1", "--directory_auto_register"], environ)
    assert args.lifecycle_port == 9300 and args.pre_trial_hooks == ["grpc://x:1"] and args.auto_register is True
    assert parse([], {"TRIAL_LIFECYCLE_PORT": "9400"}).lifecycle_port == 9400  # Cogment's older name
    assert parse([], {}).lifecycle_port == 9000 and parse([], {}).actor_port is None


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["orchestrator", "--prometheus_port=9090", "--lifecycle_port=0"], "serves no Prometheus metrics"),
        (["orchestrator", "--actor_web_port=8080", "--lifecycle_port=0"], "no gRPC-Web proxy"),
        (["orchestrator", "--lifecycle_port=0", "--pre_trial_hooks=cogment://discover/prehook"], "give --directory_endpoint"),
        (["services", "orchestrator", "--lifecycle_port=70000"], "port must be in 0..65535"),
    ],
)
def test_unsupported_or_bad_values_are_one_line_and_exit_2(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_status_file_gets_its_characters_appended(tmp_path: Path) -> None:
    path = tmp_path / "status"
    path.write_text("x")
    status = StatusFile(str(path))
    for char in "IRT":
        status.put(char)
    status.close()
    assert path.read_text() == "xIRT" and status.failure is None
    missing = StatusFile(str(tmp_path / "no" / "such" / "dir"))
    missing.put("I")
    missing.close()
    assert missing.failure is not None and "cannot write the status file" in missing.failure


class _Hook(hooks_pb2_grpc.TrialHooksSPServicer):
    """A pre-trial hook: fills in the environment and a client actor, records the calls."""

    def __init__(self, env_endpoint: str) -> None:
        self.env_endpoint = env_endpoint
        self.calls: list[hooks_pb2.PreTrialParams] = []
        self.called = threading.Event()

    def OnPreTrial(self, request: hooks_pb2.PreTrialParams, context: grpc.ServicerContext) -> hooks_pb2.PreTrialParams:
        self.calls.append(request)
        params = common_pb2.TrialParams()
        params.CopyFrom(request.params)
        params.environment.endpoint = self.env_endpoint
        params.actors.add(name="player", actor_class="player", endpoint="cogment://client")
        self.called.set()
        return hooks_pb2.PreTrialParams(params=params)


PARAMS_YAML = """\
trial_params:
  properties: {from: params-file}
  environment:
    endpoint: <<token_placeholder>>
    implementation: CartPole-v1
"""


@pytest.mark.slow
def test_sdk_harness_launcher_runs_our_entry_point_unchanged(tmp_path: Path) -> None:
    """The SDK harness's command line (``<cogment_path> services orchestrator --status_file=<fifo>
    --lifecycle_port=P --actor_port=P --params=params_T.yaml --pre_trial_hooks=grpc://localhost:T``)
    with ``cogment_path`` = ``cogment-gym``: I and R in the FIFO, the params file and the hook at
    the test's port used, T once it is terminated."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "params.yaml").write_text(PARAMS_YAML)
    test_port, orchestrator_port = free_port(), free_port()
    with cogment_gym.serve("CartPole-v1") as env_server:
        hook = _Hook(env_server.endpoint)
        hook_server = grpc.server(futures.ThreadPoolExecutor(2))
        hooks_pb2_grpc.add_TrialHooksSPServicer_to_server(hook, hook_server)
        assert hook_server.add_insecure_port(f"127.0.0.1:{test_port}") == test_port
        hook_server.start()
        try:
            launched = launch_orchestrator(app, orchestrator_port, test_port, entry_point(tmp_path))
            try:
                with grpc.insecure_channel(f"localhost:{orchestrator_port}") as channel:
                    lifecycle = orchestrator_pb2_grpc.TrialLifecycleSPStub(channel)
                    versions = {v.name: v.version for v in lifecycle.Version(common_pb2.VersionRequest(), timeout=WAIT).versions}
                    assert versions["cogment"].startswith("2.")
                    request = orchestrator_pb2.TrialStartRequest(trial_id_requested="harness", config=common_pb2.SerializedMessage(content=b"cfg"))
                    assert lifecycle.StartTrial(request, timeout=WAIT).trial_id == "harness"
                    # The default params came from params_<test port>.yaml, then went through the hook.
                    [call] = hook.calls
                    assert call.params.environment.endpoint == f"grpc://localhost:{test_port}"
                    assert dict(call.params.properties) == {"from": "params-file"} and call.params.trial_config.content == b"cfg"
                    [info] = lifecycle.GetTrialInfo(orchestrator_pb2.TrialInfoRequest(get_actor_list=True), metadata=(("trial-id", "harness"),),
                                                     timeout=WAIT).trial
                    assert info.state == common_pb2.PENDING and [a.name for a in info.actors_in_trial] == ["player"]
                    # The actor port is the same server (--actor_port equal to --lifecycle_port).
                    client = orchestrator_pb2_grpc.ClientActorSPStub(channel)
                    assert client.Version(common_pb2.VersionRequest(), timeout=WAIT).versions
                    lifecycle.TerminateTrial(orchestrator_pb2.TerminateTrialRequest(hard_termination=True), metadata=(("trial-id", "harness"),), timeout=WAIT)
            finally:
                code = launched.terminate()
            assert code == 0, launched.log_text()
            assert launched.terminated_status == "T", launched.log_text()
            assert (app / f"params_{test_port}.yaml").exists()
            assert not os.path.exists(launched.status_dir)
        finally:
            hook_server.stop(0)


def test_tls_files_take_cogment_spellings_and_variables() -> None:
    environ = {"COGMENT_PRIVATE_KEY_FILE": "k.pem", "COGMENT_ROOT_CERT_FILE": "ca.pem", "COGMENT_TRUST_CHAIN_FILE": "chain.pem"}
    args = parse([], environ)
    assert (args.private_key, args.root_cert, args.cert_chain) == ("k.pem", "ca.pem", "chain.pem")
    args = parse(["--private_key=other.pem", "--trust_chain=c2.pem", "--root_cert=r2.pem"], environ)
    assert (args.private_key, args.root_cert, args.cert_chain) == ("other.pem", "r2.pem", "c2.pem")
    assert parse([], {}).private_key is None
