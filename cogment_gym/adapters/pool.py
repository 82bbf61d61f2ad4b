"""What every hosted implementation (Gymnasium or PettingZoo) shares: a pool of env instances,
how its factory is called, and the metadata its spec carries."""

from __future__ import annotations

import inspect
import logging
import threading
from collections import OrderedDict
from typing import Any, Callable, Mapping

from cogment_gym.codec import encode_object
from cogment_gym.errors import UnsupportedValueError

__all__ = ["MAX_KEYED_INSTANCES", "EnvPool", "factory_accepts_render_mode", "metadata_message"]

logger = logging.getLogger(__name__)


def metadata_message(metadata: Mapping[str, Any]) -> Any:
    """The encodable part of an env's metadata dict (others are left out, with a debug log)."""
    kept = {}
    for key, value in metadata.items():
        try:
            encode_object(value, f"metadata[{key!r}]")
        except UnsupportedValueError as err:
            logger.debug("metadata entry left out of the spec: %s", err)
            continue
        kept[key] = value
    return encode_object(kept, "metadata")


# Idle instances kept for their key (EnvConfig.instance_key) at most; beyond, the longest idle
# goes back to the shared pool (a client that vanished does not hold instances forever).
MAX_KEYED_INSTANCES = 1024


class EnvPool:
    """Idle env instances of one implementation, per render mode (every trial starts with a reset).

    An instance released with a key (``EnvConfig.instance_key``: a client's name for one of its
    sub-environments) is kept for that key: the next trial with the same key gets it back, so an
    unseeded ``reset`` continues its random generator as a local env's would.

    Subclasses set ``name``, ``render_modes`` and ``_make(render_mode)``.
    """

    name: str
    render_modes: list[str]

    def __init__(self) -> None:
        self._pool: dict[str | None, list[Any]] = {}
        self._keyed: OrderedDict[tuple[str | None, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    def _make(self, render_mode: str | None) -> Any:
        raise NotImplementedError

    def acquire(self, render_mode: str | None, key: str = "") -> Any:
        """An env instance for one trial: the one kept for ``key``, else an idle one, else new."""
        if render_mode is not None and render_mode not in self.render_modes:
            raise ValueError(
                f"implementation {self.name!r} does not support render_mode={render_mode!r}; "
                f"it supports {self.render_modes}"
            )
        with self._lock:
            if key:
                kept = self._keyed.pop((render_mode, key), None)
                if kept is not None:
                    return kept
            idle = self._pool.get(render_mode)
            if idle:
                return idle.pop()
        return self._make(render_mode)

    def release(self, env: Any, render_mode: str | None, key: str = "") -> None:
        """Give an instance back after a trial (kept for ``key`` when given); closed instead if
        the host is closing."""
        with self._lock:
            if not self._closed:
                if not key:
                    self._pool.setdefault(render_mode, []).append(env)
                    return
                displaced = self._keyed.pop((render_mode, key), None)
                self._keyed[(render_mode, key)] = env
                if displaced is not None:
                    self._pool.setdefault(render_mode, []).append(displaced)
                while len(self._keyed) > MAX_KEYED_INSTANCES:
                    (mode, _), oldest = self._keyed.popitem(last=False)
                    self._pool.setdefault(mode, []).append(oldest)
                return
        env.close()

    def give_back(self, env: Any, render_mode: str | None, key: str, *, failed: bool) -> None:
        """After a trial: :meth:`release` the instance, or :meth:`discard` it if the trial failed."""
        if failed:
            self.discard(env)
        else:
            self.release(env, render_mode, key)

    def discard(self, env: Any) -> None:
        """Close an instance that failed; it is not reused."""
        try:
            env.close()
        except Exception:  # closing a broken env must not hide the original failure
            logger.exception("closing a failed env of %r", self.name)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            envs = [env for idle in self._pool.values() for env in idle] + list(self._keyed.values())
            self._pool.clear()
            self._keyed.clear()
        for env in envs:
            self.discard(env)


def factory_accepts_render_mode(factory: Callable[..., Any]) -> bool:
    """Whether ``factory(render_mode=...)`` is a valid call (True when it cannot be told)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return True
    return "render_mode" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
