r"""Studies: one profile run at several model sizes with a fixed set of method arms (``unlearnbench study``).

A study spec (``benchmark/studies/<name>.yaml``, or a path) names a base profile, overrides shared by every size
(the study's reduced evaluation protocol), the sizes (each a list of profile overrides, e.g. the UNet's widths and
the pretraining steps) with the forget classes run at that size, and the *arms*: leaderboard rows, each a method
with options (a profile variant, ``{method: safemax, lam: 0}``). For every size the study

1. measures the original's class signal D(t) (:mod:`unlearnbench.metrics.class_signal`) into
   ``<output_dir>/<name>-<size>/class-signal/`` (skipped when it is there for the same model and code);
2. sets the ``signal_arm``'s timestep window to where the mean D_swap(t) is at least ``signal_fraction`` of its
   maximum (the measured grid points t_lo … t_hi give ``t_min = t_lo``, ``t_max = t_hi + 1``), so that arm follows
   the class signal of *its own* original;
3. runs the profile through :class:`~unlearnbench.orchestration.runner.BenchmarkRunner` into
   ``<output_dir>/<name>-<size>/``: the original is trained once (cached by its key), every arm starts from it,
   one record per run, written atomically. An interrupted study resumes from those records: rerun the command.

After each size ``summary.csv`` (one row per record), ``summary.md`` (means over forget classes per size and arm,
and the pre-registered decision table) and ``capacity.png`` are rewritten from every record of the plan, so a
partial study can be read while it runs. ``--summary-only`` redraws them from the records without running, also
after the code changed (records then match by arm, class and seed; one code version per size, named in the
summary).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from unlearnbench.foundation.cache import atomic_path, write_json_atomic, write_text_atomic
from unlearnbench.foundation.config import ConfigError, Profile, load_profile, resolve_named_yaml

STUDY_DIR = Path(__file__).resolve().parents[1] / "studies"
RECOGNISED_TARGET = 0.05  # "forgets": the reader recognises at most 5 % of forget-class samples (tuning's rule)
SUMMARY_FIELDS = ["recognised_rate", "unrecognisable_rate", "ua", "retain_accuracy", "reader_retain_accuracy",
                  "kid", "fid", "forget_entropy", "unlearn_seconds", "prepare_seconds", "extra_final_loss",
                  "extra_mask_fraction"]
# The SAFEMax paper's point (CIFAR-10, 35.7M-parameter DDPM, mean over 10 forget classes): retained-class FID of
# SAFEMax 16.74 vs SalUn 16.76 (METHODS.md). Drawn on the "relative to SalUn" panel as a reference, not as data.
PAPER_PARAMETERS = 35.7e6
PAPER_RETAINED_RATIO = 16.74 / 16.76


@dataclass
class StudySize:
    """One model size: a label (e.g. ``4.24M``), profile overrides, and the forget classes run at that size."""

    label: str
    overrides: list[str] = field(default_factory=list)
    forget_classes: list[int] = field(default_factory=lambda: [0])


@dataclass
class StudySpec:
    """A study: see the module docstring. ``arms`` maps a row label to ``{method: name, option: value, ...}``."""

    name: str
    sizes: list[StudySize]
    arms: dict[str, dict[str, Any]]
    profile: str = "mnist"
    output_dir: str = "results/local/study"
    overrides: list[str] = field(default_factory=list)
    signal_arm: str | None = None
    signal_fraction: float = 0.5
    signal_images_per_class: int = 32

    def __post_init__(self) -> None:
        if not self.sizes:
            raise ConfigError("a study needs at least one size")
        labels = [s.label for s in self.sizes]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"study sizes must have distinct labels, got {labels}")
        for arm, options in self.arms.items():
            if "method" not in options:
                raise ConfigError(f"study arm {arm!r} names no method (give {{method: <name>, ...}})")
        if self.signal_arm is not None and self.signal_arm not in self.arms:
            raise ConfigError(f"signal_arm {self.signal_arm!r} is not one of the arms {sorted(self.arms)}")
        if not 0 < self.signal_fraction <= 1:
            raise ConfigError(f"signal_fraction must lie in (0, 1], got {self.signal_fraction}")


def resolve_study_path(spec: str | Path) -> Path:
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


def size_profile(study: StudySpec, size: StudySize, window: tuple[int, int] | None = None) -> Profile:
    """The profile of one size: base ← study overrides ← size overrides ← the arms as variants (an arm that is
    just a method under its own name, ``salun: {method: salun}``, is listed as that method)."""
    arms = {name: dict(options) for name, options in study.arms.items()}
    if study.signal_arm is not None and window is not None:
        arms[study.signal_arm].update(t_min=int(window[0]), t_max=int(window[1]))
    return load_profile(study.profile, [
        *study.overrides,
        *size.overrides,
        f"name={study.name}-{size.label}",
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
    """The size's class-signal curve, measured once per model (reused when its meta matches)."""
    from unlearnbench.foundation.provenance import code_fingerprint
    from unlearnbench.metrics.class_signal import measure_original

    out = Path(profile.runtime.output_dir) / profile.name / "class-signal"
    meta_path = out / "class_signal.json"
    if meta_path.is_file() and (out / "class_signal.csv").is_file():
        meta = json.loads(meta_path.read_text())
        if (meta.get("code") == code_fingerprint("model") and meta.get("unet") == vars(profile.unet)
                and meta.get("pretrain_steps") == profile.pretrain.steps
                and meta.get("images_per_class") == study.signal_images_per_class):
            return pd.read_csv(out / "class_signal.csv")
    return measure_original(profile, study.signal_images_per_class, out,
                            command=f"unlearnbench study --spec {study.name}")


def parameter_count(profile: Profile) -> int:
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
    for size in ([] if summary_only else chosen):
        window = None
        if study.signal_arm is not None:
            window = signal_window(class_signal_for(study, size_profile(study, size)), study.signal_fraction)
            print(f"[study] {size.label}: class-signal window for {study.signal_arm}: t in [{window[0]}, {window[1]})")
        BenchmarkRunner(size_profile(study, size, window)).run()
        table = collect(study)
        write_summary(study, table)  # after every size: a partial study can be read while it runs
    if summary_only or not chosen:
        table = collect(study, any_code=summary_only)
        write_summary(study, table)
    return table


def collect(study: StudySpec, any_code: bool = False) -> pd.DataFrame:
    """One row per finished record of the current plan of every size (other keys are never mixed in).

    ``any_code``: also accept records of the same plan made by other code (a redraw after the code changed): a
    record then matches by arm, forget class and seed, and a size whose records come from more than one code
    fingerprint is refused, so one summary never mixes code versions within a size. Each row keeps its ``code``.
    """
    from unlearnbench.orchestration.runner import BenchmarkRunner, load_record

    rows = []
    for size in study.sizes:
        window = None
        signal = Path(study.output_dir) / f"{study.name}-{size.label}" / "class-signal" / "class_signal.csv"
        if study.signal_arm is not None:
            if not signal.is_file():
                continue  # this size has not started
            window = signal_window(pd.read_csv(signal), study.signal_fraction)
        profile = size_profile(study, size, window)
        runner = BenchmarkRunner(profile)
        _, specs = runner.validate()
        records, _ = runner.load_records(specs)
        if any_code and len(records) < len(specs):
            wanted = {(s.label, s.forget_class, s.seed) for s in specs}
            records = [r for r in map(load_record, sorted(runner.runs_dir.glob("*.json")))
                       if (r.get("method"), r.get("forget_class"), r.get("seed")) in wanted]
            codes = {r.get("code_fingerprint") for r in records}
            if len(codes) > 1:
                raise ConfigError(f"{runner.runs_dir} holds records of one plan from several code versions "
                                  f"({sorted(map(str, codes))}); rerun the study or remove the stale records")
        params = parameter_count(profile)
        for r in records:
            if r.get("status") != "ok":
                continue
            rows.append({"size": size.label, "parameters": params, "arm": r["method"],
                         "forget_class": r["forget_class"], "seed": r["seed"], "code": r.get("code_fingerprint"),
                         **{f: r.get(f, float("nan")) for f in SUMMARY_FIELDS},
                         "window": None if window is None or r["method"] != study.signal_arm else list(window)})
    return pd.DataFrame(rows)


def decision_table(table: pd.DataFrame, original: str = "original") -> pd.DataFrame:
    """The pre-registered decision rule, per size: among SAFEMax arms whose mean recognised rate is ≤ 5 %, the one
    with the highest mean retained accuracy (or none), beside SalUn's and the original's retained accuracy."""
    means = table.groupby(["size", "parameters", "arm"], sort=False)[["recognised_rate", "retain_accuracy"]].mean()
    rows = []
    for (size, params), group in means.groupby(level=[0, 1], sort=False):
        group = group.droplevel([0, 1])
        safemax = group[group.index.str.startswith("safemax")]
        forgot = safemax[safemax["recognised_rate"] <= RECOGNISED_TARGET]
        ranked = forgot.sort_values(["retain_accuracy", "recognised_rate"], ascending=[False, True])
        best = ranked.index[0] if len(ranked) else None  # ties in retained accuracy: the lower recognised rate
        rows.append({"size": size, "parameters": params,
                     "best_forgetting_safemax_arm": best or "none forgets",
                     "its_retained_accuracy": group.loc[best, "retain_accuracy"] if best else float("nan"),
                     "safemax_arms_that_forget": len(forgot), "safemax_arms": len(safemax),
                     "salun_retained_accuracy": group["retain_accuracy"].get("salun", float("nan")),
                     "salun_recognised_rate": group["recognised_rate"].get("salun", float("nan")),
                     "original_retained_accuracy": group["retain_accuracy"].get(original, float("nan"))})
    return pd.DataFrame(rows)


def write_summary(study: StudySpec, table: pd.DataFrame) -> None:
    """``summary.csv``, ``summary.md`` and ``capacity.png`` under the study's output folder (atomically)."""
    out = Path(study.output_dir)
    if table.empty:
        return
    with atomic_path(out / "summary.csv") as tmp:
        table.to_csv(tmp, index=False)
    cols = ["recognised_rate", "unrecognisable_rate", "retain_accuracy", "kid", "unlearn_seconds"]
    means = table.groupby(["parameters", "size", "arm"], sort=True)[cols].mean()
    means["forget_classes"] = table.groupby(["parameters", "size", "arm"], sort=True)["forget_class"].count()
    codes = ", ".join(f"{size} `{code}`" for size, code in table.groupby("size", sort=False)["code"].first().items())
    lines = [f"# Study {study.name}: means over forget classes (generated by `unlearnbench study --spec "
             f"{study.name}`; do not edit)", "", f"Code fingerprint of the records: {codes}.", "",
             "| size | arm | recognised ↓ | unrecognisable | retained acc ↑ | KID ↓ | unlearn s | classes |",
             "|---|---|---|---|---|---|---|---|"]
    for (_, size, arm), r in means.iterrows():
        lines.append(f"| {size} | {arm} | {r.recognised_rate:.1%} | {r.unrecognisable_rate:.1%} | "
                     f"{r.retain_accuracy:.1%} | {r.kid:.3g} | {r.unlearn_seconds:.0f} | {int(r.forget_classes)} |")
    decision = decision_table(table)
    lines += ["", f"## Decision rule (pre-registered): best retained accuracy among SAFEMax arms with recognised "
              f"≤ {RECOGNISED_TARGET:.0%}", "",
              "| size | parameters | best SAFEMax arm | its retained acc | SAFEMax arms that forget | SalUn retained "
              "(recognised) | original retained |", "|---|---|---|---|---|---|---|"]
    for _, d in decision.iterrows():
        lines.append(f"| {d['size']} | {d['parameters'] / 1e6:.2f}M | {d['best_forgetting_safemax_arm']} | "
                     f"{d['its_retained_accuracy']:.1%} | {d['safemax_arms_that_forget']}/{d['safemax_arms']} | "
                     f"{d['salun_retained_accuracy']:.1%} ({d['salun_recognised_rate']:.1%}) | "
                     f"{d['original_retained_accuracy']:.1%} |")
    write_text_atomic(out / "summary.md", "\n".join(lines) + "\n")
    plot_capacity(table, out / "capacity.png")


ARM_STYLES = (  # (name prefix, colour map, line style): one colour family per kind of arm
    ("safemax_lr", "Blues", "-"), ("safemax_lam", "Greens", "-"), ("safemax_dwindow", "Greens", "-"),
    ("safemax_beta", "Oranges", "-"), ("safemax_emb", "Reds", "-"), ("safemax_salunmask", "Purples", "-"),
)


def arm_style(arm: str, index: int) -> dict:
    """Line style of an arm: SAFEMax as published black, SalUn dashed magenta, original dotted grey, control arms
    in one colour family per kind (learning rates blue, timesteps green, retain term orange, weights red/purple)."""
    import matplotlib.pyplot as plt

    fixed = {"safemax": dict(color="black", ls="-", lw=2.4), "salun": dict(color="m", ls="--", lw=2.4),
             "original": dict(color="grey", ls=":", lw=2.0)}
    if arm in fixed:
        return {**fixed[arm], "marker": "o", "label": arm}
    for prefix, cmap, ls in ARM_STYLES:
        if arm.startswith(prefix):
            return dict(color=plt.get_cmap(cmap)(0.45 + 0.25 * (index % 3)), ls=ls, lw=1.4, marker="o", label=arm)
    return dict(color="tab:brown", ls="-.", lw=1.2, marker="s", label=arm)


def plot_capacity(table: pd.DataFrame, path: Path) -> None:
    """Retained accuracy, recognised rate and retained KID relative to SalUn against parameter count, one line per
    arm (mean over forget classes), the paper's 35.7M point on the relative panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = table.groupby(["arm", "parameters"])[["retain_accuracy", "recognised_rate", "kid"]].mean().reset_index()
    salun = means[means["arm"] == "salun"].set_index("parameters")["kid"]
    sizes = sorted(means["parameters"].unique())
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), dpi=110)
    seen: dict[str, int] = {}
    for arm, group in means.groupby("arm", sort=True):
        family = next((prefix for prefix, _, _ in ARM_STYLES if str(arm).startswith(prefix)), str(arm))
        seen[family] = seen.get(family, -1) + 1
        style = arm_style(str(arm), seen[family])
        axes[0].plot(group["parameters"], group["retain_accuracy"], **style)
        axes[1].plot(group["parameters"], group["recognised_rate"], **style)
        ratio = group.set_index("parameters")["kid"] / salun.reindex(group["parameters"]).to_numpy()
        axes[2].plot(ratio.index, ratio.to_numpy(), **style)
    axes[2].plot([PAPER_PARAMETERS], [PAPER_RETAINED_RATIO], "k*", ms=14,
                 label="paper: SAFEMax/SalUn retained FID\n(CIFAR-10, 35.7M, no retained acc. reported)")
    titles = ("retained accuracy ↑ (clean classifier)", "forget class recognised ↓ (noise-aware reader)",
              "retained KID relative to SalUn's at the same size (1 = equal)")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log")
        ticks = sizes + ([PAPER_PARAMETERS] if ax is axes[2] else [])
        ax.set_xticks(ticks, [f"{v / 1e6:.2g}M" for v in ticks])
        ax.minorticks_off()
        ax.set_xlabel("UNet parameters")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[2].set_yscale("log")
    axes[1].axhline(RECOGNISED_TARGET, color="grey", lw=0.8, ls=":")
    axes[2].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
