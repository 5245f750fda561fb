"""The one run record: what made a number, its status and the numbers, one atomic JSON file per run.

Every producer of results (the benchmark runner, continual requests, tuning and the studies, which run through the
runner) writes its records through :class:`RunRecord`:

1. :meth:`RunRecord.start` fills what identifies the run (keys, method, its version and resolved options, budget,
   seed) and where it was made (hardware, library versions and, as provenance, the normalised code fingerprint
   with per-module hashes: printed, never keyed), with ``schema`` = :data:`RECORD_SCHEMA`;
2. :meth:`RunRecord.add_outcome` (or :meth:`RunRecord.add_no_unlearning` for the original's row) and
   :meth:`RunRecord.add_scores` add the numbers;
3. :meth:`RunRecord.capture` runs the work: on success the status is ``ok``, on an error ``failed`` with the error
   and its traceback (the run is shown as failed and retried next time, never hidden); either way the record is
   written with ``total_seconds`` and ``finished_at``, atomically (never half-written).

On disk a record stays one flat JSON object (every reader, the leaderboard included, reads plain keys).
"""

from __future__ import annotations

import json
import platform
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from unlearnbench.foundation.cache import to_jsonable, write_json_atomic
from unlearnbench.foundation.pretraining import RECIPE_VERSION
from unlearnbench.foundation.provenance import code_fingerprint, hardware_label, library_versions, module_hashes
from unlearnbench.metrics import PROTOCOL_VERSION

RECORD_SCHEMA = 2  # 1: records before issue 18 (keys hashed the code); 2: content and version keys


def now() -> str:
    """UTC time in seconds, ISO 8601 (``started_at``/``finished_at``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunRecord:
    """One run's record (see the module docstring); ``fields`` is what is written."""

    path: Path
    fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, path: Path, *, run_key: str, protocol_key: str, profile: str, label: str, method: str,
              seed: int, method_identity: dict[str, Any], method_config: dict[str, Any], unlearning_steps: int,
              batch_size: int, precision: str, hardware: dict[str, Any], **identity: Any) -> RunRecord:
        """A started record: identity, method (name, version, resolved options), budget and provenance."""
        fields = {
            "schema": RECORD_SCHEMA, "run_key": run_key, "protocol_key": protocol_key, "profile": profile,
            "method": label, "base_method": method, "seed": seed,
            "method_version": method_identity.get("version"), "method_source": method_identity.get("source"),
            "protocol_version": PROTOCOL_VERSION, "recipe_version": RECIPE_VERSION,
            "method_config": json.dumps(to_jsonable(method_config), sort_keys=True),
            "unlearning_steps": unlearning_steps, "batch_size": batch_size, "precision": precision,
            **identity,
            "started_at": now(), "hostname": platform.node(), "hardware": hardware_label(hardware),
            **{f"hw_{k}": v for k, v in hardware.items()},
            **{f"version_{k}": v for k, v in library_versions().items()},
            "code_fingerprint": code_fingerprint(), "module_hashes": module_hashes(),
        }
        return cls(Path(path), fields)

    def add_no_unlearning(self) -> None:
        """The original's row: nothing unlearned, no time spent; memory is not measured."""
        self.fields.update(prepare_seconds=0.0, unlearn_seconds=0.0, peak_memory_mb=float("nan"),
                           memory_kind="not measured", cached=True)

    def add_outcome(self, outcome: Any, memory_note: str = "") -> None:
        """Time, memory, steps taken and the method's extra diagnostics of an ``UnlearningOutcome``."""
        self.fields.update(prepare_seconds=outcome.prepare_seconds, unlearn_seconds=outcome.unlearn_seconds,
                           unlearning_steps=outcome.steps, peak_memory_mb=outcome.peak_memory_mb,
                           memory_kind=outcome.memory_kind + memory_note, cached=outcome.cached,
                           world_size=outcome.world_size,
                           **{f"extra_{k}": v for k, v in outcome.extra.items()})

    def add_scores(self, scores: dict[str, Any]) -> None:
        """The evaluator's numbers (and the relearning attack's)."""
        self.fields.update(scores)

    @contextmanager
    def capture(self, what: str) -> Iterator[RunRecord]:
        """Run the body: ``ok`` if it returns, ``failed`` (and a warning naming ``what``) if it raises; then write.
        An interrupt (Ctrl-C, exit) is not a failure: it propagates and nothing is written."""
        try:
            yield self
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:
            self.fail(err)
            warnings.warn(f"{what} failed: {err}", stacklevel=3)
        else:
            self.fields["status"] = "ok"
        self.write()

    def fail(self, err: BaseException) -> None:
        """Failed: the error in one line and its traceback (the child's, for a run in its own process)."""
        child_trace = getattr(err, "child_traceback", "")
        self.fields.update(status="failed", error=str(err) if child_trace else f"{type(err).__name__}: {err}",
                           traceback=child_trace or traceback.format_exc(limit=8))

    def write(self) -> dict[str, Any]:
        """Stamp ``total_seconds`` and ``finished_at`` and write the record atomically; returns its fields."""
        f = self.fields
        f["total_seconds"] = float(f.get("prepare_seconds") or 0) + float(f.get("unlearn_seconds") or 0)
        f["finished_at"] = now()
        write_json_atomic(self.path, f)
        return f


def load_record(path: Path) -> dict:
    """A run record, or ``{}`` if there is none (or it cannot be read: it is then recomputed)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def select_records(runs_dir: str | Path, keys: set[str]) -> tuple[list[dict], int]:
    """The records under ``runs_dir`` whose ``run_key`` is in ``keys``, and the number of the others (records of
    other settings, versions or hardware, which must never be averaged into this plan's table)."""
    chosen, skipped = [], 0
    for path in sorted(Path(runs_dir).glob("*.json")):
        record = load_record(path)
        if record.get("run_key") in keys:
            chosen.append(record)
        else:
            skipped += 1
    return chosen, skipped
