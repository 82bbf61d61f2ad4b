"""What a newcomer tries first: ``--version``, the command alone, ``-v``/``-q``, and the
examples' service actors on port 0."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import grpc
import pytest

import cogment_gym
from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym.cli import COMMANDS, build_parser, main
from tests.cli.helpers import ROOT, Service, run_cli

# A Gymnasium env whose step raises, registered when its module is imported: `module:Id`.
RAISING_MODULE = '''
import gymnasium as gym
from cogment_gym.testing.envs import RaisingEnv


def make(render_mode=None):
    return RaisingEnv(raise_on_step=2)


gym.register(id="Raising-v0", entry_point=make)
'''


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert re.fullmatch(rf"cogment-gym {re.escape(cogment_gym.__version__)} \(Cogment API [\d.]+, Python [\d.]+\)\n", result.stdout)


def test_the_command_alone_prints_the_help_on_stderr_and_exits_2() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: cogment-gym")
    commands = argparse.ArgumentParser().add_subparsers()
    for command in COMMANDS:
        command.add_parser(commands)
    for name in commands.choices:
        assert re.search(rf"^\s+{re.escape(name)}\b", result.stderr, re.M), name  # every command listed, as --help does
    assert result.stderr == build_parser().format_help()


def test_help_is_on_stdout_with_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == build_parser().format_help()
    assert "--version" in captured.out and "-q, --quiet" in captured.out


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags, warning, info, debug",
    [
        ([], True, False, False),
        (["-v"], True, True, False),
        (["-vv"], True, True, True),
        (["--", "-q"], False, False, False),  # after the command
    ],
    ids=["default", "verbose", "debug", "quiet-after"],
)
def test_verbosity_flags_change_logging(tmp_path: Path, flags: list[str], warning: bool, info: bool, debug: bool) -> None:
    (tmp_path / "raising_env.py").write_text(RAISING_MODULE)
    before, after = (flags, []) if "--" not in flags else ([], flags[1:])
    result = run_cli(*before, "run", "raising_env:Raising-v0", "--episodes", "1", *after, path=[tmp_path])
    assert result.returncode == 1  # the trial fails: the env raises at its second step
    errors = [line for line in result.stderr.splitlines() if line.startswith("cogment-gym: error:")]
    assert len(errors) == 1 and "injected fault (in step 2)" in errors[0], result.stderr
    # The env side of the trial warns that it ends on failure; the Orchestrator says so at INFO.
    assert ("ends on failure" in result.stderr) is warning, result.stderr
    assert (" INFO cogment_gym.orchestrator.trial: " in result.stderr) is info, result.stderr
    assert (" DEBUG cogment_gym." in result.stderr) is debug, result.stderr


def test_verbose_and_quiet_together_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-v", "run", "CartPole-v1", "-q"]) == 2
    assert "-v and -q" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("script, announced", [("random_actor.py", "serving a random policy at"), ("human_actor.py", "a human plays at")])
def test_example_actors_print_the_port_they_bound(script: str, announced: str) -> None:
    process = Service([sys.executable, str(ROOT / "examples" / script), "--port", "0"])
    try:
        line = process.readline()
        match = re.fullmatch(rf"{announced} (grpc://127\.0\.0\.1:(\d+)) \(Ctrl-C stops\)", line)
        assert match, line
        assert int(match[2]) > 0
        with grpc.insecure_channel(f"127.0.0.1:{match[2]}") as channel:  # a service actor answers there
            version = channel.unary_unary("/cogmentAPI.ServiceActorSP/Version", request_serializer=common_pb2.VersionRequest.SerializeToString,
                                          response_deserializer=common_pb2.VersionInfo.FromString)
            assert any(v.name == "cogment_gym" for v in version(common_pb2.VersionRequest(), timeout=10).versions)
        if script == "random_actor.py":  # and plays
            result = run_cli("run", "pettingzoo.classic.connect_four_v3", "--episodes", "2", "--service-actor", f"player_1={match[1]}")
            assert result.returncode == 0, result.stderr
        assert process.terminate() == 0
    finally:
        process.kill()


def test_readme_says_how_the_command_alone_and_the_verbosity_flags_behave() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "`cogment-gym --version`" in readme
    assert "`cogment-gym` alone prints" in readme and "exit code 2" in readme
    assert "`-v`" in readme and "`-q`" in readme

