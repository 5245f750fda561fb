"""What a number depends on besides its configuration: the code that computed it, the hardware and the libraries.

Every cache key (classifier, original, Retrain) and every run key hashes these together with the configuration, so
a change of code, device, thread count, precision or library version recomputes instead of reusing a number made
under other conditions; and every record carries them, so a reader sees where a figure was measured.

Code fingerprints are sha256 digests of the Python sources of the layers that define the numbers:

- ``model``: ``datasets/`` and ``benchmark/foundation/`` (data, diffusion model and sampler, classifier,
  pretraining, configuration): keys the cached classifier, original and Retrain models;
- ``run``: ``model`` plus ``metrics/``, ``methods/`` and the per-run process isolation (which shapes the time and
  memory figures): keys every run record.

The rest of the orchestration layer (runner, CLI, leaderboard) is not part of either: it moves numbers, it does
not make them.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import platform
from functools import cache
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[2]
CODE_LAYERS: dict[str, tuple[str, ...]] = {
    "model": ("datasets", "benchmark/foundation"),
    "run": ("datasets", "benchmark/foundation", "metrics", "methods", "benchmark/orchestration/isolation.py"),
}


def _hash_files(paths: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(str(path.relative_to(root)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


@cache
def code_fingerprint(layer: Literal["model", "run"] = "run") -> str:
    """sha256 (16 hex digits) of every ``.py`` file of the layer's folders (paths and contents)."""
    files = [p for entry in CODE_LAYERS[layer]
             for p in ([ROOT / entry] if entry.endswith(".py") else (ROOT / entry).rglob("*.py"))
             if "__pycache__" not in p.parts]
    return _hash_files(files, ROOT)


def source_fingerprint(obj: Any) -> str:
    """sha256 of the source file that defines ``obj`` (a plugin method's code); ``"unknown"`` if it has none."""
    try:
        path = Path(inspect.getsourcefile(obj) or "")
    except TypeError:
        return "unknown"
    return _hash_files([path], path.parent) if path.is_file() else "unknown"


def directory_fingerprint(directory: str | Path) -> str:
    """sha256 of every file under ``directory`` (a user's own original model, keyed by content, not by path)."""
    root = Path(directory).expanduser()
    return _hash_files([p for p in root.rglob("*") if p.is_file()], root)


@cache
def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries whose arithmetic is in the numbers."""
    import diffusers
    import lightning
    import timm
    import torch
    import torchmetrics

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "diffusers": diffusers.__version__,
        "torchmetrics": torchmetrics.__version__,
        "timm": timm.__version__,
    }


@cache
def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``'s ``model name`` on Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: Any) -> dict[str, Any]:
    """What the numbers were measured on: device type and name, and the CPU thread count on CPU.

    ``device`` is the ``torch.device`` that runs sampling and training (see
    :func:`unlearnbench.foundation.trainer.pick_device`).
    """
    import torch

    kind = torch.device(device).type
    info: dict[str, Any] = {"device_type": kind, "cpu": cpu_name(), "cpu_count": os.cpu_count(),
                            "platform": platform.platform()}
    if kind == "cuda":
        index = torch.device(device).index or 0
        info["device_name"] = torch.cuda.get_device_name(index)
        info["cuda"] = torch.version.cuda
    else:
        info["device_name"] = cpu_name()
        info["torch_threads"] = torch.get_num_threads()
    return info


def hardware_label(hw: dict[str, Any]) -> str:
    """One line for tables: ``cpu: <model> (2 threads)`` or ``cuda: <GPU name>``."""
    if hw.get("device_type") == "cpu":
        return f"cpu: {hw.get('device_name')} ({hw.get('torch_threads')} threads)"
    return f"{hw.get('device_type')}: {hw.get('device_name')}"


def environment(device: Any, precision: str) -> dict[str, Any]:
    """The part of every key that is not configuration: device type/name, CPU threads, precision, libraries.

    The CPU model is part of it on CPU (times and low-order bits differ between CPUs); the platform string and
    the core count are recorded but not keyed.
    """
    hw = hardware(device)
    keyed = {k: hw[k] for k in ("device_type", "device_name", "torch_threads", "cuda") if k in hw}
    return {**keyed, "precision": precision, **library_versions()}
