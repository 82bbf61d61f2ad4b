"""The datalog + datastore service with TLS, mTLS and a token (``serve_datalog(security=...)``):
an embedded Orchestrator dialing with the right settings records its trials there; without
them nothing is recorded (a failing datalog is logged, the trial goes on), and the datastore
refuses to list them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc

from cogment_gym import CogmentEnv
from cogment_gym._proto.cogment.api import trial_datastore_pb2, trial_datastore_pb2_grpc
from cogment_gym.datastore import serve_datalog
from cogment_gym.protocol import parse_endpoint
from cogment_gym.protocol.security import NO_SECURITY, Security, new_channel
from tests.pki import Pki
from tests.waiting import wait_until


def _episode(env: Any) -> None:
    env.reset(seed=0)
    while True:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            return


async def _list_code(endpoint: str, security: Security) -> grpc.StatusCode:
    async with new_channel(parse_endpoint(endpoint).grpc_target, security, []) as channel:
        try:
            await trial_datastore_pb2_grpc.TrialDatastoreSPStub(channel).RetrieveTrials(
                trial_datastore_pb2.RetrieveTrialsRequest(), metadata=security.call_metadata, timeout=10
            )
        except grpc.aio.AioRpcError as err:
            return err.code()
    return grpc.StatusCode.OK


def test_trials_are_recorded_over_tls_with_a_token_and_only_so(pki: Pki, tmp_path: Path) -> None:
    with serve_datalog(tmp_path / "trials", security=pki.server(token="s3cret")) as datalog:
        env = CogmentEnv("CartPole-v1", max_steps=5, datalog=datalog.endpoint, security=pki.client(token="s3cret"))
        try:
            _episode(env)
        finally:
            env.close()
        assert wait_until(lambda: len(datalog.store.trials()) == 1 and datalog.store.trials()[0].complete)
        plain = CogmentEnv("CartPole-v1", max_steps=5, datalog=datalog.endpoint)
        try:
            _episode(plain)  # the trial runs; its datalog is refused
        finally:
            plain.close()
        assert len(datalog.store.trials()) == 1
        assert asyncio.run(_list_code(datalog.endpoint, pki.client(token="s3cret"))) == grpc.StatusCode.OK
        assert asyncio.run(_list_code(datalog.endpoint, pki.client())) == grpc.StatusCode.UNAUTHENTICATED
        assert asyncio.run(_list_code(datalog.endpoint, NO_SECURITY)) == grpc.StatusCode.UNAVAILABLE
