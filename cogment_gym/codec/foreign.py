"""Spaces of types with no codec here: their standard form, and the stand-in a peer rebuilds.

A third-party space that subclasses a Gymnasium space (a ``Text`` subclass, say) travels as that
space: ``singledispatch`` finds the nearest registered base class. One that subclasses
``gymnasium.spaces.Space`` directly, such as MiniGrid's ``MissionSpace``, still says what its
values are through the attributes every Space has: a numpy str ``dtype`` (values are ``str``), or
a numeric ``dtype`` and a ``shape`` (values are arrays). That is its *standard form*, and it is
all that can travel: the space's own ``sample()`` and ``contains()`` are code.

The peer rebuilds a :class:`ForeignSpace`:

- ``contains(x)`` checks the form only (a ``str``; an array of the dtype and shape): it accepts
  every value the environment's space accepts, and more. The environment side checks actions with
  the environment's own space (``space.contains``), so nothing it refuses reaches ``env.step``.
- ``sample()`` returns one of up to 16 values the environment's space drew itself when it was
  described (from a copy seeded with 0: the environment's space and generator are not touched).
  For a MiniGrid ``MissionSpace`` with a fixed mission that is exactly what the environment's
  space samples; for one with placeholders, a mission among those drawn.
- It is not equal to the environment's space (a ``MissionSpace`` compares its ``mission_func``),
  only to a ``ForeignSpace`` of the same description.

Anything else (no dtype, an object dtype, ...) raises :class:`UnsupportedSpaceError`; register a
codec for it with :func:`cogment_gym.codec.register_space`.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Iterator, Sequence

import numpy as np
from gymnasium import spaces

from cogment_gym.codec.tensor import MAX_NDIM
from cogment_gym.errors import UnsupportedSpaceError

__all__ = ["ForeignSpace", "StandardForm", "draw_samples", "standard_form", "type_name"]

logger = logging.getLogger(__name__)

# Samples a description carries at most (their bytes are capped in codec.spaces).
MAX_SAMPLES = 16


class StandardForm:
    """What the values of a space are: ``str`` (``text``), or arrays of ``dtype`` and ``shape``."""

    __slots__ = ("text", "dtype", "shape")

    def __init__(self, text: bool, dtype: np.dtype[Any] | None = None, shape: tuple[int, ...] | None = None) -> None:
        self.text, self.dtype, self.shape = text, dtype, shape


def type_name(space: spaces.Space[Any]) -> str:
    """The module-qualified class name of ``space`` ("minigrid.core.mission.MissionSpace")."""
    cls = type(space)
    return f"{cls.__module__}.{cls.__qualname__}"


def standard_form(space: spaces.Space[Any]) -> StandardForm:
    """The standard form of a space's values, from its ``dtype`` and ``shape`` attributes.

    Raises:
        UnsupportedSpaceError: the attributes do not say (no dtype, an object dtype, no shape for
            a numeric dtype); the message names the space's type.
    """
    if isinstance(space, ForeignSpace):
        return space.form
    dtype = getattr(space, "dtype", None)
    shape = getattr(space, "shape", None)
    if isinstance(dtype, np.dtype):
        if dtype.kind == "U":
            return StandardForm(True)
        if dtype.kind in "biufc" and isinstance(shape, tuple) and len(shape) <= MAX_NDIM and all(
            isinstance(n, (int, np.integer)) and n >= 0 for n in shape
        ):
            return StandardForm(False, dtype, tuple(int(n) for n in shape))
    raise UnsupportedSpaceError(
        f"no codec for space type {type_name(space)} ({space!r}): it is not a Gymnasium space or a subclass of one, "
        f"and its dtype {dtype!r} and shape {shape!r} do not say what its values are (a numpy str dtype, or a "
        "numeric dtype and a shape); register a codec for it with cogment_gym.codec.register_space"
    )


def draw_samples(space: spaces.Space[Any], count: int = MAX_SAMPLES) -> Iterator[Any]:
    """Up to ``count`` values of ``space.sample()``, drawn from a copy seeded with 0 (the space and
    its generator are left alone). Stops early, without raising, if the space cannot be copied,
    seeded or sampled."""
    try:
        sampler = copy.deepcopy(space)
        sampler.seed(0)
    except Exception as err:  # third-party code: anything may go wrong
        logger.debug("cannot draw samples of %s: %r", type_name(space), err)
        return
    for _ in range(count):
        try:
            value = sampler.sample()
        except Exception as err:
            logger.debug("%s.sample() failed: %r", type_name(space), err)
            return
        yield value


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    return bool(a == b)


class ForeignSpace(spaces.Space[Any]):
    """Stand-in for a space whose type has no codec here (built by ``space_from_proto``).

    Args:
        type_name: the module-qualified class name of the environment's space.
        text: True when its values are ``str``; else arrays of ``dtype`` and ``shape``.
        samples: values the environment's space drew; :meth:`sample` returns one of them.

    Example:
        >>> space = ForeignSpace("minigrid.core.mission.MissionSpace", text=True, samples=["go"])
        >>> space.sample(), space.contains("any text"), space.contains(3)
        ('go', True, False)
    """

    def __init__(
        self,
        type_name: str,
        *,
        text: bool,
        dtype: Any = None,
        shape: Sequence[int] | None = None,
        samples: Sequence[Any] = (),
        seed: int | np.random.Generator | None = None,
    ) -> None:
        self.type_name = type_name
        if text:
            self.form = StandardForm(True)
            super().__init__(dtype=str, seed=seed)
        else:
            if dtype is None or shape is None:
                raise ValueError("a ForeignSpace of array values needs a dtype and a shape")
            self.form = StandardForm(False, np.dtype(dtype), tuple(int(n) for n in shape))
            super().__init__(shape=self.form.shape, dtype=self.form.dtype, seed=seed)
        self.samples = tuple(samples)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def sample(self, mask: Any = None, probability: Any = None) -> Any:
        """One of the environment space's own samples, chosen with this space's generator.

        Raises:
            NotImplementedError: no samples came with the description (the environment's space
                could not sample), or a mask / probability was given (its meaning is the
                environment space's code).
        """
        if mask is not None or probability is not None:
            raise NotImplementedError(f"{self!r}: sampling with a mask or probability is {self.type_name}'s own code, which does not travel")
        if not self.samples:
            raise NotImplementedError(f"{self!r}: {self.type_name} could not be sampled where it was described")
        value = self.samples[int(self.np_random.integers(len(self.samples)))]
        return np.array(value) if isinstance(value, np.ndarray) else value  # a writable copy

    def contains(self, x: Any) -> bool:
        """Whether ``x`` has the form of the space's values (its own test is not known here)."""
        if self.form.text:
            return isinstance(x, str)
        dtype, shape = self.form.dtype, self.form.shape
        if dtype is None:  # the constructor gives every array form a dtype
            raise UnsupportedSpaceError(f"{self!r}: an array form without a dtype")
        if isinstance(x, (np.ndarray, np.generic)):
            return bool(x.shape == shape and x.dtype.kind in "biufc" and np.can_cast(x.dtype, dtype))
        try:
            array = np.asarray(x, dtype=dtype)
        except (ValueError, TypeError, OverflowError):
            return False
        return array.shape == shape

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ForeignSpace) or other.type_name != self.type_name:
            return False
        a, b = self.form, other.form
        if (a.text, a.dtype, a.shape) != (b.text, b.dtype, b.shape) or len(self.samples) != len(other.samples):
            return False
        return all(_same(x, y) for x, y in zip(self.samples, other.samples))

    def __repr__(self) -> str:
        if self.form.text:
            return f"ForeignSpace({self.type_name!r}, str)"
        return f"ForeignSpace({self.type_name!r}, {self.form.dtype}, {self.form.shape})"
