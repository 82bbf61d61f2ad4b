"""A random policy served as a Cogment service actor (any actor class, any environment).

Run: ``python examples/random_actor.py [--port 9002]`` (``--port 0``: a free port; the line it
prints gives the real one), then give that endpoint as an actor's endpoint, e.g.
``CogmentEnv("pettingzoo.classic.connect_four_v3", service_actors={"player_1": "grpc://127.0.0.1:9002"})``
or ``cogment-gym run pettingzoo.classic.connect_four_v3 --service-actor player_1=grpc://127.0.0.1:9002``.
It plays legal moves only (the action mask of the observation or of ``info`` is honoured) and,
with ``settings={"seed": n}`` in the trial's actor config, plays the same moves every time.
The same from the command line, beside the game: ``cogment-gym serve GAME --actor random``.
"""

from __future__ import annotations

import argparse

from cogment_gym.actors import RandomPolicy, serve_actor
from cogment_gym.protocol.serving import serve_until_signal

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9002, help="0 lets the OS choose (default: %(default)s)")
    args = parser.parse_args()
    server = serve_actor({"random": RandomPolicy}, host=args.host, port=args.port)  # bound once it returns
    serve_until_signal(server, on_ready=lambda: print(f"serving a random policy at {server.endpoint} (Ctrl-C stops)", flush=True))
