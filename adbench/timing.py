"""Wall-clock timing of a phase, with the device synchronised so GPU work is counted where it runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(torch.device(device))


class Stopwatch:
    """``with watch.phase("fit"): ...`` accumulates seconds per phase in ``watch.seconds``."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
