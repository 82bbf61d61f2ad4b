"""TrialConnection's same-host fast path: a served env announces a unix socket in its spec; a
client with an embedded Orchestrator runs its trials over it once the service there proves to be
the same one, and keeps TCP otherwise. Which transport a trial used is read from the service's
own log of where each trial came from (``context.peer()``)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
from typing import Any, Callable

import grpc
import gymnasium as gym
import numpy as np
import pytest

from cogment_gym import CogmentEnv, EnvServer
from cogment_gym._proto.cogment_gym.v1 import env_pb2, env_pb2_grpc
from cogment_gym.envs import CogmentVectorEnv
from cogment_gym.errors import EndpointUnreachableError, PeerLostError
from cogment_gym.protocol import parse_endpoint
from tests.children import REPO_ROOT

STREAMS_LOGGER = "cogment_gym.protocol.streams"


def trial_peers(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Where the service saw each trial come from ("unix:..." or "ipv4:...")."""
    return [str(r.args[-1]) for r in caplog.records if r.name == STREAMS_LOGGER and r.msg.endswith("trial %s from %s")]


def play(env: Any) -> None:
    env.reset(seed=0)
    env.step(env.action_space.sample())


def get_spec(endpoint: str) -> env_pb2.EnvSpec:
    with grpc.insecure_channel(parse_endpoint(endpoint).grpc_target) as channel:
        return env_pb2_grpc.EnvSpecSPStub(channel).GetSpec(env_pb2.GetSpecRequest(), timeout=10)


def test_a_served_env_announces_its_unix_socket_and_removes_it_when_stopped(served: Callable[..., EnvServer]) -> None:
    server = served("CartPole-v1")
    assert server.endpoint.startswith("grpc://") and server.local_endpoint.startswith("unix://")
    path = parse_endpoint(server.local_endpoint).address
    assert os.path.exists(path) and os.stat(os.path.dirname(path)).st_mode & 0o077 == 0  # private directory
    over_tcp, over_unix = get_spec(server.endpoint), get_spec(server.local_endpoint)
    assert over_tcp.local_endpoint == server.local_endpoint
    assert over_tcp.service_id and over_tcp.service_id == over_unix.service_id == server.service_id
    server.stop()
    assert not os.path.exists(os.path.dirname(path))


@pytest.mark.parametrize("make", [
    lambda endpoint: CogmentEnv(environment=endpoint),
    lambda endpoint: CogmentVectorEnv(environment=endpoint, num_envs=2),
    lambda endpoint: CogmentVectorEnv(environment=endpoint, num_envs=4, envs_per_trial=2),
], ids=["CogmentEnv", "CogmentVectorEnv", "batched"])
def test_trials_of_an_embedded_orchestrator_run_over_the_unix_socket(
    make: Callable[[str], Any], served: Callable[..., EnvServer], closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=STREAMS_LOGGER)
    server = served("CartPole-v1")
    play(closing(make(server.endpoint)))
    peers = trial_peers(caplog)
    assert peers and all(peer.startswith("unix:") for peer in peers), peers


def tcp_only(caplog: pytest.LogCaptureFixture, env: Any) -> None:
    play(env)
    peers = trial_peers(caplog)
    assert peers and all(peer.startswith("ipv4:") for peer in peers), peers


def test_local_socket_false_serves_tcp_only(
    served: Callable[..., EnvServer], closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=STREAMS_LOGGER)
    server = served("CartPole-v1", local_socket=False)
    assert server.local_endpoint == "" and get_spec(server.endpoint).local_endpoint == ""
    tcp_only(caplog, closing(CogmentEnv(environment=server.endpoint)))


def test_the_client_can_keep_tcp(
    served: Callable[..., EnvServer], closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, logger=STREAMS_LOGGER)
    monkeypatch.setenv("COGMENT_GYM_LOCAL_SOCKET", "0")
    tcp_only(caplog, closing(CogmentEnv(environment=served("CartPole-v1").endpoint)))


def test_a_vanished_socket_falls_back_to_tcp(
    served: Callable[..., EnvServer], closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=STREAMS_LOGGER)
    server = served("CartPole-v1")
    os.unlink(parse_endpoint(server.local_endpoint).address)  # as if from another host
    tcp_only(caplog, closing(CogmentEnv(environment=server.endpoint)))


def test_a_socket_answered_by_another_service_is_not_used(
    served: Callable[..., EnvServer], closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A stale announcement (the path now serves another service) is caught by the service id."""
    caplog.set_level(logging.DEBUG, logger=STREAMS_LOGGER)
    server, other = served("CartPole-v1"), served("CartPole-v1")
    server._spec_servicer.local_endpoint = other.local_endpoint  # the server announces the other's socket
    env = closing(CogmentEnv(environment=server.endpoint))
    tcp_only(caplog, env)
    assert other.servicer.trials_played == 0


@pytest.mark.parametrize("leftover", [False, True], ids=["socket-removed", "dead-socket-file-left"])
def test_a_restarted_service_is_reached_over_tcp_by_the_next_trial(
    leftover: bool, served: Callable[..., EnvServer], closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A client routed to a service's socket must survive the service restarting on its port."""
    caplog.set_level(logging.DEBUG, logger=STREAMS_LOGGER)
    first = served("CartPole-v1")
    env = closing(CogmentEnv(environment=first.endpoint, timeout=5))
    play(env)
    assert trial_peers(caplog)[-1].startswith("unix:")
    path = parse_endpoint(first.local_endpoint).address
    first.stop()
    if leftover:  # as a killed service leaves it: the file is there, nobody listens
        os.makedirs(os.path.dirname(path))
        dead = socket.socket(socket.AF_UNIX)
        dead.bind(path)
        closing(_Closer(dead, os.path.dirname(path)))
    served("CartPole-v1", port=first.port)
    caplog.clear()
    for _ in range(2):  # this trial and the next go over TCP
        play(env)
    peers = trial_peers(caplog)
    assert len(peers) == 2 and all(peer.startswith("ipv4:") for peer in peers), peers


class _Closer:
    def __init__(self, sock: socket.socket, directory: str) -> None:
        self.sock, self.directory = sock, directory

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def test_a_service_killed_mid_trial_is_still_named_by_the_endpoint_the_user_gave(
    served: Callable[..., EnvServer], closing: Callable[[Any], Any]
) -> None:
    server = served("CartPole-v1")
    env = closing(CogmentEnv(environment=server.endpoint, timeout=5))
    env.reset(seed=0)
    env.step(np.int64(0))
    server.stop(grace=0)
    with pytest.raises((PeerLostError, EndpointUnreachableError)) as info:
        for _ in range(3):
            env.step(np.int64(0))
    assert server.endpoint in str(info.value) and "unix" not in str(info.value)


class _Frames(gym.Env[np.ndarray, np.int64]):
    """uint8[84,84,3] observations: 21,168 bytes each."""

    observation_space = gym.spaces.Box(0, 255, (84, 84, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return np.zeros((84, 84, 3), np.uint8), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return np.ones((84, 84, 3), np.uint8), 0.0, False, False, {}


@pytest.mark.parametrize("per_trial, transport", [(1, "unix:"), (2, "unix:"), (4, "ipv4:")])
def test_observation_messages_above_64_kib_stay_on_tcp(
    per_trial: int, transport: str, served: Callable[..., EnvServer], closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Measured: a unix socket is slower than loopback TCP for ~677 kB messages (see
    connection.LOCAL_SOCKET_MAX_BYTES); 4 x 21,168 bytes is above the cut, 2 x is not."""
    caplog.set_level(logging.DEBUG, logger=STREAMS_LOGGER)
    server = served({"frames": _Frames})
    play(closing(CogmentVectorEnv(num_envs=4, environment=server.endpoint, implementation="frames", envs_per_trial=per_trial)))
    peers = trial_peers(caplog)
    assert peers and all(peer.startswith(transport) for peer in peers), peers


@pytest.mark.parametrize("timeout", [None, 0])
def test_a_timeout_of_none_or_zero_still_finds_the_socket(
    timeout: Any, served: Callable[..., EnvServer], closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=STREAMS_LOGGER)
    play(closing(CogmentEnv(environment=served("CartPole-v1").endpoint, timeout=timeout)))
    assert trial_peers(caplog)[-1].startswith("unix:")


def test_a_server_never_stopped_leaves_no_socket_directory_behind() -> None:
    """The socket's directory goes with the interpreter even without stop()."""
    code = "import cogment_gym, sys; server = cogment_gym.serve('CartPole-v1'); print(server.local_endpoint, flush=True)"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    local = done.stdout.strip().splitlines()[-1]
    assert local.startswith("unix://")
    assert not os.path.exists(os.path.dirname(parse_endpoint(local).address))


def test_rgb_array_frames_stay_on_tcp(served: Callable[..., EnvServer], closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture) -> None:
    """Every observation message then carries a frame (CartPole's: 600x400x3 bytes)."""
    caplog.set_level(logging.DEBUG, logger=STREAMS_LOGGER)
    env = closing(CogmentEnv(environment=served("CartPole-v1").endpoint, render_mode="rgb_array"))
    tcp_only(caplog, env)
    assert env.render().shape == (400, 600, 3)
