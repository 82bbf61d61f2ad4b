"""The sweep: a sample of every environment family that installs from PyPI, stepped directly and
through the bridge with the same seeds and actions, must match with strict type equality
(``type(x) is type(y)``, dtype, shape, dict key order, values; see
:func:`cogment_gym.testing.assert_data_equal`): nothing converted on either side.

Families: Gymnasium classic-control, toy-text, box2d, mujoco, ALE (ale-py, ROMs in its wheel),
MiniGrid / BabyAI, highway-env; PettingZoo classic, butterfly, sisl, and mpe2. Each sample picks
the ids whose types are the interesting ones: Python ``int`` observations and rewards (toy-text,
MiniGrid), ``np.float32`` / ``np.float64`` / ``int`` rewards (box2d, mujoco), third-party spaces
with no codec (MiniGrid's ``MissionSpace``, BabyAI's ``BabyAIMissionSpace``), ``OrderedDict``
observations and envs that take no ``render_mode`` (highway-env's lane-keeping, parking-parked),
a tuple of rewards and of ``terminated`` flags (intersection-multi-agent-v1), a 0-d array
observation (rps), Dict observations in the env's own key order (every classic game). The
packages come with the ``envs`` extra (``pip install -e '.[test]'``); a family whose package is
missing is skipped, saying which.

Budget: about 2 minutes on 2 cores for the whole module (slow marker: it still runs in CI).
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from typing import Any, Callable, Iterator

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import SyncVectorEnv

from cogment_gym import CogmentAECEnv, CogmentEnv, CogmentParallelEnv
from cogment_gym.codec import ForeignSpace
from cogment_gym.envs import CogmentVectorEnv
from cogment_gym.testing import assert_data_equal, check_bridge_matches

from tests.envs.test_pettingzoo_differential import check_aec_match, check_parallel_match

pytestmark = pytest.mark.slow

# id, the module that registers it (None: Gymnasium itself), steps per episode at most.
GYM_SAMPLE: dict[str, list[tuple[str, str | None, int]]] = {
    "classic-control": [("Pendulum-v1", None, 30), ("Acrobot-v1", None, 30), ("MountainCarContinuous-v0", None, 30)],
    "toy-text": [("FrozenLake-v1", None, 40), ("Blackjack-v1", None, 40), ("Taxi-v4", None, 40)],
    "box2d": [("LunarLander-v3", "Box2D", 40), ("BipedalWalker-v3", "Box2D", 25), ("CarRacing-v3", "Box2D", 10)],
    "mujoco": [("InvertedPendulum-v5", "mujoco", 40), ("Hopper-v5", "mujoco", 40), ("Ant-v5", "mujoco", 15)],
    "ale": [("ALE/Pong-v5", "ale_py", 15), ("ALE/Breakout-v5", "ale_py", 15)],
    "minigrid": [
        ("MiniGrid-Empty-5x5-v0", "minigrid", 30),
        ("MiniGrid-LavaCrossingS9N1-v0", "minigrid", 30),
        ("MiniGrid-Fetch-5x5-N2-v0", "minigrid", 30),
        ("BabyAI-GoToRedBall-v0", "minigrid", 30),
    ],
    "highway-env": [
        ("highway-fast-v0", "highway_env", 8),
        ("lane-keeping-v0", "highway_env", 10),
        ("parking-parked-v0", "highway_env", 10),
        ("intersection-multi-agent-v1", "highway_env", 8),
    ],
}
# What installs the module (the `envs` extra of pyproject.toml), for the skip reason.
PACKAGES = {"Box2D": "box2d", "mujoco": "mujoco", "ale_py": "ale-py", "minigrid": "minigrid", "highway_env": "highway-env", "mpe2": "mpe2"}
SEEDS = [0, 1]


def _need(module: str | None) -> None:
    if module is not None and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install {PACKAGES.get(module, module)}, part of the 'envs' extra)")


def _registered(env_id: str, module: str | None) -> str:
    """The id with its module prefix where Gymnasium needs one to find it (``ale_py:ALE/Pong-v5``):
    gym.make imports the module first, here and in the env service alike."""
    return env_id if module in (None, "Box2D", "mujoco") else f"{module}:{env_id}"


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecations and passive-checker warnings of the envs themselves
        yield


GYM_CASES = [pytest.param(family, *case, id=f"{family}:{case[0]}") for family, cases in GYM_SAMPLE.items() for case in cases]


class _WithoutResetAction(gym.Wrapper[Any, Any, Any, Any]):
    """highway-env's reset() puts ``action_space.sample()`` of a space it has just rebuilt, never
    seeded, in ``info["action"]`` (and the rewards of that action in ``info["rewards"]``, for
    racetrack and merge-generic): not reproducible even between two direct envs. Left out of
    reset's info on both sides; everything else is compared."""

    def reset(self, **kwargs: Any) -> Any:
        obs, info = self.env.reset(**kwargs)
        info.pop("action", None)
        info.pop("rewards", None)
        return obs, info


@pytest.mark.parametrize(("family", "env_id", "module", "max_steps"), GYM_CASES)
def test_gymnasium_families_match_strictly(family: str, env_id: str, module: str | None, max_steps: int, closing: Callable[[Any], Any]) -> None:
    _need(module)
    source = _registered(env_id, module)
    bridged: gym.Env[Any, Any] = closing(CogmentEnv(source))
    direct: Any = source
    if family == "highway-env":
        bridged = _WithoutResetAction(bridged)
        direct = lambda: _WithoutResetAction(gym.make(source))  # noqa: E731
    report = check_bridge_matches(direct, bridged, seeds=SEEDS, max_steps=max_steps)
    assert report.episodes == len(SEEDS) and report.steps >= len(SEEDS)


def test_minigrid_missions_arrive_as_foreign_spaces_over_grpc(served: Callable[..., Any], closing: Callable[[Any], Any]) -> None:
    """Spaces with no codec travel in the spec of a served env (GetSpec over gRPC): the client's
    stand-in samples what the env's MissionSpace samples and accepts the env's missions."""
    _need("minigrid")
    ids = ["minigrid:BabyAI-GoToRedBall-v0", "minigrid:MiniGrid-Fetch-5x5-N2-v0"]
    server = served({i: i for i in ids}, port=0)
    for source in ids:
        bridged = closing(CogmentEnv(environment=server.endpoint, implementation=source))
        mission = bridged.observation_space["mission"]
        assert isinstance(mission, ForeignSpace) and mission.type_name.startswith("minigrid.")
        report = check_bridge_matches(source, bridged, seeds=[3, 4], max_steps=20)
        assert report.steps > 0
        direct = gym.make(source)
        try:
            obs, _ = direct.reset(seed=5)
            assert mission.contains(obs["mission"]) and direct.observation_space["mission"].contains(mission.sample())
        finally:
            direct.close()


def test_tuple_rewards_and_flags_arrive_as_the_env_gave_them(closing: Callable[[Any], Any]) -> None:
    """highway-env's multi-agent intersection returns a reward and a terminated flag per vehicle."""
    _need("highway_env")
    source = "highway_env:intersection-multi-agent-v1"
    bridged = closing(CogmentEnv(source))
    direct = gym.make(source)
    try:
        bridged.reset(seed=0)
        direct.reset(seed=0)
        action = (1, 2)
        _, reward, terminated, truncated, _ = bridged.step(action)
        _, reward_d, terminated_d, _, _ = direct.step(action)
        assert type(reward) is tuple and [type(r) for r in reward] == [type(r) for r in reward_d] == [np.float64, np.float64]
        assert type(terminated) is tuple and terminated == terminated_d and type(truncated) is bool
    finally:
        direct.close()


# ------------------------------------------------------------------------------------- PettingZoo

# module, API, steps (AEC steps, or parallel steps) per episode at most.
PZ_SAMPLE: dict[str, list[tuple[str, str, int]]] = {
    "classic": [
        ("pettingzoo.classic.chess_v6", "aec", 30),
        ("pettingzoo.classic.connect_four_v3", "aec", 60),
        ("pettingzoo.classic.go_v5", "aec", 20),
        ("pettingzoo.classic.hanabi_v5", "aec", 40),
        ("pettingzoo.classic.leduc_holdem_v4", "aec", 40),
        ("pettingzoo.classic.rps_v2", "parallel", 40),
        ("pettingzoo.classic.texas_holdem_no_limit_v6", "aec", 40),
        ("pettingzoo.classic.texas_holdem_v4", "aec", 40),
        ("pettingzoo.classic.tictactoe_v3", "aec", 40),
    ],
    "butterfly": [
        ("pettingzoo.butterfly.knights_archers_zombies_v11", "parallel", 20),
        ("pettingzoo.butterfly.cooperative_pong_v6", "aec", 20),
    ],
    "sisl": [("pettingzoo.sisl.pursuit_v5", "parallel", 10), ("pettingzoo.sisl.multiwalker_v9", "aec", 30)],
    "mpe2": [
        ("mpe2.simple_spread_v3", "parallel", 25),
        ("mpe2.simple_world_comm_v3", "aec", 40),
        ("mpe2.simple_speaker_listener_v4", "aec", 40),
    ],
}
# The extra each PettingZoo family needs: its games' own dependencies.
PZ_NEEDS = {"classic": ["chess", "rlcard", "pyspiel"], "butterfly": ["pygame", "pymunk"], "sisl": ["Box2D", "pymunk"], "mpe2": ["mpe2"]}

PZ_CASES = [pytest.param(family, *case, id=f"{family}:{case[0].rpartition('.')[2]}") for family, cases in PZ_SAMPLE.items() for case in cases]


@pytest.mark.parametrize(("family", "module", "api", "max_steps"), PZ_CASES)
def test_pettingzoo_families_match_strictly(family: str, module: str, api: str, max_steps: int) -> None:
    for needed in PZ_NEEDS[family]:
        _need(needed)
    game = importlib.import_module(module)
    if api == "aec":
        bridged_aec = CogmentAECEnv(module)
        try:
            assert check_aec_match(game.env, bridged_aec, SEEDS, max_iterations=max_steps) > 0
        finally:
            bridged_aec.close()
    else:
        bridged_par = CogmentParallelEnv(module)
        try:
            assert check_parallel_match(game.parallel_env, bridged_par, SEEDS, max_iterations=max_steps) > 0
        finally:
            bridged_par.close()



@pytest.mark.parametrize("source", ["minigrid:MiniGrid-Fetch-5x5-N2-v0", "minigrid:BabyAI-GoToRedBall-v0"])
def test_gymnasium_env_checker_passes_with_foreign_spaces(source: str, closing: Callable[[Any], Any]) -> None:
    """Gymnasium's check_env on the bridge warns about nothing it does not warn about directly."""
    _need("minigrid")

    def warnings_of(env: gym.Env[Any, Any]) -> set[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env, skip_render_check=True)
        return {str(w.message) for w in caught}

    direct = gym.make(source)
    try:
        expected = warnings_of(direct.unwrapped)
    finally:
        direct.close()
    got = warnings_of(closing(CogmentEnv(source)))
    assert got <= expected, f"warnings only the bridge raises: {sorted(got - expected)}"


@pytest.mark.parametrize("envs_per_trial", [1, 2])
def test_vector_envs_with_foreign_spaces_match_sync_vector_env(envs_per_trial: int, closing: Callable[[Any], Any]) -> None:
    """batch_space of a ForeignSpace batches as the env's own space does (a Tuple of copies), in
    trials of one env and in batched trials."""
    _need("minigrid")
    source = "minigrid:BabyAI-GoToRedBall-v0"
    bridged = closing(CogmentVectorEnv(source, num_envs=2, envs_per_trial=envs_per_trial))
    direct = SyncVectorEnv([lambda: gym.make(source) for _ in range(2)])
    try:
        assert_data_equal(direct.reset(seed=3), bridged.reset(seed=3), "reset")
        for t in range(20):
            action = np.array([t % 3, (t + 1) % 3])
            assert_data_equal(direct.step(action), bridged.step(action), f"step {t}")
    finally:
        direct.close()
