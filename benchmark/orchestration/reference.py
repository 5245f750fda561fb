"""The committed reference (``results/reference/<profile>/``): its records, the original it ships, its stamp, and
the one line that says what made it and whether it is valid for the current code.

Runs never read or write it; ``unlearnbench publish`` replaces it, ``unlearnbench verify``
(:mod:`unlearnbench.orchestration.verify`) stamps it (``validation.json``) when today's code reproduces it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from unlearnbench.foundation.pretraining import RECIPE_VERSION
from unlearnbench.foundation.provenance import ROOT, code_fingerprint, module_hashes
from unlearnbench.methods import MethodError, get_method
from unlearnbench.metrics import PROTOCOL_VERSION
from unlearnbench.orchestration.records import load_record

REFERENCE_ROOT = ROOT / "results" / "reference"  # committed reference results: read-only to the runner
STAMP_FILE = "validation.json"
ORIGINAL_DIR = "original"  # the reference's original model (ConditionalDiffusion.save), shipped for verify
ORIGINAL = "original"  # the original's row label
RATE_FIELDS_SUFFIX = ("_rate", "_accuracy", "ua", "_share", "_mean", "_max", "_prob")
TOLERANCE = {"rate_abs": 0.05, "rel": 0.05}  # reproduced elsewhere than on the reference's hardware class


def scores_close(name: str, ref: Any, new: Any, exact: bool) -> bool:
    """Whether score ``name`` is reproduced: bit for bit with ``exact``, else within :data:`TOLERANCE` (rates
    absolute, everything else relative); lists and dicts element by element, settings and labels equal."""
    if isinstance(ref, list) and isinstance(new, list):
        return len(ref) == len(new) and all(scores_close(name, a, b, exact) for a, b in zip(ref, new, strict=True))
    if isinstance(ref, dict) and isinstance(new, dict):
        return ref.keys() == new.keys() and all(scores_close(name, ref[k], new[k], exact) for k in ref)
    numbers = (int, float)
    if isinstance(ref, bool) or not (isinstance(ref, numbers) and isinstance(new, numbers)):
        return ref == new  # names, settings, labels: equal everywhere
    a, b = float(ref), float(new)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if exact:
        return a == b
    if name.endswith(RATE_FIELDS_SUFFIX) or "recognised" in name:
        return abs(a - b) <= TOLERANCE["rate_abs"]
    return abs(a - b) <= TOLERANCE["rel"] * max(abs(a), abs(b), 1e-12)


def reference_records(reference_dir: Path) -> list[dict]:
    """The reference's records with status ``ok``."""
    records = [load_record(p) for p in sorted((reference_dir / "runs").glob("*.json"))]
    return [r for r in records if r.get("status") == "ok"]


def _version(method: str) -> int | None:
    try:
        return get_method(method).version
    except MethodError:  # a plugin that is not installed here
        return None


def versions_status(records: list[dict]) -> str:
    """``equal`` when every record's protocol, recipe and method versions are today's, else what differs."""
    if any(r.get("schema", 1) < 2 for r in records):
        return "unknown (made before versioned keys)"
    differ = set()
    for r in records:
        if r.get("protocol_version") != PROTOCOL_VERSION:
            differ.add("protocol")
        if r.get("recipe_version") != RECIPE_VERSION:
            differ.add("recipe")
        if r.get("base_method") not in (None, ORIGINAL) and r.get("method_version") != _version(r["base_method"]):
            differ.add(r["base_method"])
    return "equal" if not differ else "differ: " + ", ".join(sorted(differ))


def modules_changed(records: list[dict]) -> list[str]:
    """The suite's modules whose normalised source differs from what made the records (from their
    ``module_hashes``; empty for records made before they were recorded)."""
    now = module_hashes()
    made = {}
    for r in records:
        made.update(r.get("module_hashes") or {})
    return sorted(name for name in set(made) | (set(now) if made else set()) if made.get(name) != now.get(name))


def reference_status(reference_dir: str | Path) -> str:
    """One line for the leaderboard: what made the reference, whether its versions are today's, whether it was
    validated for the current code, and on which hardware."""
    reference_dir = Path(reference_dir)
    records = reference_records(reference_dir)
    if not records:
        return f"{reference_dir} holds no run records: what made it is unknown, and it cannot be verified"
    codes = sorted({str(r.get("code_fingerprint")) for r in records})
    hardware_made = sorted({str(r.get("hardware")) for r in records})
    stamp_path = reference_dir / STAMP_FILE
    validated = json.loads(stamp_path.read_text()) if stamp_path.is_file() else {}
    if validated.get("code_fingerprint") == code_fingerprint():
        verdict = (f"validated for your code: yes ({validated['mode']} on {validated['hardware']}, "
                   f"{validated['validated_at']})")
    else:
        verdict = f"validated for your code: NO (run `unlearnbench verify --profile {reference_dir.name}`)"
        changed = modules_changed(records)
        if changed:
            verdict += f"; modules changed since: {', '.join(changed[:5])}" + (" …" if len(changed) > 5 else "")
    return (f"reference made by code {', '.join(codes)} on {', '.join(hardware_made)}; versions "
            f"{versions_status(records)}; {verdict}")
