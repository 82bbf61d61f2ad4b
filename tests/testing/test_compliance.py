"""The compliance check (``cogment_gym.testing.compliance``, ``cogment-gym check``): it passes on
served envs that follow the protocol, and each property FAILS, by name, on a service broken in
the way that property checks (``_fake_env.py``)."""

from __future__ import annotations

import unittest
from typing import Any, Iterator

import pytest

import cogment_gym
from cogment_gym.cli import main
from cogment_gym.testing import COMPOSITE_ENV_ID, PROPERTIES, EnvironmentCompliance, check_environment

from ._fake_env import FAULTS, FakeEnvService

# Which property each fault must make fail.
BROKEN = {
    "silent_init": "handshake.init",
    "no_heartbeat": "handshake.heartbeat",
    "no_last_ack": "handshake.orchestrator_end",
    "hangs_after_end": "handshake.hard_end",
    "wrong_space": "reset",
    "flags_at_reset": "reset",
    "no_end_flag": "step.episode_end",
    "no_last": "step.episode_end",
    "random": "determinism",
    "accepts_bad_actions": "errors.bad_action",
    "silent_on_bad_bytes": "errors.unparsable_action",
    "accepts_unknown_implementation": "errors.unknown_implementation",
}


@pytest.fixture
def fake() -> Iterator[Any]:
    services: list[FakeEnvService] = []

    def start(fault: str = "") -> FakeEnvService:
        service = FakeEnvService(fault)
        services.append(service)
        return service

    yield start
    for service in services:
        service.stop()


def test_every_fault_is_covered() -> None:
    assert set(BROKEN) == set(FAULTS)


def test_the_fake_service_passes_unbroken(fake: Any) -> None:
    report = check_environment(fake().endpoint, steps=20, timeout=5.0)
    assert [r.name for r in report.results] == list(PROPERTIES)
    assert report.passed and all(r.passed for r in report.results), report.format()


@pytest.mark.parametrize("fault", sorted(BROKEN))
def test_a_broken_service_fails_the_property_it_breaks(fault: str, fake: Any) -> None:
    report = check_environment(fake(fault).endpoint, steps=20, timeout=0.5)
    result = report[BROKEN[fault]]
    assert result.failed, report.format()
    assert not report.passed
    # The waits that got no answer are what "deadlines" reports.
    hangs = fault in ("silent_init", "no_heartbeat", "no_last_ack", "hangs_after_end", "silent_on_bad_bytes")
    assert report["deadlines"].failed == hangs, report.format()


@pytest.mark.parametrize("env", ["CartPole-v1", COMPOSITE_ENV_ID, "pettingzoo.classic.connect_four_v3", "pettingzoo.classic.rps_v2"])
def test_our_served_envs_pass(env: str, served: Any) -> None:
    report = check_environment(served(env).endpoint, steps=100)
    assert report.passed, report.format()
    assert all(r.status == "PASS" for r in report.results), report.format()


def test_cli_check_passes_on_a_good_env_and_names_the_failing_property_otherwise(fake: Any, served: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", served("CartPole-v1").endpoint, "--steps", "50"]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS ") == len(PROPERTIES) and "FAIL" not in out

    assert main(["check", fake("wrong_space").endpoint, "--timeout", "2"]) == 1
    out = capsys.readouterr().out
    failing = {line.split()[1]: line for line in out.splitlines() if line.startswith("FAIL")}
    assert "reset" in failing, out
    assert "does not decode in the announced space" in failing["reset"]
    assert "handshake.init" not in failing  # the handshake itself is fine


def test_cli_check_of_nothing_fails_within_its_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "grpc://127.0.0.1:1", "--timeout", "0.5"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  handshake.version" in out and "nothing answers" in out


def test_check_given_spaces_that_differ_from_the_spec_fails(served: Any) -> None:
    from gymnasium import spaces

    report = check_environment(served("CartPole-v1").endpoint, action_space=spaces.Discrete(3), steps=5)
    assert report["spec"].failed and "differs" in report["spec"].detail


def test_the_testcase_reports_each_property(fake: Any) -> None:
    good, broken = fake(), fake("random")

    class Good(EnvironmentCompliance):
        endpoint = good.endpoint
        steps = 20
        timeout = 5.0

    class Broken(EnvironmentCompliance):
        endpoint = broken.endpoint
        steps = 20
        timeout = 5.0

    class Unset(EnvironmentCompliance):
        pass

    loader = unittest.TestLoader()
    for case, failures in ((Good, []), (Broken, ["test_determinism"]), (Unset, [])):
        result = unittest.TestResult()
        loader.loadTestsFromTestCase(case).run(result)
        assert [test.id().rsplit(".", 1)[1] for test, _ in result.failures] == failures, result.failures
        assert not result.errors, result.errors
        if case is Unset:
            assert result.skipped  # no endpoint: skipped, not failed
        else:
            assert result.testsRun == len(PROPERTIES)


def test_check_dials_a_service_with_mtls_and_a_token(pki: Any, served: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    server = served("CartPole-v1", security=pki.server(token="s3cret"))
    report = check_environment(server.endpoint, steps=200, security=pki.client(token="s3cret"))
    assert report.passed and all(r.passed for r in report.results), report.format()
    # Without the token (same certificates), nothing is played: the first call is refused.
    refused = check_environment(server.endpoint, steps=20, timeout=2.0, security=pki.client())
    assert refused["handshake.version"].failed and "UNAUTHENTICATED" in refused["handshake.version"].detail, refused.format()
    assert refused["handshake.init"].failed
    # The CLI takes the same options as the other commands that dial.
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    argv = ["check", server.endpoint, "--steps", "200", "--root-cert", str(pki.ca), "--private-key", str(pki.client_key),
            "--cert-chain", str(pki.client_cert)]
    assert main(argv + ["--token-file", str(token)]) == 0
    assert main(argv) == 1
    capsys.readouterr()
