"""``cogment-gym check``: the compliance check of a served environment (see
:mod:`cogment_gym.testing.compliance`), one line per property."""

from __future__ import annotations

import argparse
import ast
from typing import Any

import gymnasium as gym
import numpy as np

from cogment_gym.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_security_arguments,
    non_negative_int,
    positive_float,
    positive_int,
    security_from_args,
)

__all__ = ["add_parser", "main", "space"]

# What a space argument may name: the Gymnasium space classes, numpy's dtypes and inf.
_SPACE_CLASSES: dict[str, Any] = {
    name: getattr(gym.spaces, name) for name in gym.spaces.__all__
    if isinstance(getattr(gym.spaces, name), type) and issubclass(getattr(gym.spaces, name), gym.spaces.Space)
}
_SPACE_NAMES: dict[str, Any] = {name: getattr(np, name) for name in (
    "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64", "inf")}


def _evaluate(node: ast.AST) -> Any:
    """A literal, a tuple / list of them, a space class or dtype by name, or a call of a space
    class: nothing else of Python is evaluated (no attributes, no other names)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)) or (isinstance(node, ast.Constant) and node.value is None):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _evaluate(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_evaluate(item) for item in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        return {_evaluate(k): _evaluate(v) for k, v in zip(node.keys, node.values) if k is not None}
    if isinstance(node, ast.Name) and node.id in _SPACE_NAMES:
        return _SPACE_NAMES[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _SPACE_CLASSES:
        return _SPACE_CLASSES[node.func.id](*[_evaluate(a) for a in node.args], **{k.arg: _evaluate(k.value) for k in node.keywords if k.arg})
    raise ValueError(f"{ast.unparse(node)!r} is not allowed here (space classes, numpy dtypes and literals only)")


def space(text: str) -> gym.Space[Any]:
    """A Gymnasium space written as Python, e.g. ``Discrete(2)`` or ``Box(-1, 1, (3,), float32)``:
    calls of space classes, numpy dtype names and literals only (nothing else is evaluated)."""
    try:
        value = _evaluate(ast.parse(text, mode="eval").body)
    except Exception as err:
        raise argparse.ArgumentTypeError(f"not a Gymnasium space: {text!r} ({type(err).__name__}: {err})") from None
    if not isinstance(value, gym.spaces.Space):
        raise argparse.ArgumentTypeError(f"not a Gymnasium space: {text!r} is a {type(value).__name__}")
    return value


def add_parser(commands: Any) -> None:
    check = commands.add_parser(
        "check", help="check that a served environment follows the Cogment protocol and Gymnasium's semantics",
        description="Play the Orchestrator's side of EnvironmentSP.RunTrial against ENDPOINT and print PASS / FAIL / "
        "SKIP per property (handshake, spec, reset/step semantics, errors, deadlines). Exit code 0 when no property "
        "fails, 1 otherwise. Works with any Cogment environment service whose payloads are cogment_gym.v1 messages "
        "(cogment_gym.serve, or the official SDK with --observation-space / --action-space).",
    )
    check.add_argument("endpoint", metavar="ENDPOINT", help="grpc://host:port or unix:///path of the environment service")
    check.add_argument("--implementation", default="", help="implementation to check (default: the service's first)")
    check.add_argument("--observation-space", type=space, default=None, metavar="SPACE",
                       help="the observation space, for a service without EnvSpecSP, e.g. 'Box(-1, 1, (4,), float32)'")
    check.add_argument("--action-space", type=space, default=None, metavar="SPACE",
                       help="the action space, for a service without EnvSpecSP, e.g. 'Discrete(2)'")
    check.add_argument("--seed", type=non_negative_int, default=0, help="seed of every trial and of the random actions (default: %(default)s)")
    check.add_argument("--steps", type=positive_int, default=200, help="ticks to play at most per trial (default: %(default)s)")
    check.add_argument("--timeout", type=positive_float, default=10.0, metavar="SECONDS",
                       help="seconds every answer may take (default: %(default)s)")
    add_security_arguments(check, serves=False, dials=True)
    check.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    from cogment_gym.protocol import parse_endpoint
    from cogment_gym.testing.compliance import check_environment

    try:
        parse_endpoint(args.endpoint)
    except ValueError as err:
        raise UsageError(str(err)) from None
    security = security_from_args(args)
    report = check_environment(
        args.endpoint, implementation=args.implementation, observation_space=args.observation_space,
        action_space=args.action_space, seed=args.seed, steps=args.steps, timeout=args.timeout, security=security,
    )
    implementation = f" (implementation {report.implementation!r})" if report.implementation else ""
    print(f"cogment-gym check {args.endpoint}{implementation}", flush=True)
    print(report.format(), flush=True)
    return EXIT_OK if report.passed else EXIT_FAILED
