"""Who plays which agent of a multi-agent (PettingZoo) game in ``cogment-gym run`` and ``serve``.

``run`` plays one agent (``--agent``, default: the first agent not given to a service actor)
with its own random policy, through :class:`~cogment_gym.CogmentEnv`. Agents given with
``--service-actor NAME=ENDPOINT`` are played by the service actor there; every other agent (the
"other seats") by the ``--others`` policy, run in this process: a random one (legal moves only)
or a scripted one that always plays the lowest legal action. The other seats report their
returns here, so ``run`` prints a return per agent (a remote service actor's is not seen here).

``serve --actor POLICY`` serves the same policies as a Cogment service actor beside the
environment, for ``run --service-actor`` (or any Cogment client) to play against.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import threading
import zlib
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np
from gymnasium import spaces

from cogment_gym.actors.policy import ActorContext, TrialPolicy
from cogment_gym.cli.common import UsageError, endpoint_arg, port, positive_int

if TYPE_CHECKING:
    from cogment_gym.actors import ActorServer
    from cogment_gym.protocol.security import Security

__all__ = [
    "DEFAULT_ACTOR_PORT",
    "POLICIES",
    "SeatReturns",
    "add_run_arguments",
    "add_serve_arguments",
    "check_service_actors",
    "describe_seats",
    "legal_mask",
    "pick_action",
    "probe_service_actors",
    "return_lines",
    "seat_policy",
    "serve_actor_beside",
    "serve_seats",
    "service_actor_arg",
]

#: ``--others`` / ``--actor`` choices: how a seat picks among the legal actions.
POLICIES = ("random", "first-legal")

# Cogment's conventional ports are 9000 (Orchestrator) and 9001 (environment): actors next.
DEFAULT_ACTOR_PORT = 9002

# Seconds run waits, after its last episode, for the other seats' end-of-episode reports.
REPORT_WAIT = 5.0


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    seats = run.add_argument_group("multi-agent (PettingZoo) games")
    seats.add_argument("--agent", metavar="NAME",
                       help="the agent this run plays (default: the first agent not given to --service-actor)")
    seats.add_argument("--service-actor", type=service_actor_arg, action="append", default=[], metavar="NAME=ENDPOINT",
                       help="agent NAME is played by the Cogment service actor at ENDPOINT (repeatable), e.g. "
                       "player_1=grpc://127.0.0.1:9002 from `cogment-gym serve GAME --actor random`")
    seats.add_argument("--others", choices=POLICIES, default="random",
                       help="policy of every other agent, run in this process: random legal moves, or always the "
                       "lowest legal action (default: %(default)s)")


def add_serve_arguments(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group("multi-agent (PettingZoo) games")
    group.add_argument("--api", choices=("aec", "parallel"), default=None,
                       help="serve PettingZoo games with this API, converting them if needed (default: a module's env(), AEC)")
    group.add_argument("--max-agents", type=positive_int, default=None, metavar="N",
                       help="games whose agents are generated during the episode: agent slots offered (default: 32)")
    group.add_argument("--actor", choices=POLICIES, default=None, metavar="POLICY",
                       help="also serve a policy as a Cogment service actor, for the seats of the game clients do not "
                       f"play ({', '.join(POLICIES)}); prints 'serving actor POLICY at <endpoint>'")
    group.add_argument("--actor-port", type=port, default=DEFAULT_ACTOR_PORT,
                       help="port of --actor, 0 lets the OS choose (default: %(default)s)")


@contextlib.contextmanager
def serve_actor_beside(args: argparse.Namespace, environment: str, security: Security | None = None) -> Iterator[ActorServer | None]:
    """While in the block: ``--actor``'s policy served on ``--host``:``--actor-port`` (its
    spaces from ``environment``; with the environment's ``security``), announced on stdout;
    nothing without ``--actor``."""
    if args.actor is None:
        yield None
        return
    from cogment_gym.actors import serve_actor

    try:
        server = serve_actor({args.actor: seat_policy(args.actor)}, host=args.host, port=args.actor_port, environment=environment,
                             security=security)
    except (OSError, RuntimeError) as err:
        raise UsageError(f"cannot serve actor {args.actor} on {args.host}:{args.actor_port}: {err}") from None
    try:
        print(f"serving actor {args.actor} at {server.endpoint}", flush=True)
        yield server
    finally:
        server.stop()


def service_actor_arg(text: str) -> tuple[str, str]:
    """``NAME=ENDPOINT`` -> ``(NAME, ENDPOINT)`` (argparse type of ``--service-actor``)."""
    name, sep, endpoint = text.partition("=")
    if not sep or not name or not endpoint:
        raise argparse.ArgumentTypeError(f"expected NAME=ENDPOINT, such as player_1=grpc://127.0.0.1:9002, got {text!r}")
    return name, endpoint


def check_service_actors(pairs: list[tuple[str, str]], agent: str | None) -> dict[str, str]:
    """The ``--service-actor`` pairs as a mapping; UsageError for a name given twice, or the
    run's own ``--agent``, or an endpoint that is none."""
    services: dict[str, str] = {}
    for name, endpoint in pairs:
        if name in services:
            raise UsageError(f"--service-actor {name}=...: agent {name!r} is given twice")
        if name == agent:
            raise UsageError(f"--service-actor {name}=...: {name!r} is the agent this run plays (--agent)")
        services[name] = endpoint_arg(f"service actor {name}", endpoint)
    return services


def probe_service_actors(services: Mapping[str, str], security: Security | None = None) -> None:
    """Check that a Cogment service actor answers at each endpoint (from this host, as for the
    environment; dialed with ``security``); raises the typed error naming the agent and endpoint
    otherwise."""
    if not services:
        return
    from cogment_gym.protocol import parse_endpoint
    from cogment_gym.protocol.links import GRPC_OPTIONS
    from cogment_gym.protocol.probing import check_service
    from cogment_gym.protocol.security import NO_SECURITY, new_channel

    dial = security or NO_SECURITY

    async def probe() -> None:
        for name, endpoint in services.items():
            async with new_channel(parse_endpoint(endpoint).grpc_target, dial, GRPC_OPTIONS) as channel:
                await check_service(channel, "ServiceActorSP", f"service actor {name} at {endpoint}", "a Cogment service actor",
                                    metadata=dial.call_metadata)

    asyncio.run(probe())


def serve_seats(policy: type[TrialPolicy], environment: str | None, security: Security | None = None) -> ActorServer:
    """``policy`` served as a service actor on this host (port 0), for a remote Orchestrator.
    It checks the run's token, if it has one; it serves no TLS (the run's certificate is a
    client's): behind TLS, give the other seats with ``--service-actor``."""
    from cogment_gym.actors import serve_actor
    from cogment_gym.protocol.security import Security

    served = Security(token=security.token) if security is not None and security.token is not None else None
    return serve_actor({"others": policy}, host="127.0.0.1", port=0, environment=environment, security=served)


# ---------------------------------------------------------------------------------------- actions


def legal_mask(observation: Any, info: Any) -> Any:
    """PettingZoo's legal actions: ``observation["action_mask"]``, else ``info["action_mask"]``, else None."""
    if isinstance(observation, dict) and "action_mask" in observation:
        return observation["action_mask"]
    return info.get("action_mask") if isinstance(info, dict) else None


def pick_action(space: spaces.Space[Any], mask: Any, policy: str, rng: np.random.Generator) -> Any:
    """An action of ``space``, legal per ``mask`` when it is a Discrete one: uniformly random
    (``"random"``) or the lowest legal one (``"first-legal"``)."""
    if isinstance(space, spaces.Discrete):
        legal = np.flatnonzero(np.asarray(mask)) if mask is not None else np.arange(space.n)
        if legal.size == 0:  # nothing is legal: any action, the env decides
            legal = np.arange(space.n)
        index = int(legal[0]) if policy == "first-legal" else int(rng.choice(legal))
        return space.start + index
    space.seed(int(rng.integers(2**31)))
    return space.sample()


# ---------------------------------------------------------------------------------------- other seats


class SeatReturns:
    """The returns the other seats report, per trial and agent (thread-safe: served seats report
    from the actor server's thread)."""

    def __init__(self, seed: int | None) -> None:
        self._seed = seed
        self._lock = threading.Condition()
        self._returns: dict[str, dict[str, float]] = {}
        self._trials: dict[str, int] = {}  # agent -> trials started, for reproducible seeding

    def generator(self, agent: str) -> np.random.Generator:
        """The random generator of a seat's next trial: with a seed, the same for the same
        agent and trial number every run."""
        with self._lock:
            trial = self._trials.get(agent, 0)
            self._trials[agent] = trial + 1
        return np.random.default_rng(None if self._seed is None else [self._seed, zlib.crc32(agent.encode()), trial])

    def report(self, trial_id: str, agent: str, episode_return: float) -> None:
        with self._lock:
            self._returns.setdefault(trial_id, {})[agent] = episode_return
            self._lock.notify_all()

    def collect(self, trial_ids: list[str], agents: int, timeout: float = REPORT_WAIT) -> dict[str, list[float]]:
        """Agent -> returns over ``trial_ids``, once each trial has ``agents`` reports (or
        ``timeout`` seconds have passed: a seat's end may come after the run's last step)."""
        with self._lock:
            self._lock.wait_for(lambda: all(len(self._returns.get(t, {})) >= agents for t in trial_ids), timeout)
            returns: dict[str, list[float]] = {}
            for trial_id in trial_ids:
                for agent, value in self._returns.get(trial_id, {}).items():
                    returns.setdefault(agent, []).append(value)
        return returns


def seat_policy(policy: str, returns: SeatReturns | None = None) -> type[TrialPolicy]:
    """A :class:`~cogment_gym.actors.TrialPolicy` class playing ``policy`` (one of
    :data:`POLICIES`); with ``returns``, each trial reports its agent's return there."""

    class Seat(TrialPolicy):
        def __init__(self, context: ActorContext) -> None:
            super().__init__(context)
            self.rng = returns.generator(context.actor_name) if returns is not None else np.random.default_rng()
            self.total = 0.0

        def act(self, observation: Any, context: ActorContext) -> Any:
            # cumulative_reward: what the agent got since its last action (the whole AEC cycle).
            self.total += context.cumulative_reward
            return pick_action(context.action_space, context.action_mask, policy, self.rng)

        def end(self, context: ActorContext) -> None:
            self.total += context.cumulative_reward
            if returns is not None:
                returns.report(context.trial_id, context.agent, self.total)

    Seat.__name__ = Seat.__qualname__ = f"{policy.title().replace('-', '')}Seat"
    return Seat


# ---------------------------------------------------------------------------------------- summary


def return_lines(own: tuple[str, list[float]], others: Mapping[str, list[float]], who: Mapping[str, str],
                 order: list[str]) -> list[str]:
    """One ``return <agent>: mean .. min .. max ..  (<who>)`` line per agent, in ``order``."""
    table = {own[0]: own[1], **others}
    lines = []
    for agent in order:
        values = table.get(agent)
        if values:
            mean = math.fsum(values) / len(values)
            lines.append(f"return {agent}: mean {mean:.2f}  min {min(values):.2f}  max {max(values):.2f}  ({who[agent]})")
        else:
            lines.append(f"return {agent}: not seen here  ({who[agent]})")
    return lines


def describe_seats(agent: str, order: list[str], services: Mapping[str, str], others: str) -> dict[str, str]:
    """Agent -> who plays it, for the summary."""
    return {
        name: "this run, random" if name == agent else f"service actor at {services[name]}" if name in services
        else f"{others}, in this process"
        for name in order
    }

