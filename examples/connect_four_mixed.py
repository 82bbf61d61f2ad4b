"""Mixed trials on connect four: a Gymnasium loop plays player_0 against a service actor.

Run: ``python examples/connect_four_mixed.py`` (the opponent is a random policy run in this
process), or ``--opponent grpc://127.0.0.1:9003`` to play against a served policy (e.g. a human:
``examples/human_actor.py``). Then the same game as a PettingZoo AEC env where the loop plays
both seats, checked by PettingZoo's own ``api_test``.
"""

from __future__ import annotations

import argparse

import numpy as np
from pettingzoo.test import api_test

import cogment_gym
from cogment_gym.actors import RandomPolicy

GAME = "pettingzoo.classic.connect_four_v3"


def main(opponent: str | None, games: int) -> None:
    rng = np.random.default_rng(0)
    # Player 1 is a service actor; CogmentEnv is a single-agent Gymnasium env of player 0: each
    # step returns at player 0's next turn, with the reward accumulated since its last move.
    env = cogment_gym.CogmentEnv(GAME, service_actors={"player_1": opponent or RandomPolicy})
    results = []
    for game in range(games):
        obs, _ = env.reset(seed=game)
        total, done = 0.0, False
        while not done:
            action = int(rng.choice(np.flatnonzero(obs["action_mask"])))
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        results.append(total)
    env.close()
    print(f"player_0 over {games} games: {results.count(1.0)} won, {results.count(-1.0)} lost, {results.count(0.0)} drawn")

    # Both seats played here: a PettingZoo AEC environment whose episodes are Cogment trials.
    aec = cogment_gym.CogmentAECEnv(GAME)
    api_test(aec, num_cycles=100)
    aec.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opponent", default=None, help="endpoint of a service actor for player_1")
    parser.add_argument("--games", type=int, default=20)
    args = parser.parse_args()
    main(args.opponent, args.games)
