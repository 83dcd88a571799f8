"""Background-template methods: one module per family, found by name through the registry."""

from adbench.methods.base import BackgroundModel, Truth
from adbench.methods.registry import get_method_class, method_names, register

__all__ = ["BackgroundModel", "Truth", "get_method_class", "method_names", "register"]
