"""Events, dataset loaders, the synthetic generator, signal injection and splits."""

from adbench.data.events import Events

__all__ = ["Events"]
