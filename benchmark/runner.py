"""The benchmark runner: identical setups for every (method × forget class × seed), one evaluator, resumable.

For a profile it prepares the data, trains or loads the cached evaluation classifier and original model, then
for every run unlearns from the *same* original weights with the *same* trainer settings, evaluates with the one
:class:`metrics.evaluator.Evaluator`, and writes one JSON record per run atomically under
``<output_dir>/<profile>/runs/``. A rerun skips records whose key (a hash of everything that defines the run)
already exists; ``force`` recomputes. The leaderboard is rebuilt from the records at the end.
"""

from __future__ import annotations

import json
import os
import platform
import traceback
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
import torch

from benchmark.cache import config_hash, to_jsonable, write_json_atomic
from benchmark.classifier import EvalClassifier, train_or_load_classifier
from benchmark.config import Profile
from benchmark.diffusion import ConditionalDiffusion
from benchmark.leaderboard import write_leaderboard
from benchmark.pretraining import hardware, library_versions, load_original
from benchmark.progress import StageLog, format_seconds
from benchmark.trainer import configure_threads, pick_device
from datasets import UnlearningDataModule

ORIGINAL = "original"  # the reference row: the original model, nothing forgotten


@dataclass
class RunSpec:
    """One cell of the benchmark grid."""

    method: str
    forget_class: int
    seed: int
    key: str = ""
    method_config: dict[str, Any] = field(default_factory=dict)


class BenchmarkRunner:
    """Runs a profile end to end. ``pretrained`` points at the user's own original-model directory."""

    def __init__(self, profile: Profile, force: bool = False, pretrained: str | None = None) -> None:
        self.profile = profile
        self.force = force
        self.pretrained = pretrained
        self.out_dir = Path(profile.runtime.output_dir) / profile.name
        self.runs_dir = self.out_dir / "runs"
        self.grids_dir = self.out_dir / "grids"

    # -- keys ---------------------------------------------------------------------------------------------------
    def protocol_key(self) -> str:
        """Everything shared by all runs of the profile: data, original, sampler, classifier, evaluation."""
        p = self.profile
        classifier = {k: v for k, v in to_jsonable(p.classifier).items() if k != "min_accuracy"}
        return config_hash(p.data, p.unet, p.pretrain, p.sampler, classifier, p.evaluation, p.seed,
                           p.runtime.precision, self.pretrained)

    def run_key(self, spec: RunSpec) -> str:
        budget = {"steps": self.profile.unlearning.steps, "batch_size": self.profile.unlearning.batch_size}
        return config_hash(self.protocol_key(), spec.method, spec.method_config, budget, spec.forget_class,
                           spec.seed)

    def record_path(self, spec: RunSpec) -> Path:
        name = spec.method.replace(":", "_").replace("/", "_").replace(".", "_")
        return self.runs_dir / f"{name}__f{spec.forget_class}__s{spec.seed}__{spec.key}.json"

    # -- the grid ----------------------------------------------------------------------------------------------
    def plan(self, num_classes: int) -> list[RunSpec]:
        from methods import method_config_for

        u = self.profile.unlearning
        for c in u.forget_classes:
            if not 0 <= c < num_classes:
                raise ValueError(f"unlearning.forget_classes contains {c}, but the data has classes "
                                 f"0..{num_classes - 1}")
        specs = []
        for c in u.forget_classes:
            for seed in u.seeds:
                if u.include_original:
                    specs.append(RunSpec(ORIGINAL, c, seed))
                for name in u.methods:
                    specs.append(RunSpec(name, c, seed, method_config=method_config_for(name, self.profile)))
        for s in specs:
            s.key = self.run_key(s)
        return specs

    # -- main entry --------------------------------------------------------------------------------------------
    def validate(self) -> tuple[UnlearningDataModule, list[RunSpec]]:
        """Check methods, method arguments and forget classes before any expensive work; returns (data, grid)."""
        from methods import get_method

        for name in self.profile.unlearning.methods:
            get_method(name)
        data = UnlearningDataModule(self.profile.data, batch_size=self.profile.unlearning.batch_size,
                                    seed=self.profile.seed)
        return data, self.plan(data.num_classes)

    def run(self) -> list[dict]:
        p = self.profile
        configure_threads(p.runtime)
        stages = StageLog(total=4)
        stages.begin(f"data: {p.data.source} at {p.data.image_size}px")
        data, specs = self.validate()
        x_train, _ = data.split("train")
        stages.end(f"{len(x_train)} training images, {data.num_classes} classes")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.out_dir / "config.json", {"profile": p, "pretrained": self.pretrained})
        todo = [s for s in specs if self.force or not self.record_path(s).is_file()]
        stages.say(f"{len(specs)} runs in the grid, {len(specs) - len(todo)} already done, {len(todo)} to run")

        stages.begin(f"evaluation classifier ({p.classifier.architecture})")
        classifier, cls_meta = train_or_load_classifier(p)
        stages.end(f"held-out accuracy {cls_meta['test_accuracy']:.2%} "
                   f"({'cached' if cls_meta['cache_hit'] else 'trained'})")

        stages.begin("original model" + (f" from {self.pretrained}" if self.pretrained else ""))
        original, orig_meta = load_original(p, self.pretrained)
        stages.end(f"{'cached' if orig_meta.get('cache_hit') else 'trained'} "
                   f"(training took {orig_meta.get('train_seconds', '?')} s)")

        stages.begin(f"unlearning and evaluation: {len(todo)} runs")
        device = pick_device(p.runtime)
        evaluator = self._evaluator(classifier, data, device)
        context = {"classifier": {k: cls_meta[k] for k in ("name", "test_accuracy")},
                   "hardware": hardware(), "versions": library_versions()}
        for i, spec in enumerate(todo, 1):
            stages.say(f"run {i}/{len(todo)}: {spec.method}, forget class {spec.forget_class} "
                       f"({data.class_names[spec.forget_class]}), seed {spec.seed}")
            record = self.run_one(spec, original, data, evaluator, device, context)
            stages.say(f"  {spec.method}: " + _summary(record))
        stages.end(f"{len(todo)} runs")

        records = self.load_records()
        write_leaderboard(self.out_dir, records, protocol=self.protocol_text(cls_meta), stream=stages.stream)
        stages.say(f"finished in {format_seconds(stages.elapsed())}; results in {self.out_dir}")
        return records

    def _evaluator(self, classifier: EvalClassifier, data: UnlearningDataModule, device: torch.device):
        from metrics.evaluator import Evaluator

        return Evaluator(classifier.to(device), data, self.profile.sampler, self.profile.evaluation,
                         cache_dir=self.profile.runtime.cache_dir, device=device,
                         progress=self.profile.runtime.progress)

    def protocol_text(self, cls_meta: dict) -> str:
        p = self.profile
        e = p.evaluation
        return (f"Profile `{p.name}`: {p.data.source} {p.data.image_size}px; sampler {p.sampler.describe()}; "
                f"{e.forget_samples} forget-class samples, {e.retain_samples_per_class} samples per retained class; "
                f"FID features: {e.fid_features} ({cls_meta['name']}, held-out accuracy "
                f"{cls_meta['test_accuracy']:.2%}); unlearning budget {p.unlearning.steps} steps at batch "
                f"{p.unlearning.batch_size}; forget classes {p.unlearning.forget_classes}, seeds {p.unlearning.seeds}; "
                f"precision {p.runtime.precision}.")

    # -- one run -----------------------------------------------------------------------------------------------
    def run_one(self, spec: RunSpec, original: ConditionalDiffusion, data: UnlearningDataModule, evaluator,
                device: torch.device, context: dict) -> dict:
        from methods import create_method, run_unlearning

        p = self.profile
        record: dict[str, Any] = {
            "run_key": spec.key, "profile": p.name, "method": spec.method, "forget_class": spec.forget_class,
            "forget_class_name": data.class_names[spec.forget_class], "seed": spec.seed,
            "method_config": json.dumps(to_jsonable(spec.method_config), sort_keys=True),
            "unlearning_steps": p.unlearning.steps if spec.method != ORIGINAL else 0,
            "batch_size": p.unlearning.batch_size, "device": str(device), "precision": p.runtime.precision,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "hostname": platform.node(), **{f"hw_{k}": v for k, v in context["hardware"].items()},
            **{f"version_{k}": v for k, v in context["versions"].items()},
            "classifier": context["classifier"]["name"],
            "classifier_accuracy": context["classifier"]["test_accuracy"],
        }
        logger = self._logger(spec, record)
        grid_path = self.grids_dir / f"{self.record_path(spec).stem.rsplit('__', 1)[0]}.png"
        try:
            L.seed_everything(spec.seed, verbose=False)
            if spec.method == ORIGINAL:
                model = original
                # nothing is unlearned: no time spent; memory is not measured for the reference row
                record.update(prepare_seconds=0.0, unlearn_seconds=0.0, peak_memory_mb=float("nan"),
                              memory_kind="not measured", cached=True)
            else:
                method = create_method(spec.method, original=original, forget_class=spec.forget_class, data=data,
                                       profile=p, seed=spec.seed)
                outcome = run_unlearning(method, logger=logger)
                model = outcome.model
                record.update(prepare_seconds=outcome.prepare_seconds, unlearn_seconds=outcome.unlearn_seconds,
                              peak_memory_mb=outcome.peak_memory_mb, memory_kind=outcome.memory_kind,
                              cached=outcome.cached, **{f"extra_{k}": v for k, v in outcome.extra.items()})
            result = evaluator.evaluate(model.to(device), spec.forget_class, seed=p.evaluation.seed,
                                        grid_path=grid_path)
            evaluation = result.as_dict()
            record["eval_seed"] = evaluation.pop("seed")  # the record's seed is the run seed
            record.update(evaluation)
            record["grid_path"] = os.path.relpath(grid_path, self.out_dir)
            record["status"] = "ok"
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # the leaderboard shows a failed method instead of hiding it
            record.update(status="failed", error=f"{type(err).__name__}: {err}")
            record["traceback"] = traceback.format_exc(limit=8)
            warnings.warn(f"{spec.method} failed on forget class {spec.forget_class}: {err}", stacklevel=1)
        record["total_seconds"] = float(record.get("prepare_seconds") or 0) + float(record.get("unlearn_seconds") or 0)
        record["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_json_atomic(self.record_path(spec), record)  # local results first: W&B can never lose them
        self._log_final(logger, record, grid_path)
        return record

    # -- loggers -----------------------------------------------------------------------------------------------
    def _logger(self, spec: RunSpec, record: dict):
        rt = self.profile.runtime
        name = f"{spec.method}-f{spec.forget_class}-s{spec.seed}"
        try:
            if rt.logger == "wandb" and rt.wandb_mode != "disabled":
                from lightning.pytorch.loggers import WandbLogger

                save_dir = self.out_dir / "wandb"
                save_dir.mkdir(parents=True, exist_ok=True)
                os.environ.setdefault("WANDB_SILENT", "true")
                return WandbLogger(project=rt.wandb_project, name=name, group=self.profile.name,
                                   save_dir=str(save_dir), offline=rt.wandb_mode == "offline",
                                   config={"profile": to_jsonable(self.profile), **record})
            if rt.logger == "csv":
                from lightning.pytorch.loggers import CSVLogger

                return CSVLogger(save_dir=str(self.out_dir / "csv_logs"), name=name)
        except Exception as err:
            warnings.warn(f"logger {rt.logger} unavailable ({err}); results are still written locally",
                          stacklevel=1)
        return False

    def _log_final(self, logger, record: dict, grid_path: Path) -> None:
        if not logger or self.profile.runtime.logger != "wandb":
            return
        try:
            import wandb

            run = logger.experiment
            scalars = {f"final/{k}": v for k, v in record.items()
                       if isinstance(v, int | float) and not isinstance(v, bool)}
            if grid_path.is_file():
                scalars["samples"] = wandb.Image(str(grid_path))
            run.log(scalars)
            run.summary.update({k: v for k, v in scalars.items() if k != "samples"})
            run.finish()
        except Exception as err:
            warnings.warn(f"W&B logging failed ({err}); the local record is safe", stacklevel=1)

    # -- records -----------------------------------------------------------------------------------------------
    def load_records(self) -> list[dict]:
        return load_records(self.runs_dir)


def load_records(runs_dir: str | Path) -> list[dict]:
    """Every finished run record under ``runs_dir`` (temporary files are ignored)."""
    records = []
    for path in sorted(Path(runs_dir).glob("*.json")):
        with open(path) as f:
            records.append(json.load(f))
    return records


def _summary(record: dict) -> str:
    if record.get("status") != "ok":
        return f"FAILED ({record.get('error')})"
    return (f"UA {record['ua']:.1%}, H {record['forget_entropy']:.2f}, retained acc "
            f"{record['retain_accuracy']:.1%}, FID {record['fid']:.2f}, unlearning "
            f"{record['total_seconds']:.1f} s")

