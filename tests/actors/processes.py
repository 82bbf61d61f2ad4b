"""A service actor in a child process (``cogment_gym.actors.serve_actor``), for tests.

The child prints ``ENDPOINT <endpoint>`` once it serves, then one ``RESULT <json>`` line per
trial its policy saw end (trial id, agent, final cumulative reward, flags, moves made); it
serves until its stdin closes. Lines are read by a thread, so waiting on them has a deadline.
"""

from __future__ import annotations

import json
from typing import Any

from tests.children import Child

SCRIPT = r"""
import json, sys
from cogment_gym.actors import RandomPolicy, serve_actor

class Reporting(RandomPolicy):
    def end(self, context):
        print("RESULT " + json.dumps({
            "trial_id": context.trial_id, "agent": context.agent, "reward": context.cumulative_reward,
            "terminated": context.terminated, "truncated": context.truncated, "moves": self.moves,
        }), flush=True)

server = serve_actor(Reporting)
print("ENDPOINT " + server.endpoint, flush=True)
sys.stdin.read()
server.stop()
"""


class ActorProcess(Child):
    """The child; :meth:`stop` closes its stdin, :meth:`kill` sends SIGKILL (by PID)."""

    def __init__(self, timeout: float = 60.0) -> None:
        super().__init__(SCRIPT, (), timeout, what="the actor process")
        if not self.first_line.startswith("ENDPOINT "):
            self.stop()
            raise RuntimeError(f"the actor process did not start: {self.first_line!r}\n{self.stderr()}")
        self.endpoint = self.first_line.split(" ", 1)[1]

    def results(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        out = []
        while len(out) < count:
            line = self.next_line(timeout)
            if line is None:
                raise AssertionError(f"the actor process ended after {len(out)} results\n{self.stderr()}")
            if line.startswith("RESULT "):
                out.append(json.loads(line.split(" ", 1)[1]))
        return out
