"""The official SDK's integration tests (cogment-py-sdk tests/test_integration.py), adapted: the
same SDK code paths and checks, run against whatever Orchestrator the test side launched (ours,
through the SDK harness's launcher) instead of under pytest in the SDK's repository.

    sdk_integration.py SCENARIO --orchestrator grpc://localhost:P --port T [--timeout S]

SCENARIO is ``environment_controlled`` (the environment ends the trial after 10 ticks; rewards
and messages from the environment, and from a client actor to the service actors after its
action), ``controller_controlled`` (a soft TerminateTrial) or ``actor_order`` (four service
actors of two classes, in params order). The SDK side serves on 127.0.0.1:T (the port the
params file and --pre_trial_hooks name). Prints one JSON line with what the scenario counted
(the test side holds them to the SDK test's values) and ``errors``: checks that failed inside
SDK callbacks. Exit code 0, 1 on a failure, 2 on timeout. Differences with the SDK's tests:
Prometheus metrics (an SDK feature, not the Orchestrator's) are not checked; waits are on
events instead of sleeps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time

import grpc
import grpc.aio

logging.basicConfig(stream=sys.stderr, level=os.environ.get("COGMENT_GYM_INTEROP_LOG_LEVEL", "INFO").upper(),
                    format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
log = logging.getLogger("sdk_integration")

_original_aio_server = grpc.aio.server


class _LoopbackServer:
    """The SDK binds ``[::]:<port>``; the harness keeps to 127.0.0.1 (same port)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._server, name)

    def add_insecure_port(self, address: str) -> int:
        port = address.rpartition(":")[2]
        return self._server.add_insecure_port(f"127.0.0.1:{port}")


grpc.aio.server = lambda *a, **k: _LoopbackServer(_original_aio_server(*a, **k))

import cogment  # noqa: E402

from _integration_app import cog_settings, data_pb2  # noqa: E402

TARGET_TICKS = 10


class Checks:
    """Checks made inside SDK callbacks (an exception there would only be logged by the SDK)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def that(self, condition: bool, what: str) -> None:
        if not condition:
            self.errors.append(what)
            log.error("check failed: %s", what)


async def _serving(context: cogment.Context, port: int, timeout: float) -> asyncio.Task:
    task = asyncio.create_task(context.serve_all_registered(cogment.ServedEndpoint(port), prometheus_port=None))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout)
    return task


async def _stop(context: cogment.Context, serve_task: asyncio.Task) -> None:
    server = getattr(context, "_grpc_server", None)
    if server is not None:
        await server.stop(grace=5.0)
    try:  # serve_all_registered returns once its server ended (after deregistering from a directory)
        await asyncio.wait_for(serve_task, 10.0)
    except (asyncio.TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
        log.warning("serve_all_registered did not end by itself", exc_info=True)


# ---- test_environment_controlled_trial --------------------------------------------------------


async def environment_controlled(args: argparse.Namespace, result: dict) -> None:
    checks = Checks()
    counts = dict(environment_call_count=0, environment_tick_count=0, pre_hook_called_count=0, agent_call_count=0,
                  agent_observation_count=0, agent_final_data_count=0, agent_message_count=0, had_message_from_client=0,
                  had_reward_from_client=0, total_reward=0.0, client_call_count=0, client_observation_count=0,
                  client_final_data_count=0, client_message_count=0, client_total_reward=0.0)
    flags = dict(had_universal_message=False, had_personal_message=False, client_had_universal_message=False, client_had_personal_message=False)
    trial_ids: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    ended = {name: loop.create_future() for name in ("actor_1", "actor_2", "client_1")}

    async def environment(session):
        checks.that(session.config is not None and session.config.env_config_value == 0, "env config from the hook")
        trial_ids["environment"] = session.get_trial_id()
        counts["environment_call_count"] += 1
        session.start([("*", data_pb2.Observation(observed_value=12))])
        async for event in session.event_loop():
            if event.type == cogment.EventType.FINAL:
                continue
            checks.that(len(event.actions) == len(session.get_active_actors()), "one action per active actor")
            counts["environment_tick_count"] += 1
            if counts["environment_tick_count"] == 1:
                for actor in session.get_active_actors():
                    session.add_reward(21.0, 1.0, [actor.actor_name], user_data=data_pb2.MyFeedbackUserData(a_bool=False, a_float=3.0))
                    session.send_message(data_pb2.MyMessageUserData(a_string="A personal string", an_int=21), [actor.actor_name])
                session.send_message(data_pb2.MyMessageUserData(a_string="An universal string", an_int=42), ["*"])
            if counts["environment_tick_count"] >= TARGET_TICKS:
                session.end([("*", data_pb2.Observation(observed_value=12))])
            else:
                session.produce_observations([("*", data_pb2.Observation(observed_value=12))])

    async def pre_trial_hook(session):
        checks.that(session.trial_config is not None and session.trial_config.trial_config_value == 31, "trial config reached the hook")
        session.environment_config = session.trial_config.env_config
        session.actors.append({"name": "client_1", "actor_class": "my_actor_class_1", "endpoint": "client", "implementation": "", "config": None})
        counts["pre_hook_called_count"] += 1
        session.validate()

    async def agent(session):
        trial_ids[session.name] = session.get_trial_id()
        counts["agent_call_count"] += 1
        session.start()
        last_tick_id = 0
        async for event in session.event_loop():
            if event.observation:
                checks.that(event.observation.snapshot.observed_value == 12, "observed value")
                checks.that(last_tick_id == event.observation.tick_id, f"{session.name}: tick {event.observation.tick_id}, expected {last_tick_id}")
                last_tick_id += 1
                session.do_action(data_pb2.Action(action_value=-1))
                counts["agent_observation_count"] += 1
            for message in event.messages:
                msg = data_pb2.MyMessageUserData()
                msg.ParseFromString(message.payload.value)
                if message.sender_name == "client_1":
                    checks.that(session.name == "actor_2", "client messages go to actor_2")
                    counts["had_message_from_client"] += 1
                elif msg.an_int == 42:
                    flags["had_universal_message"] = True
                    counts["agent_message_count"] += 1
                elif msg.an_int == 21:
                    flags["had_personal_message"] = True
                    counts["agent_message_count"] += 1
            for reward in event.rewards:
                for src in reward.all_sources():
                    if src.sender_name == "client_1":
                        counts["had_reward_from_client"] += 1
                        checks.that(session.name == "actor_1" and src.value == 30 and src.confidence == 0.5, "client reward to actor_1")
                    else:
                        counts["total_reward"] += src.value
                        checks.that(src.value == 21.0, f"env reward value {src.value}")
            if event.type == cogment.EventType.FINAL:
                counts["agent_final_data_count"] += 1
        ended[session.name].set_result(True)

    async def client_actor(session):
        trial_ids[session.name] = session.get_trial_id()
        counts["client_call_count"] += 1
        session.start()
        last_tick_id = 0
        async for event in session.event_loop():
            if event.observation:
                checks.that(event.observation.snapshot.observed_value == 12, "client observed value")
                checks.that(last_tick_id == event.observation.tick_id, f"client tick {event.observation.tick_id}, expected {last_tick_id}")
                last_tick_id += 1
                # The SDK idiom: the action, then a message and a reward.
                session.do_action(data_pb2.Action(action_value=-1))
                counts["client_observation_count"] += 1
                session.send_message(data_pb2.MyMessageUserData(a_string="A message from aclient", an_int=2), ["actor_2"])
                session.add_reward(30.0, 0.5, ["actor_1"])
            for message in event.messages:
                msg = data_pb2.MyMessageUserData()
                msg.ParseFromString(message.payload.value)
                counts["client_message_count"] += 1
                if msg.an_int == 42:
                    flags["client_had_universal_message"] = True
                elif msg.an_int == 21:
                    flags["client_had_personal_message"] = True
            for reward in event.rewards:
                counts["client_total_reward"] += reward.value
                checks.that(reward.value == 21.0, f"client reward {reward.value}")
            if event.type == cogment.EventType.FINAL:
                counts["client_final_data_count"] += 1
        ended[session.name].set_result(True)

    context = cogment.Context(cog_settings=cog_settings, user_id="test_environment_controlled_trial", prometheus_registry=None)
    context.register_environment(impl=environment)
    context.register_actor(impl_name="test", impl=agent)
    context.register_actor(impl_name="client", impl=client_actor, actor_classes=["my_actor_class_1"])
    context.register_pre_trial_hook(pre_trial_hook)
    serve_task = await _serving(context, args.port, args.timeout)
    try:
        endpoint = cogment.Endpoint(args.orchestrator)
        controller = context.get_controller(endpoint=endpoint)
        states: list[tuple[str, str]] = []
        trial_ended = loop.create_future()

        async def state_tracking():
            watch = controller.watch_trials()
            async for info in watch:
                checks.that(info.state != cogment.TrialState.UNKNOWN, "known state")
                states.append((info.trial_id, info.state.name))
                if info.state == cogment.TrialState.ENDED:
                    break
            await watch.aclose()
            trial_ended.set_result(True)

        tracking = asyncio.create_task(state_tracking())
        # The SDK test sleeps 1 s here so that the watch is registered before the trial starts;
        # two round trips on the same channel after the watch call went out do that without a sleep.
        await asyncio.sleep(0)
        for _ in range(2):
            await controller.get_remote_versions()
        trial_id = await controller.start_trial(trial_config=data_pb2.TrialConfig(trial_config_value=31))
        await context.join_trial(trial_id=trial_id, endpoint=endpoint, impl_name="client")
        await trial_ended
        await asyncio.wait(list(ended.values()))
        tracking.cancel()
        result.update(counts, **flags)
        result["trial_id"] = trial_id
        result["trial_ids"] = trial_ids
        result["states"] = [state for tid, state in states if tid == trial_id]
        result["state_trial_ids"] = sorted({tid for tid, _ in states})
    finally:
        result["errors"] = checks.errors
        await _stop(context, serve_task)


# ---- test_controller_controlled_trial ----------------------------------------------------------


async def controller_controlled(args: argparse.Namespace, result: dict) -> None:
    checks = Checks()
    counts = dict(environment_call_count=0, environment_tick_count=0, agent_call_count=0, hook_calls=0)
    ticks: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    ended = {name: loop.create_future() for name in ("actor_1", "actor_2")}
    progressed = asyncio.Event()

    async def environment(session):
        counts["environment_call_count"] += 1
        counts["environment_tick_count"] += 1
        session.start([("*", data_pb2.Observation(observed_value=counts["environment_tick_count"]))])
        async for event in session.event_loop():
            if event.actions:
                if event.type == cogment.EventType.ACTIVE:
                    for index in (0, 1):
                        action = event.actions[index]
                        checks.that(action.actor_index == index, "actor index")
                        checks.that(action.action.action_value == counts["environment_tick_count"], "action answers the observation")
                counts["environment_tick_count"] += 1
                session.produce_observations([("*", data_pb2.Observation(observed_value=counts["environment_tick_count"]))])

    async def agent(session):
        counts["agent_call_count"] += 1
        checks.that(session.name not in ticks, "one session per actor")
        ticks[session.name] = 0
        session.start()
        async for event in session.event_loop():
            if event.observation:
                ticks[session.name] += 1
                checks.that(event.observation.snapshot.observed_value == ticks[session.name], f"{session.name} observation value")
                session.do_action(data_pb2.Action(action_value=ticks[session.name]))
                if min(ticks.values()) >= 5 and len(ticks) == 2:
                    progressed.set()
            if event.type == cogment.EventType.ENDING:
                checks.that(bool(event.observation), "ENDING carries the final observation")
                checks.that(len(event.rewards) == 0 and len(event.messages) == 0, "nothing else with the final observation")
        ended[session.name].set_result(True)

    async def pre_trial_hook(session):
        counts["hook_calls"] += 1
        session.environment_implementation = "test_environment"
        session.validate()

    context = cogment.Context(cog_settings=cog_settings, user_id="test_controller_controlled_trial", prometheus_registry=None)
    context.register_pre_trial_hook(pre_trial_hook)
    context.register_environment(impl_name="test_environment", impl=environment)
    context.register_actor(impl_name="test", impl=agent)
    serve_task = await _serving(context, args.port, args.timeout)
    try:
        controller = context.get_controller(endpoint=cogment.Endpoint(args.orchestrator))
        trial_id = await controller.start_trial(trial_config=data_pb2.TrialConfig())
        # The SDK test sleeps 3 s before terminating: here, once both actors played 5 ticks.
        await progressed.wait()
        await controller.terminate_trial(trial_id)
        await asyncio.wait(list(ended.values()))
        result.update(counts, ticks=ticks, trial_id=trial_id)
    finally:
        result["errors"] = checks.errors
        await _stop(context, serve_task)


# ---- test_actor_order --------------------------------------------------------------------------


async def actor_order(args: argparse.Namespace, result: dict) -> None:
    checks = Checks()
    agents = ["actor_A", "actor_B", "actor_C", "actor_D"]
    loop = asyncio.get_running_loop()
    ended = {name: loop.create_future() for name in agents}
    seen = {"env_ticks": 0, "action_sets": 0}

    async def pre_trial_hook(session):
        host = f"grpc://localhost:{args.port}"
        classes = ["my_actor_class_2", "my_actor_class_1", "my_actor_class_2", "my_actor_class_1"]
        session.actors = [{"name": n, "actor_class": c, "endpoint": host, "implementation": "basic", "config": None} for n, c in zip(agents, classes)]
        session.validate()

    async def environment(session):
        actors = session.get_active_actors()
        checks.that([a.actor_name for a in actors] == agents, f"actors in params order: {[a.actor_name for a in actors]}")
        session.start([("*", data_pb2.Observation(observed_value=1))])
        async for event in session.event_loop():
            if event.actions and event.type == cogment.EventType.ACTIVE:
                seen["action_sets"] += 1
                for i, action in enumerate(event.actions):
                    checks.that(action.actor_index == i and action.action.action_value == i + 100, f"action {i}: {action.actor_index} {action.action.action_value}")
                if session.get_tick_id() < 3:
                    session.produce_observations([("*", data_pb2.Observation(observed_value=1))])
                elif session.get_tick_id() == 3:
                    session.end([("*", data_pb2.Observation(observed_value=1))])

    async def basic_agent(session):
        checks.that(session.name in agents, "known actor")
        session.start()
        async for event in session.event_loop():
            if event.observation and event.type == cogment.EventType.ACTIVE:
                session.do_action(data_pb2.Action(action_value=agents.index(session.name) + 100))
        ended[session.name].set_result(True)

    context = cogment.Context(cog_settings=cog_settings, user_id="test_actor_order", prometheus_registry=None)
    context.register_environment(impl=environment)
    context.register_actor(impl_name="basic", impl=basic_agent)
    context.register_pre_trial_hook(pre_trial_hook)
    serve_task = await _serving(context, args.port, args.timeout)
    try:
        controller = context.get_controller(endpoint=cogment.Endpoint(args.orchestrator))
        result["trial_id"] = await controller.start_trial(trial_config=data_pb2.TrialConfig(trial_config_value=31))
        await asyncio.wait(list(ended.values()))
        result.update(seen, ended=sorted(ended))
    finally:
        result["errors"] = checks.errors
        await _stop(context, serve_task)


# ---- ours: the SDK registers in a Directory, the Orchestrator and the SDK find things there -------


async def discovery(args: argparse.Namespace, result: dict) -> None:
    checks = Checks()
    loop = asyncio.get_running_loop()
    actor_done = loop.create_future()
    seen = {"env_ticks": 0, "actor_observations": 0, "hook_calls": 0}

    async def environment(session):
        session.start([("*", data_pb2.Observation(observed_value=0))])
        async for event in session.event_loop():
            if event.actions:
                seen["env_ticks"] += 1
                session.produce_observations([("*", data_pb2.Observation(observed_value=seen["env_ticks"]))])

    async def agent(session):
        session.start()
        async for event in session.event_loop():
            if event.observation:
                seen["actor_observations"] += 1
                if event.type == cogment.EventType.ACTIVE:
                    session.do_action(data_pb2.Action(action_value=1))
        actor_done.set_result(True)

    async def hook(session):
        seen["hook_calls"] += 1
        session.validate()

    context = cogment.Context(cog_settings=cog_settings, user_id="discovery", prometheus_registry=None,
                              directory_endpoint=cogment.Endpoint(args.directory))
    context.register_environment(impl_name="sdk_env", impl=environment)
    context.register_actor(impl_name="sdk_actor", impl=agent, actor_classes=["my_actor_class_1"])
    context.register_pre_trial_hook(hook)
    # The SDK registers right after its server started and says nothing when done: its
    # registration step is wrapped to tell us.
    registered = asyncio.Event()
    register = context._directory_registration

    async def registration(*a, **k):  # noqa: ANN002, ANN003, ANN202
        done = await register(*a, **k)
        result["registered"] = len(done)
        registered.set()
        return done

    context._directory_registration = registration
    task = asyncio.create_task(context.serve_all_registered(cogment.ServedEndpoint(args.port), prometheus_port=None,
                                                            directory_registration_host="127.0.0.1"))
    try:
        await asyncio.wait_for(registered.wait(), args.timeout)
        # The SDK finds our Orchestrator's lifecycle service in the directory.
        controller = await context.get_controller(endpoint=cogment.Endpoint("cogment://discover"))  # a coroutine for discovery
        result["trial_id"] = await controller.start_trial(trial_config=data_pb2.TrialConfig())
        await actor_done
        result.update(seen)
    finally:
        result["errors"] = checks.errors
        await _stop(context, task)


SCENARIOS = {"environment_controlled": environment_controlled, "controller_controlled": controller_controlled, "actor_order": actor_order,
             "discovery": discovery}


async def main(args: argparse.Namespace) -> int:
    result: dict = {"scenario": args.scenario}
    started = time.monotonic()
    code = 0
    try:
        await asyncio.wait_for(SCENARIOS[args.scenario](args, result), args.timeout)
    except asyncio.TimeoutError:
        result["error"] = f"timed out after {args.timeout} s"
        code = 2
    except Exception as exc:  # noqa: BLE001 - reported
        log.exception("scenario failed")
        result["error"] = f"{type(exc).__name__}: {exc}"
        code = 1
    result["elapsed_s"] = round(time.monotonic() - started, 3)
    print(json.dumps(result, sort_keys=True), flush=True)
    return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--orchestrator", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--directory", default="", help="grpc:// endpoint of a Directory (scenario discovery)")
    sys.exit(asyncio.run(main(parser.parse_args())))
