"""Re-score the previous reference's runs (commit 7b63fe9, results/reference/mnist before issue 9) with the noise-aware
reader: regenerate their exact forget-class samples and read them with the old classifier and the new yardstick.

The old reference's original and Retrain are loaded from its cache (a copy of `.cache/unlearnbench` at 7b63fe9);
SAFEMax runs from that original with the same method code, options and seed; samples are drawn with the old
protocol (one generator for labels [c_f] * 200 + [c] * 100 per retained class, DDIM-50, seed 1234). If the old
classifier's histogram equals the one in the old record, these are the very samples the old record scored.

    .venv/bin/python results/studies/safemax-rescored/rescore.py /path/to/old/cache

:func:`rescore` takes any profile, models and classifier: tests/test_result_scripts.py runs it on the tiny profile.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.foundation.classifier import EvalClassifier
from unlearnbench.foundation.config import ClassifierConfig, Profile, load_profile
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.yardstick import load_yardstick
from unlearnbench.methods import unlearn
from unlearnbench.metrics.forgetting import class_histogram, dominant_reading, recognised_rate, unlearning_accuracy
from unlearnbench.metrics.grid import save_sample_grid

HERE = Path(__file__).parent
# the old reference's protocol on the mnist profile: 2,500 pretraining steps, DDIM-50 (the method options are unchanged)
OLD_PROFILE_OVERRIDES = ["runtime.progress=false", "runtime.logger=none", "pretrain.steps=2500", "sampler.steps=50"]
OLD_CACHE_ENTRIES = {  # the old reference's models in a copy of its cache
    "original": "original/75dfe1c3da84d538",
    "retrain": "retrain/1e6a19fcb2c82557",
    "classifier": "classifier/bc6c875592891497/classifier.pt",
}
OLD_CLASSIFIER = ClassifierConfig(architecture="resnet18", model_kwargs={"layers": [1, 1, 1, 1]}, input_size=32)
OLD_RECORDS = {  # the old reference's forget-class histograms (results/reference/mnist/runs at 7b63fe9)
    "original": [185, 0, 0, 0, 0, 0, 11, 2, 2, 0],
    "safemax": [0, 1, 3, 9, 0, 0, 159, 23, 5, 0],
    "retrain": [0, 0, 3, 0, 0, 0, 112, 78, 7, 0],
}
FORGET_CLASS = 0
FORGET_SAMPLES = 200
SAMPLES_PER_RETAINED_CLASS = 100
SAMPLE_SEED = 1234


def old_protocol_labels(num_classes: int, forget_class: int, forget_samples: int, per_class: int) -> torch.Tensor:
    """The old protocol's labels, drawn by one generator: ``forget_samples`` × c_f, then ``per_class`` × each
    retained class in order."""
    retained = [c for c in range(num_classes) if c != forget_class]
    return torch.tensor([forget_class] * forget_samples + [c for c in retained for _ in range(per_class)])


def rescored_models(original: ConditionalDiffusion, retrain: ConditionalDiffusion, data: UnlearningDataModule,
                    profile: Profile, forget_class: int = FORGET_CLASS) -> dict[str, ConditionalDiffusion]:
    """The old record's three models: the original, SAFEMax run from it (the profile's options, run seed 0), and
    Retrain."""
    return {"original": original,
            "safemax": unlearn("safemax", original, forget_class, data, profile, seed=0).model,
            "retrain": retrain}


def rescore(profile: Profile, data: UnlearningDataModule, models: Mapping[str, ConditionalDiffusion],
            old_classifier: EvalClassifier, out_dir: str | Path, old_histograms: Mapping[str, Sequence[int]],
            forget_class: int = FORGET_CLASS, forget_samples: int = FORGET_SAMPLES,
            per_class: int = SAMPLES_PER_RETAINED_CLASS, seed: int = SAMPLE_SEED) -> dict:
    """Sample every model with the old protocol, read its forget-class samples with the profile's yardstick and with
    ``old_classifier``, and compare the latter's histogram with ``old_histograms[name]`` (the old record's):
    ``same_samples_as_old_record`` says whether these are the samples it scored. Writes a sample grid per model
    (``<name>__f<c>.png``) and ``rescored.json`` to ``out_dir``; returns the report."""
    out = Path(out_dir)
    yardstick = load_yardstick(profile)
    report: dict = {"forget_class": forget_class,
                    "protocol": f"old: {forget_samples} forget samples, {profile.sampler.describe()}, seed {seed}",
                    "yardstick": yardstick.fingerprint}
    labels = old_protocol_labels(data.num_classes, forget_class, forget_samples, per_class)
    for name, model in models.items():
        images = model.sample(labels, profile.sampler, seed=seed, batch_size=500)
        forget = images[:forget_samples]
        reader_logits = yardstick.reader.predict_logits(forget)
        top, share = dominant_reading(reader_logits)
        unrecognisable = reader_logits.shape[-1] - 1  # the reader's last output
        old_logits = old_classifier.predict_logits(forget)
        row = {
            "new_classifier_ua": unlearning_accuracy(yardstick.classifier.predict_logits(forget), forget_class),
            "recognised_rate": recognised_rate(reader_logits, forget_class),
            "unrecognisable_rate": float((reader_logits.argmax(1) == unrecognisable).float().mean()),
            "dominant_reading": "unrecognisable" if top == unrecognisable else str(top),
            "dominant_share": share,
            "reader_histogram": class_histogram(reader_logits),
            "old_record_histogram": list(old_histograms.get(name, [])),
            "old_classifier_histogram": class_histogram(old_logits),
            "old_classifier_ua": unlearning_accuracy(old_logits, forget_class),
        }
        row["same_samples_as_old_record"] = row["old_classifier_histogram"] == row["old_record_histogram"]
        report[name] = row
        save_sample_grid(images, labels, out / f"{name}__f{forget_class}.png", data.class_names, forget_class, 8,
                         title=f"{name}, forget class {forget_class}, old protocol samples (seed {seed})")
        print(name, json.dumps(row))
    (out / "rescored.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(old_cache: str) -> dict:
    """Re-score the old reference's models found in ``old_cache`` (a copy of its cache) into this folder."""
    profile = load_profile("mnist", OLD_PROFILE_OVERRIDES)
    data = UnlearningDataModule(profile.data, batch_size=profile.unlearning.batch_size, seed=profile.seed)
    old = Path(old_cache)
    old_classifier = EvalClassifier(OLD_CLASSIFIER, data.num_classes, data.channels)
    weights = old / OLD_CACHE_ENTRIES["classifier"]
    old_classifier.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    old_classifier.eval()
    models = rescored_models(ConditionalDiffusion.load(old / OLD_CACHE_ENTRIES["original"]),
                             ConditionalDiffusion.load(old / OLD_CACHE_ENTRIES["retrain"]), data, profile)
    return rescore(profile, data, models, old_classifier, HERE, OLD_RECORDS)


if __name__ == "__main__":
    main(sys.argv[1])
