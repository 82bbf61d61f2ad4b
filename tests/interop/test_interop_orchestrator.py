"""OUR Orchestrator (``OrchestratorServer``, in this process) used by the OFFICIAL Cogment Python
SDK 2.10.1 (separate venv, see sdk.py): its Controller, service actor and client actor, with OUR
served CartPole (``cogment_gym.serve("CartPole-v1")``) or the SDK counter environment.

* The SDK Controller (sdk_controller.py) starts a trial of our CartPole with the SDK service
  actor as its single actor "player"; it watches it to ENDED, and the actor saw every
  observation, the final one included, and one Cogment reward per step from the env.
* The SDK client actor (sdk_client_actor.py) joins a trial (by actor name / by actor class)
  that the SDK Controller started, and plays it to its end.
* The SDK Controller's other calls (sdk_lifecycle.py): get_remote_versions, get_trial_info,
  get_actors, duplicate trial ids, terminate_trial soft and hard.

Numbers are cross-checked: the CartPole observations the SDK actor received are those of a local
CartPole reset with the same seed and stepped with the actions the actor sent; ticks observed =
env steps + 1; GetTrialInfo's tick id = env steps.

Also: a component that reads END late still gets it (our Orchestrator must not cancel the call
right after END).
"""

from __future__ import annotations

import queue
import threading
from concurrent import futures

import grpc
import gymnasium as gym
import pytest
from google.protobuf import json_format

import cogment_gym
from cogment_gym._proto.cogment.api import (
    common_pb2,
    environment_pb2,
    environment_pb2_grpc,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
)

from . import sdk
from ._wire import CS, TrialWatcher, assert_sdk_soft_end, assert_state_progression, observation_bytes, replay_cartpole

pytestmark = [pytest.mark.network, pytest.mark.slow]

WAIT = 30.0  # seconds, for one SDK-side line / one trial state
SCRIPT_TIMEOUT = 60.0  # the SDK scripts' own --timeout; the harness allows 30 s more
ENV_SEED = 3
ACTOR_SEED = 11
CARTPOLE_IMPL = "CartPole-v1"


# ---- helpers -------------------------------------------------------------------------------------


def actor_config(seed: int) -> dict:
    """``cogment_gym.v1.ActorConfig`` (protobuf JSON form) with ``settings = {"seed": seed}``."""
    return {"settings": {"dict": {"entries": [{"strKey": "seed", "value": {"intValue": str(seed)}}]}}}


def cartpole_trial(trial_id: str, env_endpoint: str, actor_endpoint: str, *, max_steps: int, impl: str = "") -> dict:
    actor = {"name": "player", "actor_class": "player", "endpoint": actor_endpoint}
    if impl:
        actor["implementation"] = impl
    return {
        "trial_id": trial_id,
        "params": {
            "environment": {"endpoint": env_endpoint, "implementation": CARTPOLE_IMPL, "name": "env"},
            "actors": [actor],
            "max_steps": max_steps,
            "properties": {"suite": "interop"},
        },
        "environment_config": {"seed": str(ENV_SEED)},
        "actor_configs": {"player": actor_config(ACTOR_SEED)},
        "watch_end": True,  # sdk_controller.py waits for ENDED from WatchTrials
    }


def run_script(script: str, *args: str) -> dict:
    """Run an SDK-side script to completion; its last JSON stdout line (exit code 0 required)."""
    proc = sdk.run_sdk_script(script, [*args, "--timeout", str(SCRIPT_TIMEOUT)], timeout=SCRIPT_TIMEOUT + 30)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    return sdk.last_json_line(proc.stdout)


def trial_info(endpoint: str, trial_id: str) -> orchestrator_pb2.TrialInfo:
    """GetTrialInfo of one trial, with our stubs."""
    with grpc.insecure_channel(endpoint.removeprefix("grpc://")) as channel:
        reply = orchestrator_pb2_grpc.TrialLifecycleSPStub(channel).GetTrialInfo(
            orchestrator_pb2.TrialInfoRequest(), metadata=(("trial-id", trial_id),), timeout=10
        )
    assert [info.trial_id for info in reply.trial] == [trial_id]
    return reply.trial[0]


def check_cartpole_player(summary: dict, trial_id: str, *, ending: str, max_steps: int) -> int:
    """Check what the SDK "player" saw of a CartPole trial; return the number of env steps.

    ``ending``: "terminated" (CartPole fell: the env ended the trial) or "truncated" (our
    Orchestrator ended it at max_steps: the env marks the final observation truncated).
    """
    assert summary["trial_id"] == trial_id
    assert (summary["actor_name"], summary["actor_class"], summary["env_name"]) == ("player", "player", "env")
    assert summary["seed"] == ACTOR_SEED  # the ActorConfig of the params reached the actor
    # A soft end: LAST, the final observation (ENDING event), END (FINAL event).
    events = assert_sdk_soft_end(summary, "final")

    actions = summary["actions"]
    steps = len(actions)
    assert steps >= 1
    # Every observation, the final one included: ticks 0..steps, one action per non-final one.
    assert summary["observations"] == steps + 1
    assert summary["observation_ticks"] == list(range(steps + 1))
    # One Cogment reward per step, from the env ("env"), for the tick of the step's action.
    assert summary["rewards"] == [{"tick_id": t, "value": 1.0, "sources": ["env"]} for t in range(steps)]
    # SDK events: an observation and a reward per step (ACTIVE), the final observation after
    # LAST (ENDING); then FINAL, checked above.
    assert events == ["ACTIVE"] * (2 * steps) + ["ENDING"]
    assert summary["messages"] == 0

    # The observations are those of CartPole reset with the trial's seed and stepped with the
    # actor's actions, bit for bit (float32 values).
    expected_values, expected_flags = replay_cartpole(ENV_SEED, actions)
    assert summary["observation_values"] == expected_values
    flags = summary["observation_flags"]
    assert flags[:-1] == [[False, False]] * steps
    if ending == "terminated":
        assert flags[-1] == [True, False] == expected_flags[-1]
        assert steps <= max_steps
    else:
        # max_steps = M: Cogment sends LAST with the action set of tick M, so M + 1 steps.
        assert steps == max_steps + 1
        assert expected_flags[-1] == [False, False]  # CartPole itself would have gone on
        assert flags[-1] == [False, True]
    return steps


# ---- 1. SDK controller + SDK service actor + our CartPole ---------------------------------------


@pytest.mark.parametrize(("ending", "max_steps"), [("terminated", 400), ("truncated", 5)])
def test_sdk_controller_runs_cartpole_with_sdk_service_actor(
    orchestrator, cartpole_server, start_sdk, trial_file, ending: str, max_steps: int
) -> None:
    actor = start_sdk("sdk_service_actor.py", "--seed", "999")  # ActorConfig's seed wins
    trial_id = f"sdk-controller-cartpole-{ending}"
    spec = cartpole_trial(trial_id, cartpole_server.endpoint, actor.endpoint, max_steps=max_steps, impl="random")

    with TrialWatcher(orchestrator.lifecycle_endpoint) as watcher:
        result = run_script("sdk_controller.py", "--endpoint", orchestrator.lifecycle_endpoint, "--trial", str(trial_file(spec)))
        summary = actor.wait_json("TRIAL_END", WAIT)
        watched = watcher.wait_state(trial_id, "ENDED", WAIT)

    # The controller saw the trial end (WatchTrials ENDED), in lifecycle order.
    assert result["trial_id"] == trial_id and result["ended"] is True, result
    assert_state_progression(result["states"])
    assert_state_progression(result["watch_states"])
    assert result["versions"]["cogment"].startswith("2."), result["versions"]
    assert_state_progression(watched)
    assert {"PENDING", "RUNNING", "TERMINATING"} <= set(watched)

    assert summary["impl_name"] == "random"
    steps = check_cartpole_player(summary, trial_id, ending=ending, max_steps=max_steps)

    info = trial_info(orchestrator.lifecycle_endpoint, trial_id)
    assert info.state == common_pb2.ENDED
    assert info.tick_id == steps  # the final observation's tick
    assert info.env_name == "env"


# ---- 2. SDK client actor joins a trial of our orchestrator ----------------------------------------


@pytest.mark.parametrize("join_by", ["actor-name", "actor-class"])
def test_sdk_client_actor_plays_cartpole_trial(orchestrator, cartpole_server, trial_file, join_by: str) -> None:
    trial_id = f"sdk-client-actor-{join_by}"
    spec = cartpole_trial(trial_id, cartpole_server.endpoint, "cogment://client", max_steps=400)
    controller_args = ("--endpoint", orchestrator.lifecycle_endpoint, "--trial", str(trial_file(spec)))

    with TrialWatcher(orchestrator.lifecycle_endpoint) as watcher, futures.ThreadPoolExecutor(1) as pool:
        # The SDK controller starts the trial and waits for its end; the client actor joins it
        # once it is PENDING (a client actor can only join a PENDING trial).
        controller = pool.submit(run_script, "sdk_controller.py", *controller_args)
        watcher.wait_state(trial_id, "PENDING", SCRIPT_TIMEOUT)
        summary = run_script(
            "sdk_client_actor.py", "--endpoint", orchestrator.actor_endpoint, "--trial-id", trial_id,
            f"--{join_by}", "player",
        )
        result = controller.result(timeout=SCRIPT_TIMEOUT + 30)
        watched = watcher.wait_state(trial_id, "ENDED", WAIT)

    assert result["trial_id"] == trial_id and result["ended"] is True, result
    assert_state_progression(result["states"])
    assert_state_progression(result["watch_states"])
    assert_state_progression(watched)

    assert summary["joined"] is True
    assert summary["impl_name"] == "random"  # none in the params: the SDK picks its only one
    steps = check_cartpole_player(summary, trial_id, ending="terminated", max_steps=400)
    assert trial_info(orchestrator.lifecycle_endpoint, trial_id).tick_id == steps


def test_sdk_client_actor_refused(orchestrator, cartpole_server, trial_file) -> None:
    """Joining an unknown trial, or a slot the trial does not have, fails cleanly for the SDK
    (join_trial raises or returns without running the actor: exit code 1)."""
    unknown = sdk.run_sdk_script(
        "sdk_client_actor.py",
        ["--endpoint", orchestrator.actor_endpoint, "--trial-id", "no-such-trial", "--actor-name", "player", "--timeout", "30"],
        timeout=60,
    )
    assert unknown.returncode == 1, unknown.stdout + unknown.stderr
    assert sdk.last_json_line(unknown.stdout)["joined"] is False

    trial_id = "sdk-client-actor-refused"
    with grpc.insecure_channel(orchestrator.lifecycle_endpoint.removeprefix("grpc://")) as channel:
        stub = orchestrator_pb2_grpc.TrialLifecycleSPStub(channel)
        params = json_format.ParseDict(
            cartpole_trial(trial_id, cartpole_server.endpoint, "cogment://client", max_steps=10)["params"], common_pb2.TrialParams()
        )
        reply = stub.StartTrial(orchestrator_pb2.TrialStartRequest(params=params, trial_id_requested=trial_id), timeout=10)
        assert reply.trial_id == trial_id
        for who in (["--actor-name", "nobody"], ["--actor-class", "no-such-class"]):
            refused = sdk.run_sdk_script(
                "sdk_client_actor.py",
                ["--endpoint", orchestrator.actor_endpoint, "--trial-id", trial_id, *who, "--timeout", "30"],
                timeout=60,
            )
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert sdk.last_json_line(refused.stdout)["joined"] is False
        # The trial still waits for its actor; a hard TerminateTrial ends it.
        with TrialWatcher(orchestrator.lifecycle_endpoint) as watcher:
            assert watcher.wait_state(trial_id, "PENDING", WAIT) == ["PENDING"]
            stub.TerminateTrial(orchestrator_pb2.TerminateTrialRequest(hard_termination=True),
                                metadata=(("trial-id", trial_id),), timeout=10)
            assert watcher.wait_state(trial_id, "ENDED", WAIT) == ["PENDING", "ENDED"]


# ---- 4. SDK Controller: versions, trial info, actors, duplicate ids, termination -----------------


def test_sdk_lifecycle_calls_on_pending_trial(orchestrator, cartpole_server, trial_file) -> None:
    """A trial waiting for its client actor (PENDING): info, actors, duplicate id, hard terminate."""
    trial_id = "sdk-lifecycle-pending"
    spec = cartpole_trial(trial_id, cartpole_server.endpoint, "cogment://client", max_steps=10)
    spec.update(wait_state="PENDING", terminate={"hard": True})

    with TrialWatcher(orchestrator.lifecycle_endpoint) as watcher:
        result = run_script("sdk_lifecycle.py", "--endpoint", orchestrator.lifecycle_endpoint, "--trial", str(trial_file(spec)))
        watched = watcher.wait_state(trial_id, "ENDED", WAIT)

    versions = result["versions"]
    assert versions["cogment"].startswith("2."), versions
    assert result["trial_id"] == trial_id
    [info] = result["info"]
    assert info["trial_id"] == trial_id
    assert info["state"] == "PENDING"
    assert info["env_name"] == "env"
    assert info["tick_id"] == 0
    assert info["properties"] == {"suite": "interop"}
    assert info["duration"] > 0
    assert trial_id in result["all_trial_ids"]
    assert result["unknown_info"] == []
    assert result["actors"] == [["player", "player"]]
    assert result["duplicate_start"] == ""  # Cogment: an id in use gives an empty trial id, no error
    assert result["terminate_requested"] == {"hard": True}
    assert result["states"][-1] == "ENDED"
    assert [i["state"] for i in result["info_after_end"]] == ["ENDED"]
    assert_state_progression(watched)
    assert "RUNNING" not in watched  # ended hard while waiting for its actor


@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
def test_sdk_lifecycle_terminates_running_trial(orchestrator, start_sdk, trial_file, hard: bool) -> None:
    """The SDK counter env and SDK service actor, run by our orchestrator until the SDK
    controller terminates the trial (soft: LAST/LAST_ACK/END handshake; hard: END)."""
    env = start_sdk("sdk_env.py", "--steps", "100000000")
    actor = start_sdk("sdk_service_actor.py", "--seed", "5")
    trial_id = f"sdk-lifecycle-running-{'hard' if hard else 'soft'}"
    spec = {
        "trial_id": trial_id,
        "params": {
            "environment": {"endpoint": env.endpoint, "implementation": "counter", "name": "env"},
            "actors": [{"name": "p", "actor_class": "player", "endpoint": actor.endpoint, "implementation": "random"}],
        },
        "wait_state": "RUNNING",
        "terminate": {"hard": hard},
    }
    with TrialWatcher(orchestrator.lifecycle_endpoint) as watcher:
        result = run_script("sdk_lifecycle.py", "--endpoint", orchestrator.lifecycle_endpoint, "--trial", str(trial_file(spec)))
        env_summary = env.wait_json("TRIAL_END", WAIT)
        actor_summary = actor.wait_json("TRIAL_END", WAIT)
        watched = watcher.wait_state(trial_id, "ENDED", WAIT)

    [info] = result["info"]
    assert info["state"] in ("RUNNING", "TERMINATING") and info["tick_id"] >= 0
    assert result["actors"] == [["p", "player"]]
    assert result["duplicate_start"] == ""
    assert [i["state"] for i in result["info_after_end"]] == ["ENDED"]
    assert_state_progression(watched)
    assert "RUNNING" in watched

    assert env_summary["trial_id"] == actor_summary["trial_id"] == trial_id
    steps = env_summary["steps_done"]
    assert env_summary["actions"] == [[a] for a in actor_summary["actions"]][:steps]
    if hard:
        assert (env_summary["ended_by"], env_summary["last_exchanged"]) == ("hard", False)
        assert (actor_summary["ended"], actor_summary["last_exchanged"]) == ("hard", False)
        assert "TERMINATING" not in watched
    else:
        # Soft: the env got LAST with the last action set (ENDING), answered, and got END (FINAL);
        # the actor received the final observation (after LAST) and END (FINAL).
        assert assert_sdk_soft_end(env_summary, "orchestrator") == ["ACTIVE"] * (steps - 1) + ["ENDING"]
        assert assert_sdk_soft_end(actor_summary, "final")[-1] == "ENDING"
        assert actor_summary["observations"] == steps + 1
        assert actor_summary["observation_values"] == list(range(steps + 1))
        assert len(actor_summary["actions"]) == steps
        assert "TERMINATING" in watched
    # The trial's tick is that of the last observation set our orchestrator received: after a
    # hard end, the env may have answered one more action set that was never read.
    tick = trial_info(orchestrator.lifecycle_endpoint, trial_id).tick_id
    assert (tick in (steps - 1, steps)) if hard else (tick == steps)


# ---- END must reach a component that reads it late -------------------------------------------------


class _LateReadingEnv(environment_pb2_grpc.EnvironmentSPServicer):
    """A minimal EnvironmentSP (our stubs, sync server): initial observation 0, then on the first
    action set it ends the trial itself (LAST, final observation 1, LAST_ACK) and, before reading
    on, waits for ``gate``: like an SDK env whose event loop is busy when END arrives. What it
    then reads goes to ``after_gate``."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.after_gate: "queue.Queue[tuple[str, str]]" = queue.Queue()

    @staticmethod
    def _observation(count: int, terminated: bool = False) -> environment_pb2.EnvRunTrialOutput:
        return environment_pb2.EnvRunTrialOutput(
            state=CS.NORMAL,
            observation_set=environment_pb2.ObservationSet(
                tick_id=-1, timestamp=1 + count, actors_map=[0],
                observations=[observation_bytes(count, reward=float(count > 0), terminated=terminated)],
            ),
        )

    def RunTrial(self, request_iterator, context):
        first = next(request_iterator)
        assert first.WhichOneof("data") == "init_input"
        yield environment_pb2.EnvRunTrialOutput(state=CS.NORMAL, init_output=environment_pb2.EnvInitialOutput())
        yield self._observation(0)
        assert next(request_iterator).WhichOneof("data") == "action_set"
        yield environment_pb2.EnvRunTrialOutput(state=CS.LAST)
        yield self._observation(1, terminated=True)
        yield environment_pb2.EnvRunTrialOutput(state=CS.LAST_ACK)
        self.gate.wait(WAIT)
        try:
            message = next(request_iterator)
            self.after_gate.put(("message", CS.Name(message.state)))
        except StopIteration:
            self.after_gate.put(("end of stream", ""))
        except grpc.RpcError as err:
            self.after_gate.put(("rpc error", f"{err!r}; call active: {context.is_active()}"))


def test_component_reading_end_late_still_gets_it(orchestrator) -> None:
    """A component that reads END late still gets it: our Orchestrator half-closes the call
    after END and lets the component end it, as Cogment's does (WritesDone, then Finish).

    Regression test: Link.close() used to cancel the call right after END; the cancellation
    overtook END, and the official SDK saw its handler cancelled instead (no FINAL event,
    "user implementation returned before required"), intermittently in the tests above.
    """
    servicer = _LateReadingEnv()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    environment_pb2_grpc.add_EnvironmentSPServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with TrialWatcher(orchestrator.lifecycle_endpoint) as watcher:
            env = cogment_gym.CogmentEnv(
                orchestrator=orchestrator.lifecycle_endpoint, environment=f"grpc://127.0.0.1:{port}",
                observation_space=gym.spaces.Discrete(10), action_space=gym.spaces.Discrete(2), timeout=WAIT,
            )
            try:
                env.reset()
                assert env.step(1)[:4] == (1, 1.0, True, False)
                [trial_id] = watcher.wait_trials(1, WAIT)
                # Let our orchestrator do what it does after the soft end (END, closing the calls)
                # before the env reads on. As it waits for the env to end its call before the
                # trial is ENDED, it gets there only once the env read on: go on after 2 s.
                try:
                    watcher.wait_state(trial_id, "ENDED", 2.0)
                except AssertionError:
                    pass
                servicer.gate.set()
                got = servicer.after_gate.get(timeout=WAIT)
                assert_state_progression(watcher.wait_state(trial_id, "ENDED", WAIT))
            finally:
                servicer.gate.set()
                env.close()
        assert got == ("message", "END")
    finally:
        server.stop(grace=None)
