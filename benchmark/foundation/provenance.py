"""What identifies a number: content and explicit versions for the keys; the code, hardware and libraries as a record.

**Keys** (what decides that a number is reused or recomputed) are made of content and versions, never of the
bytes of the suite's code: the configuration, the environment (:func:`environment`: device, CPU threads,
precision, library versions), the yardstick's weight hash, the original's identity, ``PROTOCOL_VERSION``
(:mod:`unlearnbench.metrics`), each method's own ``version`` and ``RECIPE_VERSION``
(:mod:`unlearnbench.foundation.pretraining`). A docstring, comment, refactor, loader, lock or CLI edit therefore
changes no key; a change of numbers fails a pinned-number test (``tests/test_pinned_numbers.py``) until the version
of what changed is bumped. Plugins, which have no such discipline, are keyed by :func:`normalised_source_hash` of
their file (docstrings, comments and formatting do not count).

**Provenance** (what a record carries so a reader sees what made it, printed and never keyed):
:func:`code_fingerprint` and :func:`module_hashes`, both over the normalised source of the suite's modules, and
:func:`hardware`.

One file hasher (:func:`file_hash`, :func:`files_hash`) serves every content hash of files in the suite.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import os
import platform
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # benchmark/: the package ``unlearnbench``
ROOT = PACKAGE_ROOT.parent  # the checkout (the committed results live under ROOT / "results")
# The folders of the installed package (pyproject.toml's package-dir): import name → folder.
PACKAGE_FOLDERS: dict[str, Path] = {"unlearnbench": PACKAGE_ROOT, "unlearnbench.datasets": ROOT / "datasets",
                                    "unlearnbench.metrics": ROOT / "metrics", "unlearnbench.methods": ROOT / "methods"}


def checkout_path(path: str | Path) -> str:
    """``path`` relative to the checkout when it lies inside it (what a page that may be committed shows: no
    machine's absolute path), else as given."""
    try:
        return Path(path).resolve().relative_to(ROOT.resolve()).as_posix()
    except ValueError:
        return str(path)


def file_hash(path: str | Path, length: int = 16) -> str:
    """sha256 of one file's bytes (``length`` hex digits; 64 for the whole digest)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:length]


def files_hash(paths: Iterable[Path], root: Path, length: int = 16) -> str:
    """sha256 over files: each one's path relative to ``root`` and its :func:`file_hash` (order-independent)."""
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(f"{path.relative_to(root).as_posix()}\0{file_hash(path, 64)}\0".encode())
    return h.hexdigest()[:length]


def directory_fingerprint(directory: str | Path) -> str:
    """sha256 of every file under ``directory`` (a user's own original model, keyed by content, not by path)."""
    root = Path(directory).expanduser()
    return files_hash([p for p in root.rglob("*") if p.is_file()], root)


def tensors_hash(named: Iterable[tuple[str, Any]], length: int = 16) -> str:
    """sha256 of named tensors (names, dtypes, shapes and bytes), e.g. ``module.state_dict().items()``."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(named, key=lambda item: item[0]):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(tensor.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:length]


def normalised_source(source: str) -> str:
    """Python source with docstrings, comments and formatting removed (the AST's dump): only what runs counts."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _normalised_hash(path: Path) -> str:
    try:
        text = normalised_source(path.read_text())
    except SyntaxError:  # not Python we can parse: its bytes
        return file_hash(path)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def normalised_source_hash(obj: Any) -> str:
    """:func:`normalised_source` hash of the file that defines ``obj`` (a plugin method); ``"unknown"`` if none."""
    try:
        path = Path(inspect.getsourcefile(obj) or "")
    except TypeError:
        return "unknown"
    return _normalised_hash(path) if path.is_file() else "unknown"


def _suite_modules() -> dict[str, Path]:
    """Every tracked-looking module of the package (``__pycache__`` and hidden files left out), by import name."""
    modules = {}
    for package, folder in PACKAGE_FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder)
            if "__pycache__" in rel.parts or any(part.startswith(".") for part in rel.parts):
                continue
            name = ".".join([package, *rel.with_suffix("").parts]).removesuffix(".__init__")
            modules[name] = path
    return modules


@cache
def module_hashes() -> dict[str, str]:
    """Per-module hash of the normalised source of the suite (provenance: recorded and printed, never keyed)."""
    return {name: _normalised_hash(path) for name, path in _suite_modules().items()}


@cache
def code_fingerprint() -> str:
    """One hash of :func:`module_hashes` (provenance: recorded and printed, never keyed)."""
    blob = "".join(f"{name}\0{digest}\0" for name, digest in sorted(module_hashes().items()))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


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


def environment(device: Any, precision: str, threads: int | None = None) -> dict[str, Any]:
    """The part of every key that is not configuration: device type/name, CPU threads, precision, libraries.

    The CPU model is part of it on CPU (times and low-order bits differ between CPUs); the platform string and
    the core count are recorded but not keyed. ``threads``: the CPU thread count of a computation that runs on
    other threads than this process does now (the original's pretraining beside runs on fewer); default: now.
    """
    hw = hardware(device)
    if threads is not None and "torch_threads" in hw:
        hw["torch_threads"] = threads
    keyed = {k: hw[k] for k in ("device_type", "device_name", "torch_threads", "cuda") if k in hw}
    return {**keyed, "precision": precision, **library_versions()}
