"""Fill frozen, slotted objects with plain attribute stores (the parser's hot path).

A frozen dataclass refuses attribute stores, so code that builds one from
values it has already validated (the parser, the accessors) used to call
``object.__setattr__`` per field: about 80 ns each on the bench machine, half
the cost of building a parsed To. A plain class with the same bases and the
same ``__slots__`` has the same memory layout, and CPython then allows
``instance.__class__ = Frozen`` (the check is "object layout differs"): fill
an instance of the plain class with ordinary stores, then make it a ``Frozen``.
The result is an ordinary instance of the frozen class (same type, equality,
hash and repr); the layout check runs on every assignment, so a class whose
layout changes fails loudly at the first build, never silently.
"""

from __future__ import annotations

from typing import Any

__all__ = ["builder_for"]


def builder_for(cls: type) -> type[Any]:
    """A mutable class with ``cls``'s bases and slots, for filling then re-classing.

    Args:
        cls: a slotted class (``@dataclass(slots=True)``) without ``__dict__``.

    Returns:
        The builder class: ``b = Builder(); b.field = ...; b.__class__ = cls``.

    Raises:
        TypeError: ``cls`` has no ``__slots__`` (so the layouts could not match).
    """
    slots = cls.__dict__.get("__slots__")
    if slots is None:
        raise TypeError(f"{cls.__name__} has no __slots__: nothing to build")
    builder: type[Any] = type(f"_{cls.__name__}Builder", cls.__bases__, {"__slots__": slots})
    probe = builder()
    probe.__class__ = cls  # the layout check, once at import
    return builder
