"""A random policy served as a Cogment service actor (any actor class, any environment).

Run: ``python examples/random_actor.py [--port 9002]``, then give ``grpc://127.0.0.1:9002`` as an
actor's endpoint, e.g. ``CogmentEnv("pettingzoo.classic.connect_four_v3",
service_actors={"player_1": "grpc://127.0.0.1:9002"})``. It plays legal moves only (the action
mask of the observation or of ``info`` is honoured) and, with ``settings={"seed": n}`` in the
trial's actor config, plays the same moves every time.
"""

from __future__ import annotations

import argparse

from cogment_gym.actors import RandomPolicy, serve_actor_forever

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9002)
    args = parser.parse_args()
    print(f"serving a random policy at grpc://{args.host}:{args.port} (Ctrl-C stops)")
    serve_actor_forever({"random": RandomPolicy}, host=args.host, port=args.port)
