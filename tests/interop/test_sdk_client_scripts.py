"""The SDK-side controller and client-actor scripts, against scripted fake orchestrator services.

There is no orchestrator yet, so these tests serve (in this process, with OUR generated stubs)
a scripted ClientActorSP / TrialLifecycleSP on 127.0.0.1 and run sdk_client_actor.py /
sdk_controller.py against it. They check that the scripts work, and pin down what the official
SDK sends as a client actor and as a controller:

Client actor (context.join_trial, ClientActorSP.RunTrial; "->" the SDK, "<-" the orchestrator):
  -> NORMAL init_output {actor_name | actor_class}   (first, unprompted; metadata "trial-id")
  <- NORMAL init_input                               (the slot: actor name, class, env, config)
  <- HEARTBEAT                                       -> HEARTBEAT
  <- NORMAL observation (tick t)                     -> NORMAL action (tick_id t)
  <- NORMAL reward                                   (nothing back)
  <- LAST, <- NORMAL observation (the final one)     -> LAST_ACK (at once; no action)
  <- NORMAL reward, <- END                           the SDK closes its side; the call ends OK.
  <- END instead of init_input: join_trial returns without running the actor.

Controller (TrialLifecycleSP):
  Version (no metadata) for get_remote_versions; WatchTrials(TrialListRequest(filter=[],
  full_info=False)) with no metadata; StartTrial(TrialStartRequest(params=..., user_id=<the
  Context's user_id>, trial_id_requested=...)) with no metadata; GetTrialInfo with metadata
  "trial-id"; TerminateTrial(hard_termination=...) with metadata "trial-id" (one per trial).
"""

from __future__ import annotations

import json
import threading
from concurrent import futures
from pathlib import Path
from typing import Iterator

import grpc
import pytest

from cogment_gym._proto.cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2

from . import sdk
from ._wire import (
    assert_state_progression,
    CS,
    decode_int64_scalar,
    describe,
    dict_get,
    dict_value,
    int64_scalar,
    observation_bytes,
)

pytestmark = [pytest.mark.network, pytest.mark.slow]

WAIT = 30.0  # generous: CI machines are loaded
SCRIPT_TIMEOUT = 60.0


@pytest.fixture
def grpc_server() -> Iterator[tuple[grpc.Server, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    port = server.add_insecure_port("127.0.0.1:0")
    assert port
    yield server, port
    server.stop(grace=None)


# ---- client actor ---------------------------------------------------------------------------------


def actor_input(**fields) -> common_pb2.ActorRunTrialInput:
    fields.setdefault("state", CS.NORMAL)
    return common_pb2.ActorRunTrialInput(**fields)


def observation(tick: int, *, terminated: bool = False) -> common_pb2.ActorRunTrialInput:
    return actor_input(observation=common_pb2.Observation(
        tick_id=tick, timestamp=1 + tick, content=observation_bytes(tick, reward=1.0, terminated=terminated)))


def reward(tick: int, value: float) -> common_pb2.ActorRunTrialInput:
    return actor_input(reward=common_pb2.Reward(
        tick_id=tick, receiver_name="p", value=value,
        sources=[common_pb2.RewardSource(sender_name="env", value=value, confidence=1.0)]))


class FakeClientActorSP(orchestrator_pb2_grpc.ClientActorSPServicer):
    """Plays one trial of 3 observations + a final one with whoever joins."""

    def __init__(self, *, refuse: bool = False, seed: int = 5):
        self.refuse = refuse
        self.seed = seed
        self.received: list[common_pb2.ActorRunTrialOutput] = []
        self.metadata: dict[str, str] = {}
        self.finished = threading.Event()

    def RunTrial(self, request_iterator, context):
        self.metadata = dict(context.invocation_metadata())
        try:
            yield from self._play(request_iterator)
        finally:
            self.finished.set()

    def _play(self, request_iterator):
        def recv() -> common_pb2.ActorRunTrialOutput | None:
            message = next(request_iterator, None)
            if message is not None:
                self.received.append(message)
            return message

        if recv() is None:
            return
        if self.refuse:
            yield actor_input(state=CS.END, details="no slot for you")
            return
        config = env_pb2.ActorConfig(settings=dict_value(seed=int64_scalar(self.seed)))
        yield actor_input(init_input=common_pb2.ActorInitialInput(
            actor_name="p", actor_class="player", env_name="env", config=common_pb2.SerializedMessage(
                content=config.SerializeToString())))
        yield actor_input(state=CS.HEARTBEAT)
        if recv() is None:
            return
        for tick in range(3):
            yield observation(tick)
            if recv() is None:
                return
            yield reward(tick, 1.0)
        yield actor_input(state=CS.LAST)
        yield observation(3, terminated=True)
        if recv() is None:
            return
        yield reward(3, 2.0)
        yield actor_input(state=CS.END)


@pytest.mark.parametrize("join_by", ["actor-name", "actor-class"])
def test_client_actor_joins_and_plays(sdk_venv_python, grpc_server, join_by: str) -> None:
    server, port = grpc_server
    fake = FakeClientActorSP(seed=5)
    orchestrator_pb2_grpc.add_ClientActorSPServicer_to_server(fake, server)
    server.start()

    who = ["--actor-name", "p"] if join_by == "actor-name" else ["--actor-class", "player"]
    proc = sdk.run_sdk_script(
        "sdk_client_actor.py",
        ["--endpoint", f"grpc://127.0.0.1:{port}", "--trial-id", "client-trial", *who, "--timeout", "30"],
        timeout=SCRIPT_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    result = sdk.last_json_line(proc.stdout)
    assert fake.finished.wait(WAIT)

    assert fake.metadata.get("trial-id") == "client-trial"
    assert [describe(m) for m in fake.received] == [
        "NORMAL:init_output", "HEARTBEAT", "NORMAL:action", "NORMAL:action", "NORMAL:action", "LAST_ACK",
    ]
    init = fake.received[0].init_output
    if join_by == "actor-name":
        assert init.WhichOneof("slot_selection") == "actor_name" and init.actor_name == "p"
    else:
        assert init.WhichOneof("slot_selection") == "actor_class" and init.actor_class == "player"
    wire_actions = []
    for tick, message in enumerate(fake.received[2:5]):
        assert message.action.tick_id == tick
        wire_actions.append(decode_int64_scalar(env_pb2.ActionPayload.FromString(message.action.content).value))

    assert result["joined"] is True
    assert result["trial_id"] == "client-trial"
    assert result["actor_name"] == "p" and result["actor_class"] == "player" and result["env_name"] == "env"
    assert result["seed"] == 5  # from the ActorConfig sent in init_input
    assert result["actions"] == wire_actions
    assert result["observation_values"] == [0, 1, 2, 3]
    assert [r["value"] for r in result["rewards"]] == [1.0, 1.0, 1.0, 2.0]
    assert result["ended"] == "final"
    assert result["event_types"][-1] == "FINAL"


def test_client_actor_refused(sdk_venv_python, grpc_server) -> None:
    server, port = grpc_server
    fake = FakeClientActorSP(refuse=True)
    orchestrator_pb2_grpc.add_ClientActorSPServicer_to_server(fake, server)
    server.start()

    proc = sdk.run_sdk_script(
        "sdk_client_actor.py",
        ["--endpoint", f"grpc://127.0.0.1:{port}", "--trial-id", "nope", "--actor-name", "p", "--timeout", "30"],
        timeout=SCRIPT_TIMEOUT,
    )
    assert proc.returncode == 1
    assert "could not join trial [nope]" in proc.stderr
    assert sdk.last_json_line(proc.stdout)["joined"] is False


# ---- controller -------------------------------------------------------------------------------------


class FakeLifecycle(orchestrator_pb2_grpc.TrialLifecycleSPServicer):
    def __init__(self, *, expect_terminate: bool = False):
        self.expect_terminate = expect_terminate
        self.started = threading.Event()
        self.terminated = threading.Event()
        self.trial_id = ""
        self.start_request: orchestrator_pb2.TrialStartRequest | None = None
        self.calls: list[tuple[str, dict]] = []
        self.watch_request: orchestrator_pb2.TrialListRequest | None = None
        self.terminate_request: orchestrator_pb2.TerminateTrialRequest | None = None

    def _record(self, name: str, context) -> dict:
        metadata = {}
        for key, value in context.invocation_metadata():
            if not key.startswith(("grpc-", "user-agent", ":")):
                metadata.setdefault(key, []).append(value)
        self.calls.append((name, metadata))
        return metadata

    def Version(self, request, context):
        self._record("Version", context)
        return common_pb2.VersionInfo(versions=[
            common_pb2.VersionInfo.Version(name="orchestrator", version="fake"),
            common_pb2.VersionInfo.Version(name="cogment-api", version="2.0"),
        ])

    def StartTrial(self, request, context):
        self._record("StartTrial", context)
        self.start_request = request
        self.trial_id = request.trial_id_requested or "generated-id"
        self.started.set()
        return orchestrator_pb2.TrialStartReply(trial_id=self.trial_id)

    def GetTrialInfo(self, request, context):
        self._record("GetTrialInfo", context)
        return orchestrator_pb2.TrialInfoReply(trial=[
            orchestrator_pb2.TrialInfo(trial_id=self.trial_id, state=common_pb2.RUNNING, env_name="env"),
        ])

    def TerminateTrial(self, request, context):
        self._record("TerminateTrial", context)
        self.terminate_request = request
        self.terminated.set()
        return orchestrator_pb2.TerminateTrialReply()

    def WatchTrials(self, request, context):
        self._record("WatchTrials", context)
        self.watch_request = request
        if not self.started.wait(WAIT):
            return
        yield orchestrator_pb2.TrialListEntry(trial_id="someone-else", state=common_pb2.RUNNING)
        yield orchestrator_pb2.TrialListEntry(trial_id=self.trial_id, state=common_pb2.PENDING)
        yield orchestrator_pb2.TrialListEntry(trial_id=self.trial_id, state=common_pb2.RUNNING)
        if self.expect_terminate:
            if not self.terminated.wait(WAIT):
                return
            yield orchestrator_pb2.TrialListEntry(trial_id=self.trial_id, state=common_pb2.TERMINATING)
        yield orchestrator_pb2.TrialListEntry(trial_id="someone-else", state=common_pb2.ENDED)
        yield orchestrator_pb2.TrialListEntry(trial_id=self.trial_id, state=common_pb2.ENDED)


TRIAL_YAML = """\
trial_id: ctl-1
params:
  environment:
    name: env
    endpoint: grpc://127.0.0.1:1
    implementation: counter
  actors:
    - name: p
      actor_class: player
      endpoint: cogment://client
    - name: q
      actor_class: player
      endpoint: grpc://127.0.0.1:2
      optional: true
  max_steps: 12
  properties: {purpose: interop}
environment_config:
  seed: "42"
actor_configs:
  p:
    settings: {dict: {entries: [{strKey: seed, value: {intValue: "9"}}]}}
default_actions:
  q:
    value: {scalar: {dtype: DTYPE_INT64, data: AQAAAAAAAAA=}}
"""


def test_controller_runs_a_trial_to_its_end(sdk_venv_python, grpc_server, tmp_path: Path) -> None:
    server, port = grpc_server
    fake = FakeLifecycle()
    orchestrator_pb2_grpc.add_TrialLifecycleSPServicer_to_server(fake, server)
    server.start()
    trial_file = tmp_path / "trial.yaml"
    trial_file.write_text(TRIAL_YAML)

    proc = sdk.run_sdk_script(
        "sdk_controller.py",
        ["--endpoint", f"grpc://127.0.0.1:{port}", "--trial", str(trial_file), "--timeout", "30"],
        timeout=SCRIPT_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    result = sdk.last_json_line(proc.stdout)
    assert result["trial_id"] == "ctl-1"
    assert result["ended"] is True
    # The fake answers GetTrialInfo with RUNNING while its watch stream still starts from
    # PENDING: the info reply is not ordered with the watch entries, so it is not put before them
    # (the flaky ['PENDING', 'INITIALIZING', 'PENDING', ...] of an SDK controller against our
    # Orchestrator, made deterministic).
    assert result["info_after_start"] == ["RUNNING"]
    assert result["states"] == result["watch_states"] == ["PENDING", "RUNNING", "ENDED"]
    assert_state_progression(result["states"])
    assert result["versions"] == {"orchestrator": "fake", "cogment-api": "2.0"}

    request = fake.start_request
    assert request is not None
    assert request.user_id == "cogment_gym_interop_controller"
    assert request.trial_id_requested == "ctl-1"
    assert request.WhichOneof("start_data") == "params"
    params = request.params
    assert (params.environment.name, params.environment.endpoint, params.environment.implementation) == (
        "env", "grpc://127.0.0.1:1", "counter")
    assert env_pb2.EnvConfig.FromString(params.environment.config.content).seed == 42
    assert [(a.name, a.actor_class, a.endpoint, a.optional) for a in params.actors] == [
        ("p", "player", "cogment://client", False), ("q", "player", "grpc://127.0.0.1:2", True)]
    settings = env_pb2.ActorConfig.FromString(params.actors[0].config.content).settings
    assert dict_get(settings, "seed").int_value == 9
    assert not params.actors[1].HasField("config")
    default = env_pb2.ActionPayload.FromString(params.actors[1].default_action.content)
    assert decode_int64_scalar(default.value) == 1
    assert params.max_steps == 12 and dict(params.properties) == {"purpose": "interop"}

    calls = dict(fake.calls)
    assert calls["Version"] == {}
    assert calls["StartTrial"] == {}
    assert calls["WatchTrials"] == {}
    assert calls["GetTrialInfo"] == {"trial-id": ["ctl-1"]}
    assert "TerminateTrial" not in calls
    assert fake.watch_request == orchestrator_pb2.TrialListRequest()


def test_controller_terminates_when_asked(sdk_venv_python, grpc_server, tmp_path: Path) -> None:
    server, port = grpc_server
    fake = FakeLifecycle(expect_terminate=True)
    orchestrator_pb2_grpc.add_TrialLifecycleSPServicer_to_server(fake, server)
    server.start()
    trial_file = tmp_path / "trial.json"
    trial_file.write_text(json.dumps({
        "params": {"environment": {"endpoint": "grpc://127.0.0.1:1"}, "actors": [
            {"name": "p", "actor_class": "player", "endpoint": "cogment://client"}]},
        "terminate": {"hard": True},
    }))

    proc = sdk.run_sdk_script(
        "sdk_controller.py",
        ["--endpoint", f"grpc://127.0.0.1:{port}", "--trial", str(trial_file), "--timeout", "30"],
        timeout=SCRIPT_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    result = sdk.last_json_line(proc.stdout)
    assert result["trial_id"] == "generated-id"  # no trial id requested
    assert result["terminate_requested"] == {"hard": True}
    assert result["states"][-2:] == ["TERMINATING", "ENDED"]
    assert fake.start_request.trial_id_requested == ""
    assert fake.terminate_request == orchestrator_pb2.TerminateTrialRequest(hard_termination=True)
    assert dict(fake.calls)["TerminateTrial"] == {"trial-id": ["generated-id"]}


def test_controller_reports_failures(sdk_venv_python, grpc_server, tmp_path: Path) -> None:
    server, port = grpc_server
    server.start()  # serves nothing: every call is UNIMPLEMENTED
    trial_file = tmp_path / "trial.json"
    trial_file.write_text(json.dumps({"params": {}}))

    proc = sdk.run_sdk_script(
        "sdk_controller.py",
        ["--endpoint", f"grpc://127.0.0.1:{port}", "--trial", str(trial_file), "--timeout", "30"],
        timeout=SCRIPT_TIMEOUT,
    )
    assert proc.returncode == 1
    result = sdk.last_json_line(proc.stdout)
    assert result["ended"] is False
    assert "UNIMPLEMENTED" in result["error"] or "Unimplemented" in result["error"]
    assert "sdk_controller:" in proc.stderr
