"""``unlearnbench verify``: does today's code reproduce the committed reference? Re-run a cheap subset and compare.

By default the subset is the original's row and the two fastest methods of the reference (by their recorded
unlearning time) on one forget class (the reference's first). They are recomputed with the current code, the
current profile and the reference's original model — its weights ship with the reference in ``original/``, so no
pretraining is needed (without them the original is trained or taken from the cache, which takes longer) — into
``<output_dir>/verify/<profile>/``, then compared score by score with the reference's records:

- on the reference's hardware class (same device name and CPU threads, same precision and library versions) every
  score must be **bit-identical**;
- elsewhere within :data:`~unlearnbench.orchestration.reference.TOLERANCE` (:func:`~unlearnbench.orchestration.
  reference.scores_close`): rates (shares of samples) within 0.05 absolute, every other number within 5 % relative
  (different CPUs or GPUs round differently, and one sample that flips moves a rate by 1/N).

Times, memory and provenance are not compared. On success the reference is stamped valid for the current code
(``validation.json`` beside its records: code fingerprint, versions, hardware, date, the runs compared); the
leaderboard's reference line (:func:`reference_status`) says whether the reference is validated for your code.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from unlearnbench.foundation.cache import write_json_atomic
from unlearnbench.foundation.config import ConfigError, load_profile
from unlearnbench.foundation.pretraining import RECIPE_VERSION
from unlearnbench.foundation.provenance import code_fingerprint, hardware, hardware_label, library_versions
from unlearnbench.metrics import PROTOCOL_VERSION
from unlearnbench.orchestration.records import now
from unlearnbench.orchestration.reference import (
    ORIGINAL_DIR,
    REFERENCE_ROOT,
    STAMP_FILE,
    TOLERANCE,
    reference_records,
    scores_close,
)
from unlearnbench.orchestration.runner import ORIGINAL, BenchmarkRunner

# Fields that are not scores: identity, provenance, times and memory (compared nowhere).
NOT_SCORES = {"peak_memory_mb", "memory_kind", "started_at", "finished_at", "hostname", "hardware", "device",
              "code_fingerprint", "module_hashes", "run_key", "protocol_key", "grid_path", "method_code",
              "method_source", "schema", "cached", "traceback", "error", "world_size", "per_device_batch_size",
              "profile", "workers", "original_weights", "yardstick_directory", "status", "method_version",
              "protocol_version", "recipe_version", "precision", "eval_seed"}
# Derived from another record (Retrain's, present when the run was written): the rerun of a few rows has no Retrain
# to compare with, and the leaderboard recomputes them from the records either way.
DERIVED = {"retrain_run_key", "relearn_excess", "inversion_excess", "no_forget_data_excess", "null_excess"}


def is_score(name: str) -> bool:
    return not (name in NOT_SCORES or name in DERIVED or name.endswith("_seconds")
                or name.startswith(("hw_", "version_")))


@dataclass
class Comparison:
    """One reference record against its rerun: the fields that differ (empty: reproduced)."""

    label: str
    forget_class: int
    seed: int
    differences: list[str] = field(default_factory=list)
    exact: bool = False  # compared bit for bit (same hardware class) rather than within TOLERANCE

    @property
    def ok(self) -> bool:
        return not self.differences


def compare(ref: dict, new: dict, exact: bool) -> list[str]:
    """The fields of ``ref`` that ``new`` does not reproduce (``name: reference → now``): every score, and every
    setting the record names (resolved options, sampler, sample counts), which must be equal."""
    out = []
    for name, value in sorted(ref.items()):
        if not is_score(name):
            continue
        if name not in new:
            out.append(f"{name}: {value!r} → missing")
        elif not scores_close(name, value, new[name], exact):
            out.append(f"{name}: {value!r} → {new[name]!r}")
    return out


def same_hardware_class(ref: dict, new: dict) -> bool:
    """Bit-identical numbers are expected: same device, threads, precision and library versions."""
    keys = ("hardware", "precision", *(k for k in ref if k.startswith("version_")))
    return all(ref.get(k) == new.get(k) for k in keys)


def choose_subset(records: list[dict], methods: list[str] | None, forget_class: int | None) -> tuple[list[str], int]:
    """(rows to rerun besides the original, forget class): the given ones, else the two fastest methods."""
    classes = sorted({r["forget_class"] for r in records})
    c = classes[0] if forget_class is None else forget_class
    if c not in classes:
        raise ConfigError(f"forget class {c} is not in the reference (its classes: {classes})")
    rows = [r for r in records if r["forget_class"] == c and r["method"] != ORIGINAL and not r.get("cached")]
    if methods is None:
        rows.sort(key=lambda r: float(r.get("total_seconds") or math.inf))
        methods = [r["method"] for r in rows[:2]]
    known = {r["method"] for r in records}
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise ConfigError(f"the reference has no row {', '.join(unknown)} (its rows: {sorted(known)})")
    return methods, c


def verify(profile_name: str, overrides: list[str] | None = None, methods: list[str] | None = None,
           forget_class: int | None = None, reference_dir: Path | None = None
           ) -> tuple[list[Comparison], Path, str]:
    """Rerun the subset, compare, stamp on success; returns (comparisons, the reference folder, this hardware)."""
    reference_dir = Path(reference_dir or REFERENCE_ROOT / profile_name)
    records = reference_records(reference_dir)
    if not records:
        raise ConfigError(f"no reference records under {reference_dir}/runs: nothing to verify")
    methods, c = choose_subset(records, methods, forget_class)
    seed = min(r["seed"] for r in records)
    profile = load_profile(profile_name, [*(overrides or []), f"unlearning.forget_classes=[{c}]",
                                          f"unlearning.seeds=[{seed}]", "unlearning.include_original=true"])
    profile.unlearning.methods = list(methods)
    profile.runtime.output_dir = str(Path(profile.runtime.output_dir) / "verify")
    shipped = reference_dir / ORIGINAL_DIR
    start = time.perf_counter()
    runner = BenchmarkRunner(profile, force=True, pretrained=str(shipped) if shipped.is_dir() else None)
    if not shipped.is_dir():
        print(f"verify: {reference_dir} ships no original model ({ORIGINAL_DIR}/): training or loading it from "
              "the cache first")
    _, specs = runner.validate()
    new = runner.run_keys([s.key for s in specs])
    by_row = {(r["method"], r["forget_class"], r["seed"]): r for r in records}
    comparisons = []
    for rec in new:
        ref = by_row.get((rec["method"], rec["forget_class"], rec["seed"]))
        comp = Comparison(rec["method"], rec["forget_class"], rec["seed"])
        if ref is None:
            comp.differences.append("no reference record")
        elif rec.get("status") != "ok":
            comp.differences.append(f"the rerun failed: {rec.get('error')}")
        else:
            comp.exact = same_hardware_class(ref, rec)
            comp.differences += compare(ref, rec, exact=comp.exact)
        comparisons.append(comp)
    if comparisons and all(c.ok for c in comparisons):
        stamp(reference_dir, new, time.perf_counter() - start, exact=all(c.exact for c in comparisons))
    return comparisons, reference_dir, hardware_label(hardware(runner.device))


def stamp(reference_dir: Path, new: list[dict], seconds: float, exact: bool) -> None:
    """``validation.json``: the reference reproduces under the current code (what, where, when, how)."""
    write_json_atomic(reference_dir / STAMP_FILE, {
        "code_fingerprint": code_fingerprint(), "validated_at": now(), "seconds": round(seconds, 1),
        "mode": "bit-identical" if exact else f"within tolerance {TOLERANCE}",
        "hardware": new[0].get("hardware"), "versions": library_versions(),
        "protocol_version": PROTOCOL_VERSION, "recipe_version": RECIPE_VERSION,
        "method_versions": {r["base_method"]: r["method_version"] for r in new if r["base_method"] != ORIGINAL},
        "runs": [f"{r['method']} f{r['forget_class']} s{r['seed']}" for r in new],
    })


def print_comparisons(comparisons: list[Comparison], reference_dir: Path, where: str) -> bool:
    """The verdict per run, then one line; True when every run reproduced."""
    for comp in comparisons:
        head = f"{comp.label}, forget class {comp.forget_class}, seed {comp.seed}: "
        print(head + ("reproduced" if comp.ok else f"{len(comp.differences)} difference(s)"))
        for line in comp.differences[:12]:
            print(f"    {line}")
    ok = bool(comparisons) and all(c.ok for c in comparisons)
    print(f"verify: {'PASSED' if ok else 'FAILED'} on {where}; "
          + (f"{reference_dir / STAMP_FILE} stamped for code {code_fingerprint()}" if ok else
             "the reference is not validated for this code"))
    return ok
