r"""Studies: one profile run at several model sizes with a fixed set of method arms (``unlearnbench study``).

A study spec (``benchmark/studies/<name>.yaml``, or a path) names a base profile, overrides shared by every size
(the study's reduced evaluation protocol), the sizes (each a list of profile overrides, e.g. the UNet's widths and
the pretraining steps) with the forget classes run at that size, and the *arms*: leaderboard rows, each a method
with options (a profile variant, ``{method: safemax, lam: 0}``). For every size the study

1. measures the original's class signal D(t) (:mod:`unlearnbench.metrics.class_signal`) into
   ``<output_dir>/<name>-<size>/class-signal/`` (skipped when it is there for the same original model and
   ``CLASS_SIGNAL_VERSION``);
2. sets the ``signal_arm``'s timestep window to where the mean D_swap(t) is at least ``signal_fraction`` of its
   maximum (the measured grid points t_lo … t_hi give ``t_min = t_lo``, ``t_max = t_hi + 1``), so that arm follows
   the class signal of *its own* original;
3. runs the profile through :class:`~unlearnbench.orchestration.runner.BenchmarkRunner` into
   ``<output_dir>/<name>-<size>/``: the original is trained once (cached by its key), every arm starts from it,
   one record per run, written atomically. An interrupted study resumes from those records: rerun the command.

After each size ``summary.csv`` (one row per record) and ``summary.md`` (means over forget classes per size and
arm) are rewritten from every record of the study, so a partial study can be read while it runs: the sizes being run
by their current keys, the others as ``--summary-only`` reads them (below), so running one point never drops the
rows of points made under earlier keys. A spec may name its
own *report* (``report: capacity`` is the module ``unlearnbench.studies.capacity`` beside ``capacity.yaml``; a
dotted name is any importable module): its ``write_report(study, table)`` writes the study's own files (its
decision rule, its figures) under the output folder and returns Markdown appended to ``summary.md``. This runner
knows no particular study. ``--summary-only`` redraws the summary from the records without running, also after
the plan's keys changed (records then match by arm, class and seed; one plan version per size). The code
fingerprint each record carries is shown in the summary as provenance, never used to select records.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from unlearnbench.foundation.cache import atomic_path, write_json_atomic, write_text_atomic
from unlearnbench.foundation.config import ConfigError, Profile, load_profile, resolve_named_yaml
from unlearnbench.foundation.yardstick import YardstickMissingError
from unlearnbench.orchestration.leaderboard import TableData
from unlearnbench.orchestration.report_page import write_study_page

STUDY_DIR = Path(__file__).resolve().parents[1] / "studies"
REPORT_PACKAGE = "unlearnbench.studies"  # ``report: <name>`` is the module <REPORT_PACKAGE>.<name>
SUMMARY_FIELDS = ["recognised_rate", "unrecognisable_rate", "ua", "retain_accuracy", "reader_retain_accuracy",
                  "mmd", "kid", "fid", "coverage", "reader_forget_prob", "collapsed", "relearn_max",
                  "relearn_excess", "inversion_recognised",
                  "no_forget_data_recognised", "null_recognised", "forget_entropy", "unlearn_seconds",
                  "prepare_seconds", "extra_final_loss", "extra_mask_fraction"]


@dataclass
class StudySize:
    """One model size: a label (e.g. ``4.24M``), profile overrides, the forget classes run at that size, the
    study's arms run there (``arms``; None: all of them, e.g. a Retrain too costly at the largest size is left out
    by listing the others) and, for a point on other data, its own base ``profile`` (None: the study's)."""

    label: str
    overrides: list[str] = field(default_factory=list)
    forget_classes: list[int] = field(default_factory=lambda: [0])
    arms: list[str] | None = None
    profile: str | None = None


@dataclass
class StudySpec:
    """A study: see the module docstring. ``arms`` maps a row label to ``{method: name, option: value, ...}``;
    ``report`` names the study's own report module (None: the generic summary only)."""

    name: str
    sizes: list[StudySize]
    arms: dict[str, dict[str, Any]]
    profile: str = "mnist"
    output_dir: str = "results/local/study"
    overrides: list[str] = field(default_factory=list)
    signal_arm: str | None = None
    signal_fraction: float = 0.5
    signal_images_per_class: int = 32
    report: str | None = None

    def __post_init__(self) -> None:
        if not self.sizes:
            raise ConfigError("a study needs at least one size")
        labels = [s.label for s in self.sizes]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"study sizes must have distinct labels, got {labels}")
        for arm, options in self.arms.items():
            if "method" not in options:
                raise ConfigError(f"study arm {arm!r} names no method (give {{method: <name>, ...}})")
        for size in self.sizes:
            unknown = sorted(set(size.arms or []) - set(self.arms))
            if unknown:
                raise ConfigError(f"size {size.label!r} lists arms {unknown} that the study does not define "
                                  f"(its arms: {sorted(self.arms)})")
            if size.arms is not None and not size.arms:
                raise ConfigError(f"size {size.label!r} lists no arm: leave `arms` out to run all of them")
        if self.signal_arm is not None and self.signal_arm not in self.arms:
            raise ConfigError(f"signal_arm {self.signal_arm!r} is not one of the arms {sorted(self.arms)}")
        if not 0 < self.signal_fraction <= 1:
            raise ConfigError(f"signal_fraction must lie in (0, 1], got {self.signal_fraction}")
        report_module(self)  # an unknown report is a spec error, found before anything runs


def report_module(study: StudySpec) -> ModuleType | None:
    """The study's report module (``report: capacity`` → ``unlearnbench.studies.capacity``; a dotted name as is),
    or None when the spec names none. Raises ConfigError when it cannot be imported or has no ``write_report``."""
    if not study.report:
        return None
    name = study.report if "." in study.report else f"{REPORT_PACKAGE}.{study.report}"
    try:
        module = importlib.import_module(name)
    except ImportError as err:
        raise ConfigError(f"study {study.name!r}: cannot import its report module {name!r}: {err}") from err
    if not callable(getattr(module, "write_report", None)):
        raise ConfigError(f"study {study.name!r}: report module {name!r} has no write_report(study, table)")
    return module


def resolve_study_path(spec: str | Path) -> Path:
    """A bundled study's spec (``benchmark/studies/<name>.yaml``) or the path of one."""
    return resolve_named_yaml(spec, STUDY_DIR, "study")


def load_study(spec: str | Path, overrides: list[str] | None = None) -> StudySpec:
    """Parse and validate a study spec (jsonargparse, like profiles); ``overrides`` are ``key=value`` on the spec."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(exit_on_error=False, prog="unlearnbench study")
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_class_arguments(StudySpec, nested_key=None, fail_untyped=True)
    path = resolve_study_path(spec)
    args = ["--config", str(path), *(f"--{item}" for item in overrides or [])]
    try:
        namespace = parser.parse_args(args)
        namespace.pop("config", None)
        built = parser.instantiate_classes(namespace)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(f"invalid study ({path.name}): {err}") from err
    return StudySpec(**{k: built[k] for k in built.keys() if "." not in k})


def size_name(study: StudySpec, size: StudySize) -> str:
    """The profile name of one size, which is also its folder under the study's ``output_dir``."""
    return f"{study.name}-{size.label}"


def size_profile(study: StudySpec, size: StudySize, window: tuple[int, int] | None = None) -> Profile:
    """The profile of one size: its base (the size's ``profile`` or the study's) ← study overrides ← size overrides
    ← the size's arms as variants (an arm that is just a method under its own name, ``salun: {method: salun}``, is
    listed as that method)."""
    arms = {name: dict(options) for name, options in study.arms.items() if size.arms is None or name in size.arms}
    if study.signal_arm in arms and window is not None:
        arms[study.signal_arm].update(t_min=int(window[0]), t_max=int(window[1]))
    return load_profile(size.profile or study.profile, [
        *study.overrides,
        *size.overrides,
        f"name={size_name(study, size)}",
        f"runtime.output_dir={study.output_dir}",
        f"unlearning.forget_classes=[{','.join(str(c) for c in size.forget_classes)}]",
        f"unlearning.variants={json.dumps({n: o for n, o in arms.items() if o != {'method': n}})}",
        f"unlearning.methods=[{','.join(arms)}]",
    ])


def signal_window(frame: pd.DataFrame, fraction: float) -> tuple[int, int]:
    """(t_min, t_max): from the first to one past the last measured t whose mean D_swap is ≥ ``fraction`` × max."""
    mean = frame.groupby("t")["d_swap"].mean().sort_index()
    strong = mean.index[mean >= fraction * mean.max()]
    return int(strong.min()), int(strong.max()) + 1


def class_signal_for(study: StudySpec, profile: Profile) -> pd.DataFrame:
    """The size's class-signal curve, measured once per original model: reused while the stored curve's meta has
    the same :func:`~unlearnbench.metrics.class_signal.curve_identity` (``CLASS_SIGNAL_VERSION`` and the
    original's identity; not the code fingerprint, which it records as provenance)."""
    from unlearnbench.metrics import class_signal

    out = Path(profile.runtime.output_dir) / profile.name / "class-signal"
    stored = class_signal.stored_curves(out, class_signal.curve_identity(profile, study.signal_images_per_class))
    if stored is not None:
        return stored
    return class_signal.measure_original(profile, study.signal_images_per_class, out,
                                         command=f"unlearnbench study --spec {study.name}")


def parameter_count(profile: Profile) -> int:
    """The number of parameters of the profile's UNet (the x axis of a study across sizes)."""
    from unlearnbench.datasets import UnlearningDataModule
    from unlearnbench.foundation.diffusion import ConditionalDiffusion

    data = UnlearningDataModule(profile.data)
    model = ConditionalDiffusion.create(profile.unet, profile.data.image_size, data.channels, data.num_classes)
    return sum(p.numel() for p in model.unet.parameters())


def run_study(study: StudySpec, sizes: list[str] | None = None, summary_only: bool = False) -> pd.DataFrame:
    """Run (or resume) every size of the study, rewriting the summary after each; returns the per-record table."""
    from unlearnbench.orchestration.runner import BenchmarkRunner

    chosen = [s for s in study.sizes if not sizes or s.label in sizes]
    if sizes and len(chosen) != len(sizes):
        raise ConfigError(f"unknown size in {sizes}; the study has {[s.label for s in study.sizes]}")
    out = Path(study.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "study.json", study)
    table = pd.DataFrame()
    for size in ([] if summary_only else chosen):
        window = None
        if study.signal_arm is not None:
            window = signal_window(class_signal_for(study, size_profile(study, size)), study.signal_fraction)
            print(f"[study] {size.label}: class-signal window for {study.signal_arm}: t in [{window[0]}, {window[1]})")
        profile = size_profile(study, size, window)
        sets = f" --set {' '.join(size.overrides)}" if size.overrides else ""
        command = f"unlearnbench yardstick --profile {size.profile or study.profile}{sets}"  # the point's base
        try:
            BenchmarkRunner(profile, yardstick_command=command).run()
        except YardstickMissingError as err:
            raise YardstickMissingError(f"point {size.label}: {err}") from None
        # after every size, so that a partial study can be read while it runs; the points not run by this command
        # are read as a redraw reads them (their records may predate a version or protocol change)
        try:
            table = collect(study, exact_sizes=[s.label for s in chosen])
        except ConfigError as err:  # another point's records mix plan versions; this point's records are written
            print(f"[study] {size.label}: done; the summary is not redrawn: {err}")
            continue
        write_summary(study, table)
    if summary_only or not chosen:
        table = collect(study, exact_sizes=[] if summary_only else None)
        write_summary(study, table)
    return table


def collect(study: StudySpec, exact_sizes: Collection[str] | None = None) -> pd.DataFrame:
    """One row per finished record of every size.

    The sizes in ``exact_sizes`` (None: every size) keep only records of their current plan, by run key (other
    keys are never mixed in). Every other size also accepts records of the same plan made under other keys (a
    redraw after a version, protocol or environment change, or a point finished before one): a record then matches
    by arm, forget class and seed, and a size whose finished records come from more than one protocol key, or hold
    one run twice, is refused, so one summary never mixes plan versions within a size. Each row keeps its record's
    code fingerprint (``code``) as provenance.
    """
    from unlearnbench.orchestration.records import load_record
    from unlearnbench.orchestration.runner import BenchmarkRunner

    rows = []
    for size in study.sizes:
        folder = Path(study.output_dir) / size_name(study, size)
        if not any(folder.glob("runs/*.json")):
            continue  # not started: nothing to read, and what it needs (its yardstick, say) may not exist yet
        window = None
        signal = folder / "class-signal" / "class_signal.csv"
        if study.signal_arm is not None:
            if not signal.is_file():
                continue  # this size has not started
            window = signal_window(pd.read_csv(signal), study.signal_fraction)
        profile = size_profile(study, size, window)
        runner = BenchmarkRunner(profile)
        _, specs = runner.validate()
        records, _ = runner.load_records(specs)
        if exact_sizes is not None and size.label not in exact_sizes and len(records) < len(specs):
            wanted = {(s.label, s.forget_class, s.seed) for s in specs}
            records = [r for r in map(load_record, sorted(runner.runs_dir.glob("*.json")))
                       if (r.get("method"), r.get("forget_class"), r.get("seed")) in wanted
                       and r.get("status") == "ok"]
            check_one_plan_version(records, runner.runs_dir)
        params = parameter_count(profile)
        for r in records:
            if r.get("status") != "ok":
                continue
            rows.append({"size": size.label, "parameters": params, "arm": r["method"],
                         "forget_class": r["forget_class"], "seed": r["seed"], "code": r.get("code_fingerprint"),
                         **{f: r.get(f, float("nan")) for f in SUMMARY_FIELDS},
                         "window": None if window is None or r["method"] != study.signal_arm else list(window)})
    return pd.DataFrame(rows)


def check_one_plan_version(records: list[dict], runs_dir: Path) -> None:
    """Refuse (ConfigError) records of one size that come from several protocol keys or hold one run (arm, forget
    class, seed) more than once: they were made under different settings or versions."""
    protocols = {str(r.get("protocol_key")) for r in records}
    runs = Counter((r.get("method"), r.get("forget_class"), r.get("seed")) for r in records)
    repeated = sorted(str(run) for run, count in runs.items() if count > 1)
    if len(protocols) > 1 or repeated:
        raise ConfigError(f"{runs_dir} holds records of one plan made under several settings or versions (protocol "
                          f"keys {sorted(protocols)}; runs recorded more than once: {repeated or 'none'}); rerun "
                          "the study or remove the stale records")


def _code_text(codes: pd.Series) -> str:
    """The distinct code fingerprints of one size's records, in order of appearance: "`a`" or "`a` and `b`"."""
    return " and ".join(f"`{code}`" for code in dict.fromkeys(codes.dropna())) or "not recorded"


def write_summary(study: StudySpec, table: pd.DataFrame) -> None:
    """``summary.csv`` and ``summary.md`` under the study's output folder (atomically), then the study's own report
    (:func:`report_module`): its files, and its Markdown appended to ``summary.md``."""
    out = Path(study.output_dir)
    if table.empty:
        return
    with atomic_path(out / "summary.csv") as tmp:
        table.to_csv(tmp, index=False)
    cols = ["recognised_rate", "unrecognisable_rate", "retain_accuracy", "kid", "unlearn_seconds"]
    means = table.groupby(["parameters", "size", "arm"], sort=True)[cols].mean()
    means["forget_classes"] = table.groupby(["parameters", "size", "arm"], sort=True)["forget_class"].count()
    codes = ", ".join(f"{size} {_code_text(group)}" for size, group in table.groupby("size", sort=False)["code"])
    rows = [[size, arm, f"{r.recognised_rate:.1%}", f"{r.unrecognisable_rate:.1%}", f"{r.retain_accuracy:.1%}",
             f"{r.kid:.3g}", f"{r.unlearn_seconds:.0f}", str(int(r.forget_classes))]
            for (_, size, arm), r in means.iterrows()]
    keys = [[size, arm, r.recognised_rate, r.unrecognisable_rate, r.retain_accuracy, r.kid, r.unlearn_seconds,
             float(r.forget_classes)] for (_, size, arm), r in means.iterrows()]
    summary = TableData("Means over forget classes",
                        ["size", "arm", "recognised ↓", "unrecognisable", "retained acc ↑", "KID ↓", "unlearn s",
                         "classes"], [None, None, *cols, None], rows, keys)
    lines = [f"# Study {study.name}: means over forget classes (generated by `unlearnbench study --spec "
             f"{study.name}`; do not edit)", "", f"Code fingerprint of the records: {codes}.", "", summary.markdown()]
    report = report_module(study)
    own = report.write_report(study, table) if report is not None else ""
    lines += ["", own] if own else []
    write_text_atomic(out / "summary.md", "\n".join(lines) + "\n")
    sizes = {s.label: f"{size_name(study, s)}/report.html" for s in study.sizes}
    write_study_page(out, f"study {study.name}", summary, f"Code fingerprint of the records: {codes}.", own,
                     {label: link for label, link in sizes.items() if (out / link).is_file()})
