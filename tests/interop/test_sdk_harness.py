"""The official Cogment Python SDK 2.10.1, driven by hand with OUR generated stubs over real gRPC.

These tests play the orchestrator's side of EnvironmentSP.RunTrial and ServiceActorSP.RunTrial
against the SDK-side scripts of sdk_scripts/ (run in the SDK's own venv, see sdk.py), and pin
down, as assertions, the message sequences the SDK produces.

What the SDK does on the wire (as observed here; "->" is us / the orchestrator, "<-" the SDK):

Both services
  * Version -> [("cogment_sdk", "2.10.1"), ("grpc", <grpcio version of its process>)]. There is
    no "cogment-api" entry, although the API reference says callers expect one.
    Status(["*"]) -> {"overall_load", "nb_sessions"}.
  * RunTrial needs the metadata key "trial-id" (only that one); without it the call fails with
    UNKNOWN (a KeyError in the servicer) before anything is read.
  * HEARTBEAT is echoed, before init_input as well as during the trial.
  * Before init_input: LAST -> <- LAST_ACK, then END ends the call (OK); END alone ends it (OK);
    closing our side ends it (OK). Any other NORMAL message before init_input trips an SDK bug
    (UnboundLocalError on `reply`) and the call fails with UNKNOWN. An unknown actor class or
    implementation name in init_input fails the call with UNKNOWN.
  * The SDK never sends END itself; once the trial is over for it, its RunTrial returns and the
    call ends with status OK (soft or hard end alike). It reads the state of every message we
    send, and the data only of NORMAL ones.

Environment (EnvironmentSP.RunTrial)
  -> NORMAL init_input                    <- NORMAL init_output (empty EnvInitialOutput)
                                          <- NORMAL observation_set (the initial one)
  each step: -> NORMAL action_set         <- NORMAL reward   (only because our env script calls
                                             add_reward: tick_id -1, receiver "*", one source
                                             whose sender_name is the env's name)
                                          <- NORMAL observation_set
  Observation sets always carry tick_id -1 (the SDK leaves ticks to the orchestrator), one
  serialized observation shared by all actors (actors_map [0, 0, ...]) when the same message
  object is given to all of them, and a timestamp in ns.
  Soft end initiated by the environment (session.end(final observations)):
     -> NORMAL action_set                 <- NORMAL reward, <- LAST,
                                          <- NORMAL observation_set (the final one), <- LAST_ACK
     -> END                               call ends OK; the env's event loop gets FINAL.
     The env wants no LAST_ACK from us (it logs an error if it gets one), only END.
  Soft end initiated by the orchestrator:
     -> LAST, -> NORMAL action_set        <- NORMAL reward, <- NORMAL observation_set, <- LAST_ACK
                                             (no LAST from the env: the SDK auto-acknowledges
                                             once the env produced observations for an ENDING
                                             event)
     -> END                               call ends OK; FINAL event.
     So LAST must be followed by an action set: the env acknowledges only after observing.
  Hard end: -> END (with details)         call ends OK, nothing more comes; no FINAL event.
  Closing our side (EOF) instead of sending END after LAST_ACK leaves the call open (the env's
  code waits for FINAL) until the caller cancels it: an orchestrator must always send END.

Service actor (ServiceActorSP.RunTrial)
  -> NORMAL init_input                    <- NORMAL init_output (empty ActorInitialOutput)
  -> NORMAL observation (tick t)          <- NORMAL action (tick_id t, timestamp in ns)
  -> NORMAL reward                        (nothing back; an event for the actor's code)
  Soft end: -> LAST, -> NORMAL observation (the final one)
                                          <- LAST_ACK (sent by the SDK as soon as that
                                             observation arrives, before the actor's code sees
                                             it: there is no action for the final observation)
            -> NORMAL reward (still delivered after LAST_ACK), -> END
                                          call ends OK; FINAL event.
  LAST then END with no observation between: no LAST_ACK at all, call ends OK, FINAL event.
  Hard end: -> END (with details)         call ends OK; no FINAL event.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import grpc
import pytest

from cogment_gym._proto.cogment.api import agent_pb2_grpc, common_pb2, environment_pb2, environment_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2

from . import sdk
from ._wire import (
    CS,
    BidiStream,
    action_bytes,
    decode_int64_scalar,
    describe,
    dict_get,
    dict_value,
    int64_scalar,
    observation_bytes,
)

pytestmark = [pytest.mark.network, pytest.mark.slow]

WAIT = 30.0  # seconds, for any single reply / event (generous: CI machines are loaded)


# ---- helpers -----------------------------------------------------------------------------------


def env_input(**fields) -> environment_pb2.EnvRunTrialInput:
    fields.setdefault("state", CS.NORMAL)
    return environment_pb2.EnvRunTrialInput(**fields)


def actor_input(**fields) -> common_pb2.ActorRunTrialInput:
    fields.setdefault("state", CS.NORMAL)
    return common_pb2.ActorRunTrialInput(**fields)


def env_init(*, actors=(("p", "player"),), steps: int | None = None, impl_name: str = "") -> environment_pb2.EnvRunTrialInput:
    init = environment_pb2.EnvInitialInput(
        name="env",
        impl_name=impl_name,
        tick_id=0,
        actors_in_trial=[common_pb2.TrialActor(name=name, actor_class=cls) for name, cls in actors],
    )
    if steps is not None:
        config = env_pb2.EnvConfig(options=dict_value(steps=int64_scalar(steps)))
        init.config.content = config.SerializeToString()
    return env_input(init_input=init)


def action_set(tick_id: int, *actions: int) -> environment_pb2.EnvRunTrialInput:
    return env_input(
        action_set=environment_pb2.ActionSet(
            tick_id=tick_id, timestamp=1_000_000_000 + tick_id, actions=[action_bytes(a) for a in actions]
        )
    )


def decode_observation_set(message, n_actors: int = 1) -> list[env_pb2.ObservationPayload]:
    """Check an EnvRunTrialOutput carrying an observation set; return one payload per actor."""
    assert message.state == CS.NORMAL and message.WhichOneof("data") == "observation_set", describe(message)
    obs_set = message.observation_set
    assert obs_set.tick_id == -1
    assert obs_set.timestamp > 0
    assert len(obs_set.actors_map) == n_actors
    # The SDK sends the same message object once, shared by every actor.
    assert list(obs_set.actors_map) == [0] * n_actors
    assert len(obs_set.observations) == 1
    return [env_pb2.ObservationPayload.FromString(obs_set.observations[i]) for i in obs_set.actors_map]


def check_counter_observation(payload: env_pb2.ObservationPayload, count: int, *, terminated: bool,
                              last_action: int | None) -> None:
    assert decode_int64_scalar(payload.value) == count
    assert payload.reward == (1.0 if count else 0.0)
    assert payload.terminated is terminated
    assert payload.truncated is False
    if last_action is None:
        assert not payload.HasField("info")
    else:
        assert decode_int64_scalar(dict_get(payload.info, "last_action")) == last_action


def check_env_reward(message) -> None:
    assert message.state == CS.NORMAL and message.WhichOneof("data") == "reward", describe(message)
    reward = message.reward
    assert reward.tick_id == -1
    assert reward.receiver_name == "*"
    assert reward.value == 1.0
    assert [(s.sender_name, s.value, s.confidence) for s in reward.sources] == [("env", 1.0, 1.0)]


def bare(message, state: int) -> None:
    """A state-only message (LAST, LAST_ACK, HEARTBEAT): no data."""
    assert message.state == state and message.WhichOneof("data") is None, describe(message)


def wait_trial_end(process: sdk.SdkProcess, trial_id: str) -> dict:
    summary = process.wait_json("TRIAL_END ", WAIT)
    assert summary["trial_id"] == trial_id
    return summary


@pytest.fixture
def env_server(start_sdk, tmp_path: Path):
    summary_file = tmp_path / "env-summaries.jsonl"
    process = start_sdk("sdk_env.py", "--steps", "10", "--summary-file", str(summary_file))
    channel = grpc.insecure_channel(process.address)
    stub = environment_pb2_grpc.EnvironmentSPStub(channel)
    yield process, stub, summary_file
    channel.close()


@pytest.fixture
def actor_server(start_sdk, tmp_path: Path):
    summary_file = tmp_path / "actor-summaries.jsonl"
    process = start_sdk("sdk_service_actor.py", "--seed", "1", "--summary-file", str(summary_file))
    channel = grpc.insecure_channel(process.address)
    stub = agent_pb2_grpc.ServiceActorSPStub(channel)
    yield process, stub, summary_file
    channel.close()


def run_trial(stub, trial_id: str | None) -> BidiStream:
    metadata = (("trial-id", trial_id),) if trial_id is not None else ()
    return BidiStream(stub.RunTrial, metadata=metadata, timeout=60)


# ---- the venv ------------------------------------------------------------------------------------


def test_sdk_venv_has_cogment_2_10_1(sdk_venv_python: Path) -> None:
    out = sdk._run(
        [sdk_venv_python, "-c", "import cogment; print(cogment.__version__)"], timeout=120
    )
    assert out.strip().splitlines()[-1] == "2.10.1"
    # The regenerated API code and our payload package load with the venv's modern protobuf.
    out = sdk._run(
        [
            sdk_venv_python, "-c",
            "import google.protobuf, grpc, cogment.context, cogment.api.orchestrator_pb2_grpc;"
            "from cogment_gym_v1 import env_pb2, values_pb2;"
            "print(google.protobuf.__version__, grpc.__version__, env_pb2.ObservationPayload.DESCRIPTOR.full_name)",
        ],
        timeout=120,
    )
    protobuf_version, grpc_version, full_name = out.split()
    assert int(protobuf_version.split(".")[0]) >= 5
    assert int(grpc_version.split(".")[1]) >= 62
    assert full_name == "cogment_gym.v1.ObservationPayload"


def test_payload_code_follows_proto_changes(sdk_venv_python: Path, tmp_path: Path, monkeypatch) -> None:
    """Our payload code for the venv is regenerated when protos/cogment_gym/v1/*.proto change."""
    protos = tmp_path / "protos"
    shutil.copytree(sdk.PROTOS_DIR / "cogment_gym", protos / "cogment_gym")
    monkeypatch.setattr(sdk, "PROTOS_DIR", protos)
    monkeypatch.setattr(sdk, "PAYLOAD_PROTO_DIR", protos / "cogment_gym" / "v1")
    monkeypatch.setattr(sdk, "PYLIB_DIR", tmp_path / "pylib")
    monkeypatch.setattr(sdk, "_PAYLOAD_STAMP", tmp_path / "payload.stamp")

    assert sdk._ensure_payload_package() is True
    assert sdk._ensure_payload_package() is False  # unchanged: cached
    with open(protos / "cogment_gym" / "v1" / "env.proto", "a") as proto:
        proto.write("\nmessage InteropProbe { int64 x = 1; }\n")
    assert sdk._ensure_payload_package() is True

    generated = (tmp_path / "pylib" / "cogment_gym_v1" / "env_pb2.py").read_text()
    assert "from cogment_gym_v1 import values_pb2" in generated
    assert "from cogment_gym.v1" not in generated
    out = sdk._run(
        [sdk_venv_python, "-c",
         f"import sys; sys.path.insert(0, {str(tmp_path / 'pylib')!r}); from cogment_gym_v1 import env_pb2;"
         "print(env_pb2.InteropProbe(x=3).x, env_pb2.__file__)"],
        timeout=120,
    )
    value, path = out.split()
    assert value == "3" and path.startswith(str(tmp_path))


def test_sdk_server_binds_localhost_on_os_chosen_port(env_server) -> None:
    process, stub, _ = env_server
    assert 0 < process.port < 65536
    log = process.stderr_text()
    # The SDK asked for every interface, port 0; the script bound 127.0.0.1 on an OS-chosen port
    # and the SDK used the port returned by add_insecure_port.
    assert "SDK asked to bind [[::]:0]" in log
    assert f"Serving on port [{process.port}]" in log


# ---- environment ---------------------------------------------------------------------------------


def test_env_version_and_status(env_server) -> None:
    process, stub, _ = env_server
    reply = stub.Version(common_pb2.VersionRequest(), timeout=WAIT)
    versions = {v.name: v.version for v in reply.versions}
    assert set(versions) == {"cogment_sdk", "grpc"}
    assert versions["cogment_sdk"] == "2.10.1"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", versions["grpc"])
    assert "cogment-api" not in versions

    status = stub.Status(common_pb2.StatusRequest(names=["*"]), timeout=WAIT)
    assert set(status.statuses) == {"overall_load", "nb_sessions"}
    assert status.statuses["nb_sessions"] == "0"
    assert stub.Status(common_pb2.StatusRequest(), timeout=WAIT).statuses == {}


# SDK 2.10.1 race (docs/protocol.md §1): its reader task answers a HEARTBEAT with a write of its
# own while its writer task's write may still be pending on the same call; gRPC refuses it and the
# reader task dies, so the trial stops reading. Cogment's Orchestrator sends no heartbeat after
# init; this test sends them on purpose, so it tells that defect from a failure of ours.
SDK_HEARTBEAT_RACE = "GRPC_CALL_ERROR_TOO_MANY_OPERATIONS"


def test_env_soft_end_initiated_by_env(env_server) -> None:
    process, stub, summary_file = env_server
    try:
        _env_soft_end_initiated_by_env(process, stub, summary_file)
    except AssertionError:
        if SDK_HEARTBEAT_RACE in process.stderr_text():
            pytest.xfail(f"the SDK 2.10.1 heartbeat race ({SDK_HEARTBEAT_RACE} in its log: its reader task died; docs/protocol.md)")
        raise


def _env_soft_end_initiated_by_env(process: Any, stub: Any, summary_file: Any) -> None:
    stream = run_trial(stub, "env-ends")
    try:
        # The heartbeat's echo before the init: sent together, the SDK's echo can race its own
        # init reply on the call (SDK_HEARTBEAT_RACE).
        stream.send(env_input(state=CS.HEARTBEAT))
        bare(stream.recv(WAIT), CS.HEARTBEAT)
        stream.send(env_init(steps=3))
        init_reply = stream.recv(WAIT)
        assert init_reply.state == CS.NORMAL and init_reply.WhichOneof("data") == "init_output"
        assert init_reply.init_output.ByteSize() == 0

        (first,) = decode_observation_set(stream.recv(WAIT))
        check_counter_observation(first, 0, terminated=False, last_action=None)

        sent = [1, 0]
        for tick, action in enumerate(sent):
            stream.send(action_set(tick, action))
            check_env_reward(stream.recv(WAIT))
            (obs,) = decode_observation_set(stream.recv(WAIT))
            check_counter_observation(obs, tick + 1, terminated=False, last_action=action)

        # A heartbeat in the middle of the trial is echoed.
        stream.send(env_input(state=CS.HEARTBEAT))
        bare(stream.recv(WAIT), CS.HEARTBEAT)

        # Third step: the env terminates and ends the trial itself.
        stream.send(action_set(2, 1))
        sent.append(1)
        check_env_reward(stream.recv(WAIT))
        bare(stream.recv(WAIT), CS.LAST)
        (final,) = decode_observation_set(stream.recv(WAIT))
        check_counter_observation(final, 3, terminated=True, last_action=1)
        bare(stream.recv(WAIT), CS.LAST_ACK)

        stream.send(env_input(state=CS.END))
        end = stream.expect_end(WAIT)
        assert end.code == grpc.StatusCode.OK
    finally:
        stream.close()

    assert stream.describe() == [
        "HEARTBEAT", "NORMAL:init_output", "NORMAL:observation_set",
        "NORMAL:reward", "NORMAL:observation_set",
        "NORMAL:reward", "NORMAL:observation_set",
        "HEARTBEAT",
        "NORMAL:reward", "LAST", "NORMAL:observation_set", "LAST_ACK",
    ]
    summary = wait_trial_end(process, "env-ends")
    assert summary["steps"] == 3  # from EnvConfig.options, not --steps 10
    assert summary["ended_by"] == "env"
    assert summary["event_types"] == ["ACTIVE", "ACTIVE", "ACTIVE", "FINAL"]
    assert summary["actions"] == [[a] for a in sent]
    assert json.loads(summary_file.read_text().splitlines()[-1]) == summary


def test_env_soft_end_initiated_by_orchestrator(env_server) -> None:
    process, stub, _ = env_server
    stream = run_trial(stub, "orchestrator-ends")
    actors = (("p0", "player"), ("p1", "player"))
    try:
        stream.send(env_init(actors=actors))  # no config: --steps 10
        assert stream.recv(WAIT).WhichOneof("data") == "init_output"
        for obs in decode_observation_set(stream.recv(WAIT), n_actors=2):
            check_counter_observation(obs, 0, terminated=False, last_action=None)

        stream.send(action_set(0, 1, 0))
        check_env_reward(stream.recv(WAIT))
        for obs in decode_observation_set(stream.recv(WAIT), n_actors=2):
            check_counter_observation(obs, 1, terminated=False, last_action=1)

        # The orchestrator ends the trial: LAST, then the last action set.
        stream.send(env_input(state=CS.LAST), action_set(1, 0, 1))
        check_env_reward(stream.recv(WAIT))
        for obs in decode_observation_set(stream.recv(WAIT), n_actors=2):
            check_counter_observation(obs, 2, terminated=False, last_action=0)
        bare(stream.recv(WAIT), CS.LAST_ACK)

        stream.send(env_input(state=CS.END))
        assert stream.expect_end(WAIT).code == grpc.StatusCode.OK
    finally:
        stream.close()

    assert stream.describe() == [
        "NORMAL:init_output", "NORMAL:observation_set",
        "NORMAL:reward", "NORMAL:observation_set",
        "NORMAL:reward", "NORMAL:observation_set", "LAST_ACK",
    ]
    summary = wait_trial_end(process, "orchestrator-ends")
    assert summary["steps"] == 10
    assert summary["ended_by"] == "orchestrator"
    assert summary["event_types"] == ["ACTIVE", "ENDING", "FINAL"]
    assert summary["actions"] == [[1, 0], [0, 1]]


def test_env_hard_end(env_server) -> None:
    process, stub, _ = env_server
    stream = run_trial(stub, "hard-end")
    try:
        stream.send(env_init(steps=5))
        assert stream.recv(WAIT).WhichOneof("data") == "init_output"
        decode_observation_set(stream.recv(WAIT))
        stream.send(action_set(0, 1))
        check_env_reward(stream.recv(WAIT))
        decode_observation_set(stream.recv(WAIT))

        stream.send(env_input(state=CS.END, details="stopped by the test"))
        assert stream.expect_end(WAIT).code == grpc.StatusCode.OK
    finally:
        stream.close()

    summary = wait_trial_end(process, "hard-end")
    assert summary["ended_by"] == "hard"
    assert summary["event_types"] == ["ACTIVE"]  # no FINAL
    assert "ended forcefully [stopped by the test]" in process.stderr_text()


def test_env_waits_for_end_after_last_ack(env_server) -> None:
    """Closing our side instead of sending END does not end the call: END is required."""
    process, stub, _ = env_server
    stream = run_trial(stub, "no-end")
    try:
        stream.send(env_init(steps=1))
        stream.recv(WAIT)
        stream.recv(WAIT)
        stream.send(action_set(0, 0))
        assert [describe(stream.recv(WAIT)) for _ in range(4)] == [
            "NORMAL:reward", "LAST", "NORMAL:observation_set", "LAST_ACK",
        ]
        stream.done_writing()
        with pytest.raises(AssertionError, match="no reply within"):
            stream.expect_end(1.0)
    finally:
        stream.close()  # cancels the call
    # Once cancelled, the env's code is released without a FINAL event.
    summary = wait_trial_end(process, "no-end")
    assert summary["event_types"] == ["ACTIVE"]


def test_env_ends_before_init(env_server) -> None:
    process, stub, _ = env_server
    # LAST before init_input is acknowledged; END then ends the call.
    stream = run_trial(stub, "early-last")
    try:
        stream.send(env_input(state=CS.LAST))
        bare(stream.recv(WAIT), CS.LAST_ACK)
        stream.send(env_input(state=CS.END))
        assert stream.expect_end(WAIT).code == grpc.StatusCode.OK
    finally:
        stream.close()
    # END alone, or closing our side, ends it too.
    for trial_id, message in (("early-end", env_input(state=CS.END)), ("early-eof", None)):
        stream = run_trial(stub, trial_id)
        try:
            if message is not None:
                stream.send(message)
            else:
                stream.done_writing()
            assert stream.expect_end(WAIT).code == grpc.StatusCode.OK
            assert stream.received == []
        finally:
            stream.close()


def test_env_run_trial_errors(env_server) -> None:
    process, stub, _ = env_server
    cases = [
        # (trial id metadata, first message, expected text in the status details)
        (None, env_init(), "trial-id"),
        ("bad-class", env_init(actors=(("p", "nope"),)), "class [nope] of actor [p] cannot be found"),
        ("bad-impl", env_init(impl_name="nope"), "Unknown impl [nope]"),
        # SDK bug: any NORMAL data before init_input raises UnboundLocalError.
        ("action-first", action_set(0, 1), "UnboundLocalError"),
    ]
    for trial_id, first, expected in cases:
        stream = run_trial(stub, trial_id)
        try:
            stream.send(first)
            end = stream.expect_end(WAIT)
        finally:
            stream.close()
        assert end.code == grpc.StatusCode.UNKNOWN, (trial_id, end)
        assert expected in (end.details or ""), (trial_id, end)
    # The server is still fine afterwards.
    assert stub.Version(common_pb2.VersionRequest(), timeout=WAIT).versions


# ---- service actor -------------------------------------------------------------------------------


def actor_init(seed: int | None = None) -> common_pb2.ActorRunTrialInput:
    init = common_pb2.ActorInitialInput(actor_name="p", actor_class="player", env_name="env")
    if seed is not None:
        config = env_pb2.ActorConfig(settings=dict_value(seed=int64_scalar(seed)))
        init.config.content = config.SerializeToString()
    return actor_input(init_input=init)


def observation(tick: int, *, terminated: bool = False) -> common_pb2.ActorRunTrialInput:
    return actor_input(
        observation=common_pb2.Observation(
            tick_id=tick, timestamp=2_000_000_000 + tick,
            content=observation_bytes(tick, reward=1.0 if tick else 0.0, terminated=terminated),
        )
    )


def reward(tick: int, value: float) -> common_pb2.ActorRunTrialInput:
    return actor_input(
        reward=common_pb2.Reward(
            tick_id=tick, receiver_name="p", value=value,
            sources=[common_pb2.RewardSource(sender_name="env", value=value, confidence=1.0)],
        )
    )


def decode_action(message, tick: int) -> int:
    assert message.state == CS.NORMAL and message.WhichOneof("data") == "action", describe(message)
    assert message.action.tick_id == tick
    assert message.action.timestamp > 0
    value = decode_int64_scalar(env_pb2.ActionPayload.FromString(message.action.content).value)
    assert value in (0, 1)
    return value


def start_actor_trial(stream: BidiStream, seed: int | None) -> None:
    stream.send(actor_input(state=CS.HEARTBEAT), actor_init(seed))
    bare(stream.recv(WAIT), CS.HEARTBEAT)
    init_reply = stream.recv(WAIT)
    assert init_reply.state == CS.NORMAL and init_reply.WhichOneof("data") == "init_output"
    assert init_reply.init_output.ByteSize() == 0  # no slot selection from a service actor


def test_actor_version_and_status(actor_server) -> None:
    process, stub, _ = actor_server
    versions = {v.name: v.version for v in stub.Version(common_pb2.VersionRequest(), timeout=WAIT).versions}
    assert set(versions) == {"cogment_sdk", "grpc"}
    assert versions["cogment_sdk"] == "2.10.1"
    status = stub.Status(common_pb2.StatusRequest(names=["nb_sessions"]), timeout=WAIT)
    assert dict(status.statuses) == {"nb_sessions": "0"}


def test_actor_soft_end(actor_server) -> None:
    process, stub, summary_file = actor_server
    stream = run_trial(stub, "actor-soft")
    actions = []
    try:
        start_actor_trial(stream, seed=7)
        for tick in range(3):
            stream.send(observation(tick))
            actions.append(decode_action(stream.recv(WAIT), tick))
            stream.send(reward(tick, 1.0))  # nothing comes back for a reward

        stream.send(actor_input(state=CS.HEARTBEAT))
        bare(stream.recv(WAIT), CS.HEARTBEAT)

        stream.send(actor_input(state=CS.LAST), observation(3, terminated=True))
        bare(stream.recv(WAIT), CS.LAST_ACK)  # and no action for the final observation
        stream.send(reward(3, 2.0), actor_input(state=CS.END))
        assert stream.expect_end(WAIT).code == grpc.StatusCode.OK
    finally:
        stream.close()

    assert stream.describe() == [
        "HEARTBEAT", "NORMAL:init_output",
        "NORMAL:action", "NORMAL:action", "NORMAL:action",
        "HEARTBEAT", "LAST_ACK",
    ]
    # The policy was seeded from ActorConfig.settings["seed"] (7), not --seed 1.
    rng = random.Random(7)
    assert actions == [rng.randrange(2) for _ in range(3)]

    summary = wait_trial_end(process, "actor-soft")
    assert json.loads(summary_file.read_text().splitlines()[-1]) == summary
    assert summary["seed"] == 7
    assert summary["actor_name"] == "p" and summary["actor_class"] == "player" and summary["env_name"] == "env"
    assert summary["observations"] == 4
    assert summary["observation_values"] == [0, 1, 2, 3]
    assert summary["observation_ticks"] == [0, 1, 2, 3]
    assert summary["observation_flags"] == [[False, False]] * 3 + [[True, False]]
    assert summary["actions"] == actions
    assert [(r["tick_id"], r["value"], r["sources"]) for r in summary["rewards"]] == [
        (0, 1.0, ["env"]), (1, 1.0, ["env"]), (2, 1.0, ["env"]), (3, 2.0, ["env"]),
    ]
    assert summary["ended"] == "final"
    # observation, reward per tick; then the final observation and reward as ENDING events.
    assert summary["event_types"] == ["ACTIVE"] * 6 + ["ENDING", "ENDING", "FINAL"]


def test_actor_last_then_end_without_observation(actor_server) -> None:
    process, stub, _ = actor_server
    stream = run_trial(stub, "actor-last-end")
    try:
        start_actor_trial(stream, seed=None)
        stream.send(observation(0))
        decode_action(stream.recv(WAIT), 0)
        stream.send(actor_input(state=CS.LAST), actor_input(state=CS.END))
        assert stream.expect_end(WAIT).code == grpc.StatusCode.OK  # no LAST_ACK came
    finally:
        stream.close()
    summary = wait_trial_end(process, "actor-last-end")
    assert summary["seed"] == 1  # from --seed
    assert summary["ended"] == "final"
    assert summary["event_types"] == ["ACTIVE", "FINAL"]


def test_actor_hard_end(actor_server) -> None:
    process, stub, _ = actor_server
    stream = run_trial(stub, "actor-hard")
    try:
        start_actor_trial(stream, seed=3)
        for tick in range(2):
            stream.send(observation(tick))
            decode_action(stream.recv(WAIT), tick)
        stream.send(actor_input(state=CS.END, details="stopped by the test"))
        assert stream.expect_end(WAIT).code == grpc.StatusCode.OK
    finally:
        stream.close()
    summary = wait_trial_end(process, "actor-hard")
    assert summary["ended"] == "hard"
    assert summary["observations"] == 2
    assert summary["event_types"] == ["ACTIVE", "ACTIVE"]
    assert "Trial ended forcefully [stopped by the test]" in process.stderr_text()


def test_actor_before_init_and_errors(actor_server) -> None:
    process, stub, _ = actor_server
    stream = run_trial(stub, "actor-early-last")
    try:
        stream.send(actor_input(state=CS.LAST))
        bare(stream.recv(WAIT), CS.LAST_ACK)
        stream.send(actor_input(state=CS.END))
        assert stream.expect_end(WAIT).code == grpc.StatusCode.OK
    finally:
        stream.close()

    bad_class = actor_init()
    bad_class.init_input.actor_class = "nope"
    for trial_id, first, expected in (
        (None, actor_init(), "trial-id"),
        ("actor-bad-class", bad_class, "class [nope] is not compatible"),
        ("actor-obs-first", observation(0), "UnboundLocalError"),
    ):
        stream = run_trial(stub, trial_id)
        try:
            stream.send(first)
            end = stream.expect_end(WAIT)
        finally:
            stream.close()
        assert end.code == grpc.StatusCode.UNKNOWN, (trial_id, end)
        assert expected in (end.details or ""), (trial_id, end)
