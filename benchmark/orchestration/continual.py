"""Continual requests (issue 11): forget A, then B, then C with any method, scored after every request.

``unlearnbench continual --profile mnist --requests 0,1,2`` takes every method of the profile's plan and, per seed,
applies it request after request: step k starts from the model step k−1 produced (step 1 from the original) and
forgets class ``requests[k−1]`` while the classes of the earlier requests count as forgotten too
(``forgotten_before`` of :class:`unlearnbench.methods.base.UnlearningMethod`: excluded from every retain set, SA's
replay, RL's pseudo-labels, and from what Retrain trains on). After each step the model is scored by
:meth:`unlearnbench.metrics.evaluator.Evaluator.evaluate_forgotten`: the recognised rate of *every* class forgotten so
far and the retained quality on the classes still kept, with the profile's sampler, seed and yardstick. The
original is a row too (nothing forgotten: the ceiling of every recognised rate).

One record per (method, seed, step) (:class:`~unlearnbench.orchestration.records.RunRecord`, the runner's), written
atomically under ``<output>/<profile>/continual/runs/``; its key hashes the profile's protocol key (settings,
versions, hardware), the method, its version and its options, the budget, the request prefix
and the seed. Each step's model is cached under ``<cache_dir>/continual/<key>`` so a rerun continues a chain
from its last finished step. The relearning attack is not run here (one per leaderboard run already measures it).
Memory is measured in-process (``isolate_runs`` does not apply): it depends on run order, as the record says.

Outputs in ``<output>/<profile>/continual/``: ``continual.csv`` / ``continual.md`` (one row per method and step)
and ``continual.png`` (forgotten classes' mean recognised rate and retained accuracy against the step).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from unlearnbench.foundation.cache import atomic_directory, atomic_path, config_hash, write_text_atomic
from unlearnbench.foundation.config import ConfigError
from unlearnbench.foundation.cost import format_seconds
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.pretraining import load_original
from unlearnbench.foundation.provenance import hardware
from unlearnbench.foundation.report_files import markdown_table, save_figure
from unlearnbench.orchestration.progress import StageLog
from unlearnbench.orchestration.records import RunRecord, load_record
from unlearnbench.orchestration.runner import ORIGINAL, BenchmarkRunner, method_identity

HISTORY_FILE = "continual_state.pt"  # method state a later request needs (O3: earlier adapters' A matrices)


@dataclass
class ContinualStep:
    """Step ``step`` (1-based) of one method's chain: forget ``requests[step − 1]`` after ``requests[:step − 1]``."""

    label: str
    method: str
    seed: int
    step: int
    requests: tuple[int, ...]
    overrides: dict[str, Any] = field(default_factory=dict)
    method_config: dict[str, Any] = field(default_factory=dict)
    method_identity: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    @property
    def request(self) -> int:
        return self.requests[self.step - 1]

    @property
    def forgotten(self) -> tuple[int, ...]:
        return self.requests[:self.step]


class ContinualRunner:
    """Runs every method of ``runner``'s plan through the request sequence ``requests`` (see the module docstring)."""

    def __init__(self, runner: BenchmarkRunner, requests: list[int]) -> None:
        if len(requests) < 1 or len(set(requests)) != len(requests):
            raise ConfigError(f"--requests needs one or more distinct classes, got {requests}")
        self.runner = runner
        self.requests = tuple(int(c) for c in requests)
        self.out_dir = runner.out_dir / "continual"
        self.runs_dir = self.out_dir / "runs"

    # -- the plan --------------------------------------------------------------------------------------------
    def chains(self, num_classes: int) -> list[list[ContinualStep]]:
        """One chain of steps per (method, seed), methods in the profile's order, the original first."""
        from unlearnbench.methods import get_method, method_config_for, resolve_entry

        p = self.runner.profile
        for c in self.requests:
            if not 0 <= c < num_classes:
                raise ConfigError(f"--requests contains {c}, but the data has classes 0..{num_classes - 1}")
        if len(self.requests) >= num_classes:
            raise ConfigError(f"--requests names {len(self.requests)} classes; at least one of the {num_classes} "
                              "classes must be kept")
        entries = [(ORIGINAL, ORIGINAL, {})] + [resolve_entry(name, p) for name in p.unlearning.methods]
        chains = []
        for label, method, overrides in entries:
            config = {} if method == ORIGINAL else method_config_for(method, p, overrides)
            identity = {} if method == ORIGINAL else method_identity(get_method(method))
            for seed in p.unlearning.seeds:
                chain = [ContinualStep(label, method, seed, k, self.requests, overrides, config, identity)
                         for k in range(1, len(self.requests) + 1)]
                for s in chain:
                    s.key = self.step_key(s)
                chains.append(chain)
        return chains

    def step_key(self, s: ContinualStep) -> str:
        u = self.runner.profile.unlearning
        return config_hash(self.runner.protocol_key(), "continual", s.label, s.method, s.method_config,
                           s.method_identity, {"steps": u.steps, "batch_size": u.batch_size}, list(s.forgotten), s.seed)

    def record_path(self, s: ContinualStep) -> Path:
        name = s.label.replace(":", "_").replace("/", "_")
        return self.runs_dir / f"{name}__s{s.seed}__step{s.step}__{s.key}.json"

    def model_dir(self, s: ContinualStep) -> Path:
        return Path(self.runner.profile.runtime.cache_dir).expanduser() / "continual" / s.key

    def done(self, s: ContinualStep) -> bool:
        return not self.runner.force and load_record(self.record_path(s)).get("status") == "ok"

    # -- running -----------------------------------------------------------------------------------------------
    def run(self) -> pd.DataFrame:
        """Every pending step of every chain, then the table and figure; returns the table."""
        r, p = self.runner, self.runner.profile
        stages = StageLog(total=3)
        stages.begin(f"continual requests {list(self.requests)}: data, yardstick, original")
        data, _ = r.validate()
        chains = self.chains(data.num_classes)
        original, _ = load_original(p, r.pretrained)
        evaluator = r.evaluator(r.yardstick(), data, r.device)
        pending = sum(not self.done(s) for chain in chains for s in chain)
        stages.end(f"{len(chains)} chains of {len(self.requests)} steps, {pending} steps to run; {r.machine_text()}")
        stages.begin("unlearning and scoring, request after request")
        context = {"hardware": hardware(r.device)}
        for chain in chains:
            model = original
            for i, s in enumerate(chain):
                if self.done(s) and all(self.done(later) for later in chain[i + 1:]):
                    break  # the rest of the chain is finished: no model needed
                if self.done(s) and (self.model_dir(s) / "metadata.json").is_file():
                    model = self.load_model(s, p.data.image_size) if s.method != ORIGINAL else original
                    continue
                stages.say(f"{s.label}, seed {s.seed}, step {s.step}/{len(chain)}: forget class {s.request} "
                           f"({data.class_names[s.request]}) after {list(s.requests[:s.step - 1])} [{s.key}]")
                record, model = self.run_step(s, model, data, evaluator, context)
                stages.say(f"  {_summary(record)}")
                if record["status"] != "ok":
                    break  # a failed step ends its chain: later steps have no model to start from
        stages.end("done")
        stages.begin("continual table and figure")
        table = self.write_table([s for chain in chains for s in chain])
        stages.end(f"{self.out_dir}/continual.md; finished in {format_seconds(stages.elapsed())}")
        return table

    def run_step(self, s: ContinualStep, model: ConditionalDiffusion, data, evaluator, context: dict
                 ) -> tuple[dict, ConditionalDiffusion]:
        """Unlearn one request from ``model``, cache the result, score it, write the record; (record, new model)."""
        from unlearnbench.methods import unlearn

        p, r = self.runner.profile, self.runner
        rec = RunRecord.start(
            self.record_path(s), run_key=s.key, protocol_key=r.protocol_key(), profile=p.name, label=s.label,
            method=s.method, seed=s.seed, method_identity=s.method_identity, method_config=s.method_config,
            unlearning_steps=p.unlearning.steps if s.method != ORIGINAL else 0, batch_size=p.unlearning.batch_size,
            precision=p.runtime.precision, hardware=context["hardware"], step=s.step, request=s.request,
            request_name=data.class_names[s.request], requests=list(s.requests))
        grid = self.out_dir / "grids" / f"{self.record_path(s).stem.rsplit('__', 1)[0]}.png"
        with rec.capture(f"{s.label} at continual step {s.step}"):
            if s.method == ORIGINAL:  # sampled once for every step (and every run of the runner)
                rec.add_no_unlearning()
                scores = evaluator.score_forgotten(r.original_samples(evaluator, model), s.forgotten,
                                                   p.evaluation.seed, grid)
            else:
                outcome = unlearn(s.method, model, s.request, data, p, seed=s.seed, overrides=s.overrides,
                                  forgotten_before=s.requests[:s.step - 1])
                model = outcome.model
                rec.add_outcome(outcome, " (in-process: depends on run order)")
                self.save_model(s, model)
                scores = evaluator.evaluate_forgotten(model.to(r.device), s.forgotten, p.evaluation.seed, grid)
            rec.add_scores({**scores, "grid_path": os.path.relpath(grid, self.out_dir)})
        return rec.fields, model.cpu()

    # -- step models (resume) ----------------------------------------------------------------------------------
    def save_model(self, s: ContinualStep, model: ConditionalDiffusion) -> None:
        """The step's model (and any ``continual_state`` a later request needs) into the cache, atomically."""
        directory = self.model_dir(s)
        if (directory / "metadata.json").is_file():
            return
        with atomic_directory(directory) as tmp:
            model.save(tmp, {"continual_step": s.step, "requests": list(s.forgotten), "method": s.label})
            state = getattr(model, "continual_state", None)
            if state:
                torch.save(state, tmp / HISTORY_FILE)

    def load_model(self, s: ContinualStep, image_size: int) -> ConditionalDiffusion:
        directory = self.model_dir(s)
        model = ConditionalDiffusion.load(directory, image_size=image_size)
        if (directory / HISTORY_FILE).is_file():
            model.continual_state = torch.load(directory / HISTORY_FILE, weights_only=True)
        return model

    # -- table and figure ---------------------------------------------------------------------------------------
    def write_table(self, steps: list[ContinualStep]) -> pd.DataFrame:
        """``continual.csv``/``.md``/``.png`` from the records of these steps (missing ones are left out)."""
        rows = []
        cumulative: dict[tuple[str, int], float] = {}
        for s in steps:
            rec = load_record(self.record_path(s))
            if not rec:
                continue
            chain = (s.label, s.seed)
            cumulative[chain] = cumulative.get(chain, 0.0) + float(rec.get("total_seconds") or 0.0)
            ok = rec.get("status") == "ok"
            rows.append({
                "method": s.label, "seed": s.seed, "step": s.step, "request": rec.get("request_name", s.request),
                "forgotten": "+".join(map(str, rec.get("forgotten_names", []))) if ok else "",
                "recognised_latest": rec.get("recognised_by_class", {}).get(rec.get("request_name")) if ok else None,
                "recognised_mean": rec.get("recognised_mean"), "recognised_max": rec.get("recognised_max"),
                "retain_accuracy": rec.get("retain_accuracy"), "mmd": rec.get("mmd", float("nan")),
                "fid": rec.get("fid"), "kid": rec.get("kid"),
                "step_seconds": rec.get("total_seconds"), "cumulative_seconds": cumulative[chain],
                "status": rec.get("status"), "error": rec.get("error", ""),
            })
        table = pd.DataFrame(rows)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out_dir / "continual.csv") as tmp:
            table.to_csv(tmp, index=False)
        write_text_atomic(self.out_dir / "continual.md", self.markdown(table))
        if len(table):
            plot_continual(table, self.out_dir / "continual.png")
        return table

    def markdown(self, table: pd.DataFrame) -> str:
        p, r = self.runner.profile, self.runner
        head = (f"# Continual requests {list(self.requests)} (profile `{p.name}`)\n\n"
                f"Each method forgets the requests one after another from its own previous model; after each step "
                f"the samples of *every* class forgotten so far are read by the noise-aware reader (recognised ↓) "
                f"and the classes still kept are scored (retained accuracy ↑, MMD ↓ in the reader's features; KID and "
                f"FID in continual.csv). Protocol: sampler "
                f"{p.sampler.describe()}, {p.evaluation.forget_samples} samples per forgotten class, "
                f"{p.evaluation.retain_samples_per_class} per kept class, evaluation seed {p.evaluation.seed}; "
                f"budget {p.unlearning.steps} steps × batch {p.unlearning.batch_size} per request; "
                f"{r.machine_text()}. Times: the step's unlearning (prior + loop; Retrain: its recorded training), "
                f"and their running sum.\n\n")
        headers = ["method", "seed", "step", "request", "forgotten so far", "recognised (this request) ↓",
                   "recognised (mean over forgotten) ↓", "recognised (max) ↓", "retained acc ↑", "MMD ↓",
                   "step time (s)", "cumulative time (s)"]
        rows = []
        for row in table.to_dict("records"):
            first = [row["method"], row["seed"], row["step"], row["request"]]
            if row["status"] != "ok":
                rows.append([*first, f"FAILED: {str(row['error'])[:80]}", *[""] * 7])
                continue
            rows.append([*first, row["forgotten"], f"{row['recognised_latest']:.1%}", f"{row['recognised_mean']:.1%}",
                         f"{row['recognised_max']:.1%}", f"{row['retain_accuracy']:.1%}", f"{row['mmd']:.3g}",
                         f"{row['step_seconds']:.1f}", f"{row['cumulative_seconds']:.1f}"])
        return head + markdown_table(headers, rows) + "\n"


def plot_continual(table: pd.DataFrame, path: Path) -> None:
    """Two panels against the request step, one line per method (mean over seeds): the mean recognised rate of the
    classes forgotten so far (↓) and the retained accuracy on the classes still kept (↑)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[table["status"] == "ok"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=120)
    colours, markers = plt.get_cmap("tab20").colors, "osD^v<>ph*X"
    for i, (method, rows) in enumerate(ok.groupby("method", sort=False)):
        mean = rows.groupby("step")[["recognised_mean", "retain_accuracy"]].mean()
        style = {"color": colours[(2 * i) % 20 + (2 * i) // 20 % 2], "marker": markers[i % len(markers)],
                 "label": method, "alpha": 0.85}
        axes[0].plot(mean.index, 100 * mean["recognised_mean"], **style)
        axes[1].plot(mean.index, 100 * mean["retain_accuracy"], **style)
    steps = sorted(ok["step"].unique())
    for ax, title in zip(axes, ("forgotten classes recognised (%, mean) ↓", "retained accuracy (%) ↑"), strict=True):
        ax.set_xticks(steps)
        ax.set_xlabel("request step")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    save_figure(fig, path)


def _summary(record: dict) -> str:
    if record.get("status") != "ok":
        return f"FAILED ({record.get('error')})"
    rates = ", ".join(f"{k} {v:.0%}" for k, v in record["recognised_by_class"].items())
    mmd = record.get("mmd", float("nan"))
    return (f"recognised {rates}; retained acc {record['retain_accuracy']:.1%}, MMD {mmd:.3g}; "
            f"{record['total_seconds']:.1f} s")
