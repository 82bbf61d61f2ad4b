"""Every error class the package raises on purpose lives in ``cogment_gym.errors`` and derives
from ``CogmentGymError``; the facades' errors are Gymnasium's too."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import gymnasium as gym

import cogment_gym
from cogment_gym import errors


def _package_modules() -> list[object]:
    modules = []
    for info in pkgutil.walk_packages(cogment_gym.__path__, "cogment_gym."):
        if info.name.startswith("cogment_gym._proto") or info.name.endswith("__main__"):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError:  # an optional extra (Ray, SB3) is not installed
            continue
    return modules


def test_every_error_class_is_defined_in_errors() -> None:
    elsewhere = sorted(
        f"{module.__name__}.{name}"  # type: ignore[attr-defined]
        for module in _package_modules()
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, errors.CogmentGymError) and obj.__module__ != "cogment_gym.errors"
    )
    assert elsewhere == []


def test_errors_all_lists_every_class() -> None:
    defined = {name for name, obj in vars(errors).items() if inspect.isclass(obj) and issubclass(obj, errors.CogmentGymError)}
    assert defined == set(errors.__all__)


def test_builtin_and_gymnasium_bases() -> None:
    assert issubclass(errors.ResetNeededError, gym.error.ResetNeeded)
    assert issubclass(errors.AlreadyPendingCallError, gym.error.AlreadyPendingCallError)
    assert issubclass(errors.NoAsyncCallError, gym.error.NoAsyncCallError)
    assert issubclass(errors.ClosedEnvironmentError, gym.error.ClosedEnvironmentError)
    assert issubclass(errors.EndpointError, ValueError)
    assert issubclass(errors.UnknownImplementationError, LookupError)
    assert issubclass(errors.WorkerStartError, RuntimeError)
    pending = errors.AlreadyPendingCallError("step_async() while ...")
    assert pending.name == "step"  # gymnasium's attribute, defaulted
