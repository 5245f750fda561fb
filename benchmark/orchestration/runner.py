"""The benchmark runner: identical setups for every (method × forget class × seed), one evaluator, resumable.

For a profile it prepares the data, loads the committed evaluation networks (the yardstick), trains or loads the
cached original model, then for every run unlearns from the *same* original weights with the *same* trainer
settings, evaluates with the one :class:`unlearnbench.metrics.evaluator.Evaluator` (and its relearning attack),
and writes one record per run (:class:`~unlearnbench.orchestration.records.RunRecord`) atomically under
``<output_dir>/<profile>/runs/`` (``output_dir`` defaults to the git-ignored ``results/local``; the committed
reference results under ``results/reference`` are never written by a run).

A run's key is made of content and explicit versions (:mod:`unlearnbench.foundation.provenance`): the
configuration, every protocol option and ``PROTOCOL_VERSION``, the data's content, the original's identity, the
yardstick's weight hash, the method's name, ``version`` and resolved options, device type and name, CPU threads,
precision and library versions; never the suite's code, which each record carries as provenance only.
A rerun skips runs whose record exists with that key and status ``ok`` (a failed run is retried); ``force``
recomputes. The leaderboard shows exactly the records of the current plan;
records of other keys in the same folder are counted and reported as skipped, never averaged in.

Several runs at once (``runtime.workers`` = N > 1): N worker processes each compute runs exactly as the serial loop
(:mod:`unlearnbench.orchestration.pool`); Retrain first, records identical to one run at a time.

Several devices (``runtime.devices`` = N > 1): every *fit* (pretraining, Retrain, each method) runs data-parallel in
N spawned workers (``ddp_spawn``) with the profile's global batch split over them, while this runner stays one
process, the one that plays global rank 0: it alone plans, evaluates, writes records, tables, grids and W&B logs,
so each record is written once, with ``world_size`` and ``per_device_batch_size``. Evaluation sampling (and the
relearning attack) runs here on one device. It may be split over ranks (each rank samples a share of the fixed
per-class noise, rank 0 gathers) — not done. Measured on mnist-extended, evaluation is 12–34 % of a method's run;
at the paper's protocol (≈ 45k samples × 1,000 steps) it would dominate, and there the grid's run-level parallelism
(one run per device, ``unlearnbench launch``) is what spreads it today.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.foundation.cache import cache_lock, config_hash, load_or_build, to_jsonable, write_json_atomic
from unlearnbench.foundation.config import ConfigError, Profile, load_profile
from unlearnbench.foundation.cost import format_seconds
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.pretraining import (
    data_fingerprint,
    diffusion_dir,
    load_original,
    original_identity,
    original_source,
)
from unlearnbench.foundation.provenance import (
    code_fingerprint,
    environment,
    hardware,
    hardware_label,
    normalised_source_hash,
    tensors_hash,
)
from unlearnbench.foundation.trainer import configure_threads, data_parallel, per_device_batch, pick_device
from unlearnbench.foundation.yardstick import Yardstick, load_yardstick
from unlearnbench.methods.isolation import unlearn_isolated
from unlearnbench.metrics import PROTOCOL_VERSION
from unlearnbench.orchestration.leaderboard import EXCESS_OF, write_leaderboard
from unlearnbench.orchestration.progress import StageLog
from unlearnbench.orchestration.records import RunRecord, load_record, select_records
from unlearnbench.orchestration.reference import ORIGINAL, ORIGINAL_DIR, REFERENCE_ROOT
from unlearnbench.orchestration.report_page import write_report_page
from unlearnbench.orchestration.run_logging import log_final, log_leaderboard, open_logger


def method_identity(cls: type) -> dict[str, Any]:
    """What identifies a method's numbers in run keys besides its name and resolved options: its ``version``; for a
    plugin (a class outside ``unlearnbench.methods``, with no version discipline) also the hash of its source file
    with docstrings, comments and formatting left out."""
    identity: dict[str, Any] = {"version": int(getattr(cls, "version", 1))}
    if not cls.__module__.startswith("unlearnbench.methods."):
        identity["source"] = normalised_source_hash(cls)
    return identity


@dataclass
class RunSpec:
    """One cell of the benchmark grid.

    ``label`` is the leaderboard row (a method's canonical name, or a variant's name); ``method`` the canonical
    method name; ``overrides`` a variant's options on top of ``unlearning.method_args``.
    """

    label: str
    forget_class: int
    seed: int
    method: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    method_config: dict[str, Any] = field(default_factory=dict)
    method_identity: dict[str, Any] = field(default_factory=dict)


@dataclass
class Workspace:
    """What the runs of one process share (:meth:`BenchmarkRunner.workspace`)."""

    data: UnlearningDataModule
    original: ConditionalDiffusion
    evaluator: Any
    device: torch.device
    context: dict[str, Any]


class BenchmarkRunner:
    """Runs a profile end to end. ``pretrained`` points at the user's own original-model directory;
    ``yardstick_command``: the command a missing yardstick's error names (default: the one of this profile's name;
    a study passes its point's base profile and settings)."""

    def __init__(self, profile: Profile, force: bool = False, pretrained: str | None = None,
                 yardstick_command: str | None = None) -> None:
        self.profile = profile
        self.yardstick_command = yardstick_command
        self.force = force
        self.pretrained = pretrained
        self.out_dir = Path(profile.runtime.output_dir) / profile.name
        self.runs_dir = self.out_dir / "runs"
        self.grids_dir = self.out_dir / "grids"
        self.locks_dir = self.out_dir / ".locks"  # one lock per run: two workers never compute one run twice
        configure_threads(profile.runtime)  # before any key: the CPU thread count is part of them
        self.device = pick_device(profile.runtime)
        self._protocol_key: str | None = None
        self._yardstick: Yardstick | None = None
        self._original_samples = None  # the original's sample set: drawn once, scored for every forget class
        self.plan_cache: list[RunSpec] = []  # the last plan made (Retrain's runs: the attacks' reference)

    def yardstick(self) -> Yardstick:
        """The committed evaluation networks of the profile's data (loaded once, floor-checked)."""
        if self._yardstick is None:
            self._yardstick = load_yardstick(self.profile, command=self.yardstick_command)
        return self._yardstick

    # -- keys ---------------------------------------------------------------------------------------------------
    def environment(self) -> dict[str, Any]:
        return environment(self.device, self.profile.runtime.precision)

    def protocol_key(self) -> str:
        """Everything shared by all runs of the profile: ``PROTOCOL_VERSION``, data (configuration and content),
        the original's identity (:func:`~unlearnbench.foundation.pretraining.original_identity`), the sampler (every
        option), the yardstick's weight hash, evaluation, environment (hardware, precision, libraries) and how fits
        run (process isolation, devices). Not the suite's code: see :mod:`unlearnbench.foundation.provenance`."""
        if self._protocol_key is None:
            p = self.profile
            self._protocol_key = config_hash(PROTOCOL_VERSION, p.data, data_fingerprint(p), p.unet,
                                             original_identity(p, self.pretrained), p.sampler,
                                             self.yardstick().fingerprint, p.evaluation, p.seed, self.environment(),
                                             {"isolate_runs": p.runtime.isolate_runs} | data_parallel(p.runtime))
        return self._protocol_key

    def run_key(self, spec: RunSpec) -> str:
        """The protocol key, the row, the method's name, identity (its ``version``; a plugin's normalised source
        too) and resolved options, the budget, the forget class and the seed."""
        budget = {"steps": self.profile.unlearning.steps, "batch_size": self.profile.unlearning.batch_size}
        return config_hash(self.protocol_key(), spec.label, spec.method, spec.method_config, spec.method_identity,
                           budget, spec.forget_class, spec.seed)

    def record_path(self, spec: RunSpec) -> Path:
        name = spec.label.replace(":", "_").replace("/", "_")
        return self.runs_dir / f"{name}__f{spec.forget_class}__s{spec.seed}__{spec.key}.json"

    # -- the grid ----------------------------------------------------------------------------------------------
    def plan(self, num_classes: int) -> list[RunSpec]:
        from unlearnbench.methods import get_method, method_config_for, resolve_entry

        u = self.profile.unlearning
        for c in u.forget_classes:
            if not 0 <= c < num_classes:
                raise ValueError(f"unlearning.forget_classes contains {c}, but the data has classes "
                                 f"0..{num_classes - 1}")
        entries = [resolve_entry(name, self.profile) for name in u.methods]
        entries.sort(key=lambda entry: entry[1] != "retrain")  # Retrain first: every attack's reference
        labels = [label for label, _, _ in entries]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"unlearning.methods lists one method twice (as {labels}): a class path and a "
                              "registered name of the same class are one method")
        specs = []
        for c in u.forget_classes:
            for seed in u.seeds:
                if u.include_original:
                    specs.append(RunSpec(ORIGINAL, c, seed, method=ORIGINAL))
                for label, method, overrides in entries:
                    specs.append(RunSpec(label, c, seed, method=method, overrides=overrides,
                                         method_config=method_config_for(method, self.profile, overrides),
                                         method_identity=method_identity(get_method(method))))
        for s in specs:
            s.key = self.run_key(s)
        self.plan_cache = specs
        return specs

    # -- main entry --------------------------------------------------------------------------------------------
    def validate(self) -> tuple[UnlearningDataModule, list[RunSpec]]:
        """Everything that can be checked before work: methods and their arguments, forget classes, the data, the
        user's own original model (from its config alone) and that the output and cache folders are writable.
        Returns (data, grid)."""
        from unlearnbench.methods import check_method_args

        check_method_args(self.profile)
        devices = self.profile.runtime.devices
        per_device_batch(self.profile.unlearning.batch_size, devices, "unlearning.batch_size")
        per_device_batch(self.profile.pretrain.batch_size, devices, "pretrain.batch_size")
        self.yardstick()
        check_output_dir(self.out_dir)
        check_writable(Path(self.profile.runtime.cache_dir).expanduser(), "runtime.cache_dir / --cache-dir")
        data = UnlearningDataModule(self.profile.data, batch_size=self.profile.unlearning.batch_size,
                                    seed=self.profile.seed)
        if self.pretrained:
            ConditionalDiffusion.check_checkpoint(self.pretrained, data.num_classes, self.profile.data.image_size,
                                                  data.channels)
        return data, self.plan(data.num_classes)

    def status(self, spec: RunSpec) -> str:
        """``done`` (a record with the run's key and status ``ok``), ``failed`` (a failed record: retried on the next
        run) or ``pending`` (no readable record)."""
        status = load_record(self.record_path(spec)).get("status")
        return "done" if status == "ok" else "failed" if status else "pending"

    def pending(self, specs: list[RunSpec]) -> list[RunSpec]:
        """The runs to compute: no record with their key, or a failed one (retried); all with ``force``."""
        return [s for s in specs if self.force or self.status(s) != "done"]

    def listing(self, specs: list[RunSpec]) -> list[dict[str, Any]]:
        """``unlearnbench list``: one row per planned run (key, row label, forget class, seed, status)."""
        return [{"key": s.key, "label": s.label, "forget_class": s.forget_class, "seed": s.seed,
                 "status": self.status(s)} for s in specs]

    def select(self, specs: list[RunSpec], keys: list[str]) -> list[RunSpec]:
        """The runs of the plan with these keys, in the given order; ConfigError naming ``unlearnbench list`` for a
        key that is not in the plan (keys hash the settings, versions and hardware, so a key made elsewhere may
        not be)."""
        by_key = {s.key: s for s in specs}
        unknown = [k for k in keys if k not in by_key]
        if unknown:
            name = self.profile.name
            raise ConfigError(f"no run with key {', '.join(unknown)} in the plan of profile {name} on this machine "
                              f"({hardware_label(hardware(self.device))}); see "
                              f"`unlearnbench list --profile {name}` with the same options")
        return [by_key[k] for k in dict.fromkeys(keys)]

    def machine_text(self) -> str:
        """``hardware: …; precision …; code …``: what every key of this plan carries besides the settings and
        versions, and the code that will make its records (provenance, not keyed)."""
        return (f"hardware: {hardware_label(hardware(self.device))}; precision {self.profile.runtime.precision}; "
                f"code {code_fingerprint()}")

    def run(self) -> list[dict]:
        """Every pending run of the plan, then the leaderboard; returns the plan's records."""
        return self.run_keys(None)

    def run_keys(self, keys: list[str] | None = None) -> list[dict]:
        """Run the plan's runs with these keys (``None``: the whole plan, then its leaderboard).

        The original is loaded or trained as usual and each run's record is written atomically. A run is computed
        under its lock (``<output>/.locks/``) after looking again for its record, so two workers never compute the
        same run twice. With ``keys`` nothing else is written (``unlearnbench leaderboard`` rebuilds the table);
        returns the records of those runs, or of the whole plan when ``keys`` is ``None``.
        """
        p = self.profile
        stages = StageLog(total=4)
        stages.begin(f"data: {p.data.source} at {p.data.image_size}px")
        data, specs = self.validate()
        chosen = specs if keys is None else self.select(specs, keys)
        x_train, _ = data.split("train")
        stages.end(f"{len(x_train)} training images, {data.num_classes} classes")
        write_json_atomic(self.out_dir / "config.json", {"profile": p, "pretrained": self.pretrained})
        todo = self.pending(chosen)
        retried = sum(1 for s in todo if self.record_path(s).is_file())
        scope = f"{len(specs)} runs in the grid" if keys is None else f"{len(chosen)} of the {len(specs)} runs chosen"
        stages.say(f"{scope}, {len(chosen) - len(todo)} already done, {len(todo)} to run"
                   + (f" ({retried} failed before: retried)" if retried and not self.force else ""))
        stages.say(f"{self.machine_text()}; results in {self.out_dir}")

        stages.begin("evaluation networks (committed yardstick)")
        yardstick = self.yardstick()
        stages.end(yardstick_summary(yardstick))

        source = original_source(p, self.pretrained)
        stages.begin("original model" + (f" from {source}" if source else ""))
        original, orig_meta = load_original(p, self.pretrained)
        if source:
            stages.end(f"loaded (weights {orig_meta['weights']})")
        else:
            stages.end(f"{'cached' if orig_meta.get('cache_hit') else 'trained'} "
                       f"(training took {orig_meta.get('train_seconds', '?')} s)")

        stages.begin(f"unlearning and evaluation: {len(todo)} runs")
        todo = run_order(todo)
        workers = self.workers_for(len(todo))
        if workers > 1:
            from unlearnbench.orchestration.pool import run_in_workers

            stages.say(f"{workers} runs at once (runtime.workers), {torch.get_num_threads()} CPU thread(s) each; "
                       "Retrain first")
            run_in_workers(self, todo, workers, stages, data.class_names)
        else:
            workspace = self.workspace(data, original)
            for i, spec in enumerate(todo, 1):
                stages.say(self.run_line(i, len(todo), spec, data.class_names))
                record = self.compute(spec, workspace)
                stages.say(f"  {spec.label}: " + run_summary(record))
        stages.end(f"{len(todo)} runs")

        if keys is not None:
            return [load_record(self.record_path(s)) for s in chosen]
        protocol = self.protocol_text(specs)
        records, _ = write_plan_leaderboard(self.out_dir, p.name, {s.key for s in specs}, protocol=protocol,
                                            stream=stages.stream)
        log_leaderboard(p, self.out_dir, records, protocol)
        stages.say(f"finished in {format_seconds(stages.elapsed())}; results in {self.out_dir}")
        return records

    def workers_for(self, runs: int) -> int:
        """How many runs to compute at once: ``runtime.workers``, at most one per run and, on CUDA, one per GPU."""
        workers = min(self.profile.runtime.workers, runs)
        if self.device.type == "cuda":
            workers = min(workers, torch.cuda.device_count())
        return max(1, workers)

    def workspace(self, data: UnlearningDataModule, original: ConditionalDiffusion) -> Workspace:
        """What every run of this process shares: the data, the original, the one evaluator, the device and the
        record's context (hardware, the original's weight hash)."""
        device = self.device
        return Workspace(data=data, original=original, evaluator=self.evaluator(self.yardstick(), data, device),
                         device=device, context={"hardware": hardware(device),
                                                 "original_weights": tensors_hash(original.state_dict().items())})

    @staticmethod
    def run_line(index: int, total: int, spec: RunSpec, class_names: list[str]) -> str:
        """``run i/N: <row>, forget class c (name), seed s [key]``."""
        return (f"run {index}/{total}: {spec.label}, forget class {spec.forget_class} "
                f"({class_names[spec.forget_class]}), seed {spec.seed} [{spec.key}]")

    def compute(self, spec: RunSpec, ws: Workspace) -> dict:
        """One run under its lock (``<output>/.locks/``), unless another worker wrote its record meanwhile; returns
        the record."""
        return load_or_build(self.locks_dir / self.record_path(spec).name, lambda: self._finished(spec),
                             lambda: self.run_one(spec, ws.original, ws.data, ws.evaluator, ws.device, ws.context))

    def _finished(self, spec: RunSpec) -> dict | None:
        """The run's ``ok`` record if another worker wrote it meanwhile (``None`` with ``force``)."""
        record = {} if self.force else load_record(self.record_path(spec))
        return record if record.get("status") == "ok" else None

    def evaluator(self, yardstick: Yardstick, data: UnlearningDataModule, device: torch.device):
        """The profile's one :class:`unlearnbench.metrics.evaluator.Evaluator` (its protocol, yardstick and device)."""
        from unlearnbench.metrics.evaluator import Evaluator

        return Evaluator(yardstick, data, self.profile.sampler, self.profile.evaluation,
                         cache_dir=self.profile.runtime.cache_dir, device=device,
                         progress=self.profile.runtime.progress)

    def original_samples(self, evaluator, original: ConditionalDiffusion):
        """The original's samples, max(N, M) of every class: drawn once, then a prefix of them is scored for every
        forget class (and every request prefix of a continual sequence): nothing is sampled twice."""
        if self._original_samples is None:
            self._original_samples = evaluator.generate(original.to(evaluator.device), evaluator.all_classes_counts(),
                                                        self.profile.evaluation.seed, desc="original, every class")
        return self._original_samples

    def protocol_text(self, specs: list[RunSpec]) -> str:
        """The protocol line printed with the tables (the code that made the records is named by the leaderboard,
        from the records themselves: :func:`~unlearnbench.orchestration.leaderboard.write_leaderboard`)."""
        p = self.profile
        e = p.evaluation
        dropout = {}
        for s in specs:
            if s.method_config:
                dropout.setdefault(s.label, (s.method_config.get("forget_label_dropout"),
                                             s.method_config.get("label_dropout")))
        dropout_text = ", ".join(f"{k} {f:g}/{r:g}" for k, (f, r) in dropout.items() if f is not None and r is not None)
        y = self.yardstick()
        relearn = attacks_text(e) if e.relearn_steps > 0 else "no attacks"
        return (f"Profile `{p.name}`: {p.data.source} {p.data.image_size}px; sampler {p.sampler.describe()}; "
                f"{e.forget_samples} forget-class samples, {e.retain_samples_per_class} samples per retained class, "
                f"eval seed {e.seed}; yardstick {y.fingerprint} ({y.directory.name}: {yardstick_summary(y)}); "
                f"quality (MMD, KID, FID, recall, coverage) in the {e.fid_features}'s features against the real test "
                f"images of each class, KID over {e.kid_subsets} subsets of half the generated count; {relearn}; "
                f"unlearning budget {p.unlearning.steps} steps at batch {p.unlearning.batch_size}; "
                f"label dropout on forget/retain passes: {dropout_text or 'n/a'}; "
                f"forget classes {p.unlearning.forget_classes}, seeds {p.unlearning.seeds}; "
                f"precision {p.runtime.precision}; hardware {hardware_label(hardware(self.device))}"
                + (f", {p.runtime.workers} runs at once" if p.runtime.workers > 1 else "") + ".")

    # -- one run -----------------------------------------------------------------------------------------------
    def run_one(self, spec: RunSpec, original: ConditionalDiffusion, data: UnlearningDataModule, evaluator,
                device: torch.device, context: dict) -> dict:
        """Unlearn one run (data-parallel when ``runtime.devices`` > 1), evaluate it here on one device, and write
        its record once (see the module docstring)."""
        from unlearnbench.methods import unlearn

        p = self.profile
        rec = RunRecord.start(
            self.record_path(spec), run_key=spec.key, protocol_key=self.protocol_key(), profile=p.name,
            label=spec.label, method=spec.method, seed=spec.seed, method_identity=spec.method_identity,
            method_config=spec.method_config, unlearning_steps=p.unlearning.steps if spec.method != ORIGINAL else 0,
            batch_size=p.unlearning.batch_size, precision=p.runtime.precision, hardware=context["hardware"],
            forget_class=spec.forget_class, forget_class_name=data.class_names[spec.forget_class],
            world_size=p.runtime.devices, workers=p.runtime.workers,
            per_device_batch_size=per_device_batch(p.unlearning.batch_size, p.runtime.devices,
                                                   "unlearning.batch_size"),
            device=str(device), original_weights=context["original_weights"],
            yardstick_directory=self.yardstick().directory.name,
            classifier_accuracy=self.yardstick().card["metrics"]["classifier_accuracy"])
        logger = open_logger(p, self.out_dir, f"{spec.label}-f{spec.forget_class}-s{spec.seed}",
                             {"profile": to_jsonable(p), **rec.fields}, job_type=spec.label)
        grid_path = self.grids_dir / f"{self.record_path(spec).stem.rsplit('__', 1)[0]}.png"
        with rec.capture(f"{spec.label} on forget class {spec.forget_class}"):
            L.seed_everything(spec.seed, verbose=False)
            if spec.method == ORIGINAL:
                model = original
                rec.add_no_unlearning()
                result = evaluator.score(self.original_samples(evaluator, model), spec.forget_class,
                                         p.evaluation.seed, grid_path)
            else:
                if p.runtime.isolate_runs:
                    outcome = unlearn_isolated(p, self.pretrained, original, spec.method, spec.forget_class,
                                               spec.seed, spec.overrides, logger=logger)
                    note = ""
                else:
                    outcome = unlearn(spec.method, original, spec.forget_class, data, p, seed=spec.seed,
                                      overrides=spec.overrides, logger=logger)
                    note = " (in-process: depends on run order)"
                if outcome.world_size > 1:  # ddp_spawn's workers are other processes than the measured one
                    note += f" (this process only: {outcome.world_size} data-parallel workers)"
                model = outcome.model
                rec.add_outcome(outcome, note)
                result = evaluator.evaluate(model.to(device), spec.forget_class, seed=p.evaluation.seed,
                                            grid_path=grid_path)
            # every row is attacked, the original and Retrain too: they are the attacks' calibration
            attacks = evaluator.attacks(model, spec.forget_class, p.runtime, p.evaluation.seed, spec.seed,
                                        label_dropout=p.pretrain.label_dropout)
            rec.add_scores({**attacks, **self.excess_over_retrain(spec, attacks)})
            evaluation = result.as_dict()
            evaluation["eval_seed"] = evaluation.pop("seed")  # the record's seed is the run seed
            rec.add_scores({**evaluation, "grid_path": os.path.relpath(grid_path, self.out_dir)})
        record = rec.fields  # written: local results first, W&B can never lose them
        log_final(p, logger, record, grid_path)
        return record

    def excess_over_retrain(self, spec: RunSpec, attacks: dict) -> dict:
        """Each attack score minus Retrain's under the same attack (same forget class and seed), when Retrain's
        record is written (the plan runs Retrain first; the leaderboard recomputes it from the records either way),
        with the key of that Retrain record. A Retrain run that another worker is computing is waited for (its
        lock), so a plan's records do not depend on how many runs it computed at once."""
        retrain = next((s for s in self.plan_cache if s.method == "retrain" and s.forget_class == spec.forget_class
                        and s.seed == spec.seed), None)
        if retrain is None or spec.method == "retrain":
            return {}
        reference = load_record(self.record_path(retrain))
        if reference.get("status") != "ok":
            with cache_lock(self.locks_dir / self.record_path(retrain).name):  # free unless Retrain is running
                reference = load_record(self.record_path(retrain))
        if reference.get("status") != "ok":
            return {}
        from unlearnbench.metrics.relearning import curve_excess

        out = {"retrain_run_key": retrain.key}
        if "relearn_curve" in attacks and "relearn_curve" in reference:
            out["relearn_excess"] = curve_excess(attacks["relearn_curve"], reference["relearn_curve"])
        for excess, score in EXCESS_OF.items():
            if score in attacks and score in reference:
                out[excess] = attacks[score] - reference[score]
        return out

    # -- records -----------------------------------------------------------------------------------------------
    def load_records(self, specs: list[RunSpec]) -> tuple[list[dict], int]:
        """(the records of the current plan, how many other records the runs folder holds: never shown)."""
        return select_records(self.runs_dir, {s.key for s in specs})


def run_order(specs: list[RunSpec]) -> list[RunSpec]:
    """The order runs are computed in, one or several at a time: every Retrain first (the longest runs, and every
    other run's attack excess is read against its Retrain's record), then the plan's order."""
    return sorted(specs, key=lambda s: s.method != "retrain")


def make_runner(profile: str, overrides: list[str] | None = None, pretrained: str | None = None,
                force: bool = False) -> BenchmarkRunner:
    """The runner of a profile (a bundled name or a .yaml path) with ``key=value`` overrides: what the command line
    and every launched job build, so that they plan the same runs."""
    return BenchmarkRunner(load_profile(profile, list(overrides or [])), force=force, pretrained=pretrained)


def write_plan_leaderboard(out_dir: str | Path, profile_name: str, keys: set[str], protocol: str = "",
                           stream=None) -> tuple[list[dict], int]:
    """Write the leaderboard of the runs with these keys from their stored records; returns (records, number of
    records of other settings). Records are read and every table written under ``<out_dir>/leaderboard.lock``, so
    two workers finishing at once leave the tables of one consistent set of records (the later one's). The web page
    (``report.html``, :mod:`~unlearnbench.orchestration.report_page`) is rewritten with them and its path printed."""
    out_dir = Path(out_dir)
    with cache_lock(out_dir / "leaderboard"):
        records, skipped = select_records(out_dir / "runs", keys)
        table = write_leaderboard(out_dir, records, protocol=protocol, skipped=skipped,
                                  reference_dir=REFERENCE_ROOT / profile_name, stream=stream)
        if len(table):
            page = write_report_page(out_dir, REFERENCE_ROOT / profile_name)
            print(f"Page (open it in a browser): {page}", file=stream or sys.stdout, flush=True)
    return records, skipped


def rebuild_leaderboard(runner: BenchmarkRunner) -> int:
    """``unlearnbench leaderboard``: the current plan's table from stored records, the reference beside it (with
    the protocol line saved by the last full run or launch)."""
    _, specs = runner.validate()
    records, skipped = runner.load_records(specs)
    if not records:
        raise ConfigError(f"no records of the current plan under {runner.runs_dir} ({skipped} of other settings, "
                          f"versions or hardware); run `unlearnbench run --profile {runner.profile.name}` first")
    write_plan_leaderboard(runner.out_dir, runner.profile.name, {s.key for s in specs})
    return 0


def publish(runner: BenchmarkRunner, reference_root: Path = REFERENCE_ROOT, source: str | Path | None = None) -> int:
    """``unlearnbench publish``: replace ``results/reference/<profile>/`` with the current plan's results (records,
    grids, leaderboard files) and the original model's weights (``original/``, which ``unlearnbench verify`` reruns
    from), refusing an incomplete plan or one with failed runs.

    ``source``: take the plan's records from another published reference made with the same protocol (the same data,
    UNet, pretraining, sampler, evaluation, seed and budget, checked in its ``config.json``) instead of the local
    results, matched by row, forget class, seed and resolved method options; no run is recomputed and every record
    keeps the code and hardware that made it (the ``mnist`` reference is ``mnist-extended``'s rows of its plan).
    """
    _, specs = runner.validate()
    if source is None:
        records, _ = runner.load_records(specs)
        shipped = original_source(runner.profile, runner.pretrained)  # yours, or the committed one, else trained
        src_dir, original = runner.out_dir, Path(shipped) if shipped else diffusion_dir(runner.profile)
        paths = [runner.record_path(s) for s in specs]
    else:
        src_dir = Path(source)
        records, paths = records_of_plan(runner, specs, src_dir)
        original = src_dir / ORIGINAL_DIR
    missing = len(specs) - len(records)
    failed = [r["method"] for r in records if r.get("status") != "ok"]
    if missing or failed:
        raise ConfigError(f"the plan is not complete in {src_dir} ({missing} runs missing, failed: "
                          f"{failed or 'none'}); run `unlearnbench run --profile {runner.profile.name}` first")
    if not (original / "metadata.json").is_file():
        raise ConfigError(f"no original model in {original}: the reference must ship it for `unlearnbench verify`")
    final = Path(reference_root) / runner.profile.name
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.partial")
    try:
        (tmp / "runs").mkdir(parents=True)
        for path in paths:
            shutil.copy2(path, tmp / "runs" / path.name)
        for record in records:
            if record.get("grid_path"):
                (tmp / record["grid_path"]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src_dir / record["grid_path"], tmp / record["grid_path"])
        shutil.copytree(original, tmp / ORIGINAL_DIR, ignore=shutil.ignore_patterns("*.lock", "*.checkpoints"))
        if source is None:
            for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "leaderboard.png",
                         "leaderboard_pairs.csv", "protocol.txt", "runs.csv", "config.json"):
                if (runner.out_dir / name).is_file():
                    shutil.copy2(runner.out_dir / name, tmp / name)
        else:
            write_json_atomic(tmp / "config.json", {"profile": runner.profile, "pretrained": None,
                                                    "records_from": str(src_dir.name)})
            write_leaderboard(tmp, records, protocol=runner.protocol_text(specs))
        write_report_page(tmp, title=f"{runner.profile.name} (committed reference)")
        old = final.with_name(f".{final.name}.{uuid.uuid4().hex}.old")
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"published {len(records)} records of {runner.profile.name} to {final}")
    return 0


PROTOCOL_SECTIONS = ("data", "unet", "sampler", "evaluation", "seed")


def records_of_plan(runner: BenchmarkRunner, specs: list[RunSpec], source: Path) -> tuple[list[dict], list[Path]]:
    """The records of ``source`` (a published reference) that are this plan's runs: same protocol (its
    ``config.json``), row, forget class, seed and resolved options. ConfigError naming what differs."""
    published = json.loads((source / "config.json").read_text())["profile"]
    mine = to_jsonable(runner.profile)
    differ = [k for k in PROTOCOL_SECTIONS if published.get(k) != mine.get(k)]
    differ += [f"pretrain.{k}" for k, v in to_jsonable(runner.profile.pretrain.recipe()).items()
               if published["pretrain"].get(k) != v]
    differ += [f"unlearning.{k}" for k in ("steps", "batch_size")
               if published["unlearning"][k] != mine["unlearning"][k]]
    if differ:
        raise ConfigError(f"{source} was made with other settings ({', '.join(differ)}): its records are not this "
                          "plan's")
    by_row = {}
    for path in sorted((source / "runs").glob("*.json")):
        r = load_record(path)
        by_row[(r.get("method"), r.get("forget_class"), r.get("seed"), r.get("method_config"))] = (r, path)
    chosen = [by_row.get((s.label, s.forget_class, s.seed,
                          json.dumps(to_jsonable(s.method_config), sort_keys=True) if s.method != ORIGINAL else "{}"))
              for s in specs]
    found = [c for c in chosen if c is not None]
    return [r for r, _ in found], [p for _, p in found]


def check_writable(directory: Path, what: str) -> None:
    """Create ``directory`` and write a probe file in it; ConfigError naming the folder and the setting if not."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-probe-{uuid.uuid4().hex}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"cannot write to {directory} ({err.strerror or err}); choose another folder with "
                          f"{what}") from None


def check_output_dir(out_dir: Path) -> None:
    """The committed reference results are read-only to the runner; the output folder must be writable."""
    resolved = out_dir.expanduser().resolve()
    if resolved == REFERENCE_ROOT.resolve() or REFERENCE_ROOT.resolve() in resolved.parents:
        raise ConfigError(f"{out_dir} is inside the committed reference results ({REFERENCE_ROOT}), which runs "
                          "never write: run into results/local (the default), then `unlearnbench publish`")
    check_writable(out_dir, "runtime.output_dir / --output-dir")


def run_summary(record: dict) -> str:
    if record.get("status") != "ok":
        return f"FAILED ({record.get('error')})"
    relearned = (f", relearned up to {record['relearn_max']:.1%}" if "relearn_max" in record else "")
    relearned += (f", inverted {record['inversion_recognised']:.1%}" if "inversion_recognised" in record else "")
    return (f"recognised {record['recognised_rate']:.1%} (dominant reading {record['dominant_class_name']} "
            f"{record['dominant_share']:.0%}){relearned}, UA {record['ua']:.1%}, retained acc "
            f"{record['retain_accuracy']:.1%}, MMD {record.get('mmd', float('nan')):.4f}, KID "
            f"{1e3 * record['kid']:.2f}e-3, unlearning "
            f"{record['total_seconds']:.1f} s")


def attacks_text(e) -> str:
    """The attacks of an evaluation protocol in one phrase (which set, budgets, images, readings)."""
    from unlearnbench.metrics.evaluator import attack_set
    from unlearnbench.metrics.relearning import reading_steps

    n = e.relearn_samples or e.forget_samples
    parts = [f"relearning: Adam lr {e.relearn_lr:g} on the first {e.relearn_images} training images of the forget "
             f"class, read at steps {reading_steps(e.relearn_readings, e.relearn_steps)}, score = max over the curve"]
    if e.inversion_steps > 0:
        parts.append(f"class-embedding inversion: {e.inversion_steps} Adam steps at lr {e.inversion_lr:g} on one "
                     "embedding row (from row c_f and from the null row), weights frozen")
    if e.no_forget_steps > 0:
        parts.append(f"no forget data: {e.no_forget_steps} steps on {e.no_forget_images_per_class} images of every "
                     "retained class")
    if e.null_samples > 0:
        parts.append(f"unconditional leakage: {e.null_samples} null-class samples")
    return (f"{attack_set(e)} attack set ({'; '.join(parts)}; {n} forget-class samples per reading; "
            f"collapsed below {e.collapse_floor:.0%} retained accuracy)")


def yardstick_summary(yardstick: Yardstick) -> str:
    """One line of the yardstick's measured accuracies (from its card)."""
    m = yardstick.card["metrics"]
    return (f"classifier {m['classifier_accuracy']:.2%} on clean test images; reader {m['reader_accuracy']:.2%} clean, "
            f"{m['reader_accuracy_sigma0.5']:.2%} at noise sigma 0.5, pure noise read as unrecognisable "
            f"{m['reader_unrecognisable_gaussian_noise']:.2%}")
