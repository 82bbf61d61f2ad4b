"""``cogment-gym run`` and ``serve`` on PettingZoo games: every seat filled, one return per agent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pytest

import cogment_gym
from cogment_gym.actors import ActorContext, serve_actor
from cogment_gym.cli import main
from tests.cli.helpers import Service, error_line, run_cli

CONNECT_FOUR = "pettingzoo.classic.connect_four_v3"
RETURN = re.compile(r"^return (?P<agent>\S+): mean (?P<mean>-?[\d.]+)  min (?P<min>-?[\d.]+)  max (?P<max>-?[\d.]+)  \((?P<who>[^)]*)\)$", re.M)
NOT_SEEN = re.compile(r"^return (?P<agent>\S+): not seen here  \((?P<who>[^)]*)\)$", re.M)
EPISODES = re.compile(r"(\d+) episodes, (\d+) steps in")
SERVING = re.compile(r"serving (?P<what>.+) at (?P<endpoint>grpc://127\.0\.0\.1:\d+)")

pytestmark = pytest.mark.slow


def _returns(stdout: str) -> dict[str, tuple[float, float, float, str]]:
    return {m["agent"]: (float(m["mean"]), float(m["min"]), float(m["max"]), m["who"]) for m in RETURN.finditer(stdout)}


def test_a_game_runs_from_the_shell_with_every_seat_random() -> None:
    result = run_cli("run", CONNECT_FOUR, "--episodes", "6", "--seed", "3")
    assert result.returncode == 0, result.stderr
    returns = _returns(result.stdout)
    assert set(returns) == {"player_0", "player_1"}, result.stdout
    assert returns["player_0"][3] == "this run, random"
    assert returns["player_1"][3] == "random, in this process"
    for mean, low, high, _ in returns.values():
        assert -1.0 <= low <= mean <= high <= 1.0
    # Connect four is zero-sum: one seat's mean return is minus the other's (every episode seen).
    assert returns["player_0"][0] == pytest.approx(-returns["player_1"][0])
    assert EPISODES.search(result.stdout)[1] == "6"  # type: ignore[index]


def test_a_seeded_game_is_repeatable() -> None:
    outputs = [run_cli("run", CONNECT_FOUR, "--episodes", "4", "--seed", "11") for _ in range(2)]
    assert all(result.returncode == 0 for result in outputs), [result.stderr for result in outputs]
    first, second = (_returns(result.stdout) for result in outputs)
    assert first == second and len(first) == 2
    assert EPISODES.search(outputs[0].stdout)[2] == EPISODES.search(outputs[1].stdout)[2]  # type: ignore[index]


def test_the_run_plays_the_agent_it_is_given_against_a_scripted_seat() -> None:
    result = run_cli("run", CONNECT_FOUR, "--episodes", "3", "--seed", "0", "--agent", "player_1", "--others", "first-legal")
    assert result.returncode == 0, result.stderr
    returns = _returns(result.stdout)
    assert returns["player_1"][3] == "this run, random"
    assert returns["player_0"][3] == "first-legal, in this process"
    assert returns["player_0"][0] == pytest.approx(-returns["player_1"][0])


def test_a_parallel_game_runs_too() -> None:
    result = run_cli("run", "pettingzoo.classic.rps_v2", "--episodes", "2", "--seed", "1")
    assert result.returncode == 0, result.stderr
    returns = _returns(result.stdout)
    assert set(returns) == {"player_0", "player_1"}
    assert returns["player_0"][0] == pytest.approx(-returns["player_1"][0])


def test_a_service_actor_plays_the_seat_it_is_given() -> None:
    moves: list[str] = []

    def lowest(observation: object, context: ActorContext) -> int:
        moves.append(context.trial_id)
        return int(context.action_mask.argmax())

    with serve_actor(lowest, port=0) as actor:
        result = run_cli("run", CONNECT_FOUR, "--episodes", "3", "--service-actor", f"player_1={actor.endpoint}")
        assert result.returncode == 0, result.stderr
        assert actor.servicer.trials_played == 3
    assert len(set(moves)) == 3  # it moved in each of the three trials
    assert _returns(result.stdout)["player_0"][3] == "this run, random"
    unseen = {m["agent"]: m["who"] for m in NOT_SEEN.finditer(result.stdout)}
    assert unseen == {"player_1": f"service actor at {actor.endpoint}"}


def test_serve_orchestrator_and_run_make_a_game_across_processes(start: Callable[..., Service]) -> None:
    game = start("serve", CONNECT_FOUR, "--port", "0", "--actor", "first-legal", "--actor-port", "0")
    env = SERVING.fullmatch(game.readline())
    actor = SERVING.fullmatch(game.readline())
    assert env and env["what"] == CONNECT_FOUR, env
    assert actor and actor["what"] == "actor first-legal", actor
    orchestrator = start("orchestrator", "--lifecycle-port", "0")
    lifecycle = re.match(r"orchestrator: lifecycle at (\S+),", orchestrator.readline())
    assert lifecycle
    remote = ["--environment", env["endpoint"], "--orchestrator", lifecycle[1]]

    # The served actor plays player_1; this run player_0.
    served = run_cli("run", CONNECT_FOUR, "--episodes", "3", *remote, "--service-actor", f"player_1={actor['endpoint']}")
    assert served.returncode == 0, served.stderr
    assert "player_0" in _returns(served.stdout)
    assert {m["agent"] for m in NOT_SEEN.finditer(served.stdout)} == {"player_1"}

    # No service actor: the remote Orchestrator reaches the other seat served by run itself.
    alone = run_cli("run", CONNECT_FOUR, "--episodes", "3", "--seed", "2", *remote)
    assert alone.returncode == 0, alone.stderr
    returns = _returns(alone.stdout)
    assert set(returns) == {"player_0", "player_1"}
    assert returns["player_0"][0] == pytest.approx(-returns["player_1"][0])

    assert game.terminate() == 0
    assert orchestrator.terminate() == 0


def test_serve_offers_a_parallel_api(start: Callable[..., Service]) -> None:
    game = start("serve", CONNECT_FOUR, "--port", "0", "--api", "parallel")
    env = SERVING.fullmatch(game.readline())
    assert env
    parallel = cogment_gym.CogmentParallelEnv(environment=env["endpoint"])
    try:
        observations, _ = parallel.reset(seed=0)
        assert set(observations) == {"player_0", "player_1"}  # both observed at once: parallel
    finally:
        parallel.close()
    result = run_cli("run", CONNECT_FOUR, "--episodes", "2", "--environment", env["endpoint"])
    assert result.returncode == 0, result.stderr
    assert set(_returns(result.stdout)) == {"player_0", "player_1"}
    assert game.terminate() == 0


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--service-actor", "player_1"], ["--service-actor", "NAME=ENDPOINT"]),
        (["--service-actor", "player_1=http://127.0.0.1:1"], ["service actor player_1 at http://127.0.0.1:1 is not an endpoint", "grpc://host:port"]),
        (["--service-actor", "player_1=grpc://127.0.0.1:1"], ["service actor player_1 at grpc://127.0.0.1:1 is unreachable", "expected a Cogment service actor"]),
        (["--service-actor", "player_1=grpc://127.0.0.1:1", "--service-actor", "player_1=grpc://127.0.0.1:2"], ["'player_1' is given twice"]),
        (["--agent", "player_0", "--service-actor", "player_0=grpc://127.0.0.1:1"], ["'player_0' is the agent this run plays"]),
        (["--agent", "player_7"], ["player_7", "player_0", "player_1"]),
        (["--others", "smart"], ["--others", "smart"]),
    ],
    ids=["no-endpoint", "bad-endpoint", "unreachable", "twice", "own-agent", "unknown-agent", "unknown-policy"],
)
def test_bad_seats_are_one_line_and_exit_2(args: list[str], fragments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # In this process (the same code as the command; the subprocess cases are below).
    assert main(["run", CONNECT_FOUR, "--episodes", "1", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = captured.err.strip().splitlines()[-1]
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in line, line


def test_a_service_actor_endpoint_where_another_service_answers_exits_2() -> None:
    with cogment_gym.serve("CartPole-v1") as env:
        result = run_cli("run", CONNECT_FOUR, "--service-actor", f"player_1={env.endpoint}")
    assert result.returncode == 2
    line = error_line(result.stderr)
    assert f"service actor player_1 at {env.endpoint} answers, but not as a Cogment service actor" in line
    assert "UNIMPLEMENTED" not in line


def test_agent_options_on_a_single_agent_env_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "CartPole-v1", "--agent", "player"]) == 2
    assert "multi-agent" in error_line(capsys.readouterr().err)


def test_a_game_behind_a_token_from_the_shell(start: Callable[..., Service], tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    game = start("serve", CONNECT_FOUR, "--port", "0", "--actor", "random", "--actor-port", "0", "--token-file", str(token))
    env = SERVING.fullmatch(game.readline())
    actor = SERVING.fullmatch(game.readline())
    assert env and actor
    orchestrator = start("orchestrator", "--lifecycle-port", "0", "--token-file", str(token))
    lifecycle = re.match(r"orchestrator: lifecycle at (\S+),", orchestrator.readline())
    assert lifecycle
    remote = ["--environment", env["endpoint"], "--orchestrator", lifecycle[1]]

    # The served actor checks the token; run sends it when it checks the actor, and so does the
    # Orchestrator in the trials.
    served = run_cli("run", CONNECT_FOUR, "--episodes", "2", *remote, "--service-actor", f"player_1={actor['endpoint']}",
                     "--token-file", str(token))
    assert served.returncode == 0, served.stderr
    # The seat run serves for the Orchestrator checks the token too.
    alone = run_cli("run", CONNECT_FOUR, "--episodes", "2", *remote, "--token-file", str(token))
    assert alone.returncode == 0, alone.stderr
    assert set(_returns(alone.stdout)) == {"player_0", "player_1"}
    # Without the token: refused when the endpoints are checked, before any trial.
    refused = run_cli("run", CONNECT_FOUR, "--episodes", "1", *remote)
    assert refused.returncode == 2
    assert "refused the call" in error_line(refused.stderr)

    assert game.terminate() == 0
    assert orchestrator.terminate() == 0
