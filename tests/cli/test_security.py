"""The TLS and token options of ``cogment-gym serve | orchestrator | run``: a ``serve`` process
with TLS, mTLS and a token, ``run`` against it (and through an ``orchestrator`` process given
the Cogment Orchestrator's own spellings), and one-line usage errors for bad settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest

from cogment_gym.cli import main
from tests.pki import Pki
from tests.test_cli import ORCHESTRATOR_READY, SUMMARY, Process, _assert_one_line_error

SERVING = re.compile(r"serving CartPole-v1 at (grpc://127\.0\.0\.1:\d+)\n")


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.kill()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    return path


def _client_flags(pki: Pki, token_file: Path) -> list[str]:
    return ["--root-cert", str(pki.ca), "--private-key", str(pki.client_key), "--cert-chain", str(pki.client_cert),
            "--token-file", str(token_file)]


@pytest.mark.slow
def test_serve_with_tls_mtls_and_a_token_and_run_against_it(
    pki: Pki, token_file: Path, processes: list[Process], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    process = Process("serve", "CartPole-v1", "--port", "0", "--private-key", str(pki.server_key), "--cert-chain",
                      str(pki.server_cert), "--root-cert", str(pki.ca), "--token-file", str(token_file))
    processes.append(process)
    match = SERVING.fullmatch(process.readline())
    assert match
    endpoint = match[1]
    args = ["run", "CartPole-v1", "--episodes", "2", "--max-steps", "5", "--environment", endpoint]
    assert main(args + _client_flags(pki, token_file)) == 0
    summary = SUMMARY.search(capsys.readouterr().out)
    assert summary and int(summary["episodes"]) == 2
    # No token, or no client certificate: refused, in one line.
    assert main(args + ["--root-cert", str(pki.ca), "--private-key", str(pki.client_key), "--cert-chain", str(pki.client_cert)]) == 2
    _assert_one_line_error(capsys.readouterr().err, "refused the call", "requires a token")
    assert main(args + ["--root-cert", str(pki.ca), "--token-file", str(token_file)]) == 2
    _assert_one_line_error(capsys.readouterr().err, "unreachable")
    assert main(args) == 2  # plaintext
    _assert_one_line_error(capsys.readouterr().err, "unreachable")
    assert process.terminate() == 0


@pytest.mark.slow
def test_an_orchestrator_with_the_cogment_spellings_and_run_through_it(
    pki: Pki, token_file: Path, processes: list[Process], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The token from the environment this time, as a deployment's secret store would set it.
    monkeypatch.setenv("COGMENT_GYM_TOKEN", "s3cret")
    server_tls = ["--private_key", str(pki.server_key), "--trust_chain", str(pki.server_cert), "--root_cert", str(pki.ca)]
    env_process = Process("serve", "CartPole-v1", "--port", "0", *server_tls)
    processes.append(env_process)
    match = SERVING.fullmatch(env_process.readline())
    assert match
    env_endpoint = match[1]
    orchestrator = Process("orchestrator", "--lifecycle-port", "0", *server_tls, "--allow-endpoint", "grpc://127.0.0.1:*")
    processes.append(orchestrator)
    ready = ORCHESTRATOR_READY.fullmatch(orchestrator.readline())
    assert ready
    monkeypatch.delenv("COGMENT_GYM_TOKEN")
    args = ["run", "CartPole-v1", "--episodes", "2", "--max-steps", "5", "--environment", env_endpoint, "--orchestrator", ready[1]]
    assert main(args + _client_flags(pki, token_file)) == 0
    summary = SUMMARY.search(capsys.readouterr().out)
    assert summary and int(summary["episodes"]) == 2
    # The Orchestrator needs the token too (it got it from the environment variable).
    assert main(args + _client_flags(pki, token_file)[:-2]) == 2
    _assert_one_line_error(capsys.readouterr().err, "requires a token")
    assert orchestrator.terminate() == 0 and env_process.terminate() == 0


@pytest.mark.parametrize("argv, fragment", [
    (["serve", "CartPole-v1", "--private-key", "k.pem"], "--private-key is given without --cert-chain"),
    (["serve", "CartPole-v1", "--private-key", "/nonexistent/k.pem", "--cert-chain", "/nonexistent/c.pem"], "cannot read the private key file"),
    (["serve", "CartPole-v1", "--root-cert", "ca.pem"], "would serve plaintext"),
    (["datalog", "--out", "/nonexistent/trials", "--private-key", "k.pem"], "--private-key is given without --cert-chain"),
    (["orchestrator", "--allow-endpoint", "http://x:1"], "--allow-endpoint"),
    (["orchestrator", "--trust_chain", "c.pem"], "--cert-chain is given without --private-key"),
    (["run", "CartPole-v1", "--tls"], "an embedded run has none"),
    (["run", "CartPole-v1", "--environment", "grpc://127.0.0.1:1", "--token-file", "/nonexistent/token"], "cannot read the token file"),
])
def test_bad_security_options_are_one_line_and_exit_2(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    _assert_one_line_error(captured.err, fragment)


def test_an_empty_token_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "token"
    empty.write_text("\n")
    assert main(["serve", "CartPole-v1", "--port", "0", "--token-file", str(empty)]) == 2
    _assert_one_line_error(capsys.readouterr().err, "is empty")
