"""A human at the keyboard as a Cogment service actor: the observation is shown on stdout, the
action is read from stdin (one integer for a Discrete space, numbers separated by spaces for a
Box). Illegal moves are asked again.

Run in one terminal: ``python examples/human_actor.py --port 9003``; in another, for instance:
``python examples/connect_four_mixed.py --opponent grpc://127.0.0.1:9003`` to play connect four
against a training loop, or any trial whose actor has that endpoint.
"""

from __future__ import annotations

import argparse

from cogment_gym.actors import KeyboardPolicy, serve_actor_forever

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9003)
    args = parser.parse_args()
    print(f"a human plays at grpc://{args.host}:{args.port} (Ctrl-C stops)")
    serve_actor_forever({"human": KeyboardPolicy}, host=args.host, port=args.port)
