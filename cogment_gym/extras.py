"""The optional packages behind cogment-gym's extras, and the error that names the extra to install.

PettingZoo, Stable-Baselines3, RLlib and Minari are optional: each is installed by an extra
(``pip install 'cogment-gym[pettingzoo]'``; from a clone ``pip install -e '.[pettingzoo]'``).
Code that needs one imports it with :func:`require`, so that a missing package reads as the
extra to install rather than as an unknown environment id or a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from cogment_gym.errors import MissingExtraError

__all__ = ["EXTRAS", "MissingExtraError", "install_hint", "missing_extra", "missing_for_source", "require"]

#: Top-level import name -> (the extra that installs it, what it is called in messages).
EXTRAS: dict[str, tuple[str, str]] = {
    "pettingzoo": ("pettingzoo", "PettingZoo"),
    "stable_baselines3": ("sb3", "Stable-Baselines3"),
    "ray": ("rllib", "Ray RLlib"),
    "minari": ("minari", "Minari"),
}


def install_hint(extra: str) -> str:
    """The command installing ``extra``, e.g. ``pip install 'cogment-gym[sb3]'``."""
    return f"pip install 'cogment-gym[{extra}]'"


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (a module of an optional package) for ``purpose``.

    Raises:
        MissingExtraError: it, or a package it needs, cannot be imported; the message names the
            extra that installs them, e.g. "the PettingZoo facades need PettingZoo, which is not
            installed: pip install 'cogment-gym[pettingzoo]'".

    Example:
        >>> require("gymnasium.spaces", "spaces").__name__  # doctest: +SKIP
        'gymnasium.spaces'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise missing_extra(module.split(".", 1)[0], purpose, err) from err


def missing_for_source(source: str) -> MissingExtraError | None:
    """The error to raise when ``source`` (an env id or a module path) names a module of an
    optional package that cannot be imported; None when it does not, or when the package is
    there and the module itself does not exist (a typo is no missing extra)."""
    top = source.split(".", 1)[0]
    if top not in EXTRAS or "." not in source:
        return None
    try:
        importlib.import_module(top)  # first the package, so that its absence reads as such
        importlib.import_module(source)
    except ImportError as err:
        missing = err.name or ""
        if missing != top and (missing == source or source.startswith(missing + ".")):
            return None  # the package is installed; this module of it is not
        return missing_extra(top, f"{source!r} is a {EXTRAS[top][1]} environment; it", err)
    return None


def missing_extra(package: str, purpose: str, err: ImportError) -> MissingExtraError:
    """The error to raise when importing ``package`` (a key of :data:`EXTRAS`) for ``purpose``
    failed with ``err``: ``raise missing_extra("pettingzoo", "the PettingZoo facades", err) from err``."""
    extra, title = EXTRAS.get(package, (package, package))
    missing = err.name or package
    if not isinstance(err, ModuleNotFoundError):  # installed, but its import broke (versions?)
        what = f"{title}, whose import failed ({err})"
    elif missing.split(".", 1)[0] == package:
        what = f"{title}, which is not installed"
    else:  # the package is there, one of its own dependencies is not
        what = f"{title} with its dependencies ({missing!r} is not installed)"
    return MissingExtraError(f"{purpose} needs {what}: {install_hint(extra)}", extra=extra, name=missing)
