"""Progress of long inner loops (training epochs, ODE chunks, OT batches), shown by whoever listens.

Library code reports with ``with progress("CFM epochs", total) as step: ... step(note)``; nothing is
shown unless a caller installed a listener with ``listening(factory)`` (the CLI installs tqdm bars
when its output is a terminal). Without one the calls cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class Bar(Protocol):
    """What a listener returns for one loop (a ``tqdm`` bar fits)."""

    def update(self, n: int = 1) -> object: ...

    def set_postfix_str(self, text: str) -> object: ...

    def close(self) -> object: ...


#: Makes a bar from (description, total number of steps).
BarFactory = Callable[[str, int], Bar]

_listener: ContextVar[BarFactory | None] = ContextVar("adbench_progress", default=None)


@contextmanager
def listening(factory: BarFactory | None) -> Iterator[None]:
    """Show the inner loops run inside this block with bars made by ``factory`` (None: silence)."""
    token = _listener.set(factory)
    try:
        yield
    finally:
        _listener.reset(token)


@contextmanager
def progress(what: str, total: int) -> Iterator[Callable[[str], None]]:
    """A loop of ``total`` steps; the yielded function advances it by one, with a short note."""
    factory = _listener.get()
    if factory is None:
        yield lambda note="": None
        return
    bar = factory(what, total)

    def step(note: str = "") -> None:
        if note:
            bar.set_postfix_str(note)
        bar.update(1)

    try:
        yield step
    finally:
        bar.close()
