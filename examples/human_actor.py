"""A human at the keyboard as a Cogment service actor: the observation is shown on stdout, the
action is read from stdin (one integer for a Discrete space, numbers separated by spaces for a
Box). Illegal moves are asked again.

Run in one terminal: ``python examples/human_actor.py --port 9003``; in another, for instance:
``python examples/connect_four_mixed.py --opponent grpc://127.0.0.1:9003`` to play connect four
against a training loop, or any trial whose actor has that endpoint.
"""

from __future__ import annotations

import argparse

from cogment_gym.actors import KeyboardPolicy, serve_actor
from cogment_gym.protocol.serving import serve_until_signal

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9003, help="0 lets the OS choose (default: %(default)s)")
    args = parser.parse_args()
    server = serve_actor({"human": KeyboardPolicy}, host=args.host, port=args.port)  # bound once it returns
    serve_until_signal(server, on_ready=lambda: print(f"a human plays at {server.endpoint} (Ctrl-C stops)", flush=True))
