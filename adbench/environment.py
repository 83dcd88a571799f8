"""Facts about the machine and software, recorded with every result."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from adbench import __version__
from adbench.errors import ConfigError


def resolve_device(requested: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without a GPU is an error."""
    if requested == "cpu":
        return "cpu"
    if requested != "auto" and not requested.startswith("cuda"):
        raise ConfigError(f"unknown device {requested!r}; use cpu, cuda, cuda:N or auto")
    try:
        import torch
    except ImportError:
        if requested == "auto":
            return "cpu"
        raise ConfigError("--device cuda needs torch: pip install 'adbench[torch]'") from None
    if torch.cuda.is_available():
        if requested.startswith("cuda:") and int(requested.split(":")[1]) >= torch.cuda.device_count():
            raise ConfigError(f"--device {requested}: only {torch.cuda.device_count()} GPU(s) visible")
        return "cuda" if requested == "auto" else requested
    if requested == "auto":
        return "cpu"
    raise ConfigError(
        f"--device {requested}: no CUDA GPU is visible to torch {torch.__version__} "
        "(use --device cpu, or install a CUDA build of torch)"
    )


@functools.cache
def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(torch.device(device))} (CUDA {torch.version.cuda})"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {model}, {os.cpu_count()} cores"


@functools.cache
def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"adbench": __version__, "python": platform.python_version()}
    for package in ("numpy", "scipy", "scikit-learn", "torch", "zuko", "pot", "h5py"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


@functools.cache
def git_revision() -> str | None:
    """The checkout's commit (with ``-dirty`` when it has local changes), or None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


def environment_summary(device: str) -> dict[str, Any]:
    return {"device": device_name(device), "versions": versions(), "git_revision": git_revision()}
