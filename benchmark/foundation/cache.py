"""Content-addressed cache of trained artefacts (original model, retrain, classifier, FID statistics), and the
suite's one way of writing a file: atomically.

An artefact lives in ``<cache_dir>/<kind>/<key>/`` where ``key`` hashes everything that defines it (configuration,
data content, explicit versions, hardware and library versions: :mod:`unlearnbench.foundation.provenance`; never
the code's bytes). It is written into a
temporary sibling directory and renamed into place only when complete, so a crash never leaves a half-written
artefact that a later run would trust. Files (records, tables, figures) are written through :func:`atomic_path`.

Several workers (processes, GPUs, machines) may share one cache folder. Every "look in the cache → build → save"
of a shared artefact goes through :func:`load_or_build`: a miss takes the entry's inter-process lock
(``<entry>.lock``, :func:`cache_lock`) and looks again before building, so a second worker waits for the first one's
artefact and loads it instead of building it again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

# Bump when a change to the code alters what a cached artefact would contain.
CACHE_FORMAT_VERSION = 3
LOCK_POLL_SECONDS = 0.5  # how often a waiting worker tries the lock again (cheap on shared filesystems)

T = TypeVar("T")


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, paths and tuples as plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def config_hash(*parts: Any, length: int = 16) -> str:
    """A stable hash of JSON-able parts (dataclasses included)."""
    blob = json.dumps([CACHE_FORMAT_VERSION, *map(to_jsonable, parts)], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; it replaces ``path`` on success and is removed on error.

    The temporary name keeps the suffix (matplotlib and pandas choose the format from it) and starts with a dot.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (never half-written)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to ``path`` atomically (never half-written)."""
    write_text_atomic(path, json.dumps(to_jsonable(data), indent=2, sort_keys=True))


@contextmanager
def atomic_directory(final: str | Path) -> Iterator[Path]:
    """Yield a temporary directory; on success it is renamed to ``final``, on error it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.partial")
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():  # another process finished first: keep its copy
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def artefact_dir(cache_dir: str | Path, kind: str, key: str) -> Path:
    return Path(cache_dir).expanduser() / kind / key


@contextmanager
def cache_lock(entry: str | Path) -> Iterator[None]:
    """Hold the inter-process lock of ``entry`` (a cache entry, a record, any shared file): ``<entry>.lock``.

    Other processes and threads wait (with a line saying so); the holder's own thread may take it again (one lock
    instance per path: Retrain holds its entry's lock around
    :func:`unlearnbench.foundation.pretraining.train_or_load_diffusion`, which takes it too). The lock is the operating
    system's (``flock``), released when its holder exits, even on a crash; the cache folder must be on a filesystem
    that supports it (local disks, NFSv4, Lustre mounted with ``flock``).
    """
    lock_path = Path(f"{Path(entry).expanduser()}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path), is_singleton=True)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"waiting for {entry}: another worker holds it", file=sys.stderr, flush=True)
        lock.acquire(poll_interval=LOCK_POLL_SECONDS)
    try:
        yield
    finally:
        lock.release()


def load_or_build(entry: str | Path, load: Callable[[], T | None], build: Callable[[], T]) -> T:
    """``load()`` the artefact of ``entry`` if it exists, else build it once among all workers.

    ``load`` returns ``None`` on a miss; ``build`` makes the artefact, saves it atomically and returns it. On a miss
    the entry's lock (:func:`cache_lock`) is taken and ``load`` is tried again before ``build``: a worker that found
    another one building waits for it, then loads its artefact.
    """
    found = load()
    if found is not None:
        return found
    with cache_lock(entry):
        found = load()
        return found if found is not None else build()
