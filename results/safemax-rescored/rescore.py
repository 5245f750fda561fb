"""Re-score the previous reference's runs (commit 7b63fe9, results/reference/mnist before issue 9) with the noise-aware
reader: regenerate their exact forget-class samples and read them with the old classifier and the new yardstick.

The old reference's original and Retrain are loaded from its cache (a copy of `.cache/unlearnbench` at 7b63fe9);
SAFEMax runs from that original with the same method code, options and seed; samples are drawn with the old
protocol (one generator for labels [c_f] * 200 + [c] * 100 per retained class, DDIM-50, seed 1234). If the old
classifier's histogram equals the one in the old record, these are the very samples the old record scored.

    .venv/bin/python results/safemax-rescored/rescore.py /path/to/old/cache
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from unlearnbench.foundation.classifier import EvalClassifier
from unlearnbench.foundation.config import ClassifierConfig, load_profile
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.yardstick import load_yardstick
from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.methods import unlearn
from unlearnbench.metrics.forgetting import class_histogram, dominant_reading, recognised_rate, unlearning_accuracy
from unlearnbench.metrics.grid import save_sample_grid

HERE = Path(__file__).parent
OLD_RECORDS = {  # the old reference's forget-class histograms (results/reference/mnist/runs at 7b63fe9)
    "original": [185, 0, 0, 0, 0, 0, 11, 2, 2, 0],
    "safemax": [0, 1, 3, 9, 0, 0, 159, 23, 5, 0],
    "retrain": [0, 0, 3, 0, 0, 0, 112, 78, 7, 0],
}


def main(old_cache: str) -> None:
    # the old reference's protocol: 2,500 pretraining steps, DDIM-50 (the method options are unchanged)
    profile = load_profile("mnist", ["runtime.progress=false", "runtime.logger=none", "pretrain.steps=2500",
                                     "sampler.steps=50"])
    data = UnlearningDataModule(profile.data, batch_size=profile.unlearning.batch_size, seed=profile.seed)
    old = Path(old_cache)
    original = ConditionalDiffusion.load(old / "original" / "75dfe1c3da84d538")
    yardstick = load_yardstick(profile)
    report: dict = {"forget_class": 0, "protocol": "old: 200 forget samples, DDIM-50 eta 0, w 2, no clip, seed 1234",
                    "yardstick": yardstick.fingerprint}
    cfg = ClassifierConfig(architecture="resnet18", model_kwargs={"layers": [1, 1, 1, 1]}, input_size=32)
    old_classifier = EvalClassifier(cfg, 10, 1)
    weights = old / "classifier" / "bc6c875592891497" / "classifier.pt"
    old_classifier.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    old_classifier.eval()
    labels = torch.tensor([0] * 200 + [c for c in range(1, 10) for _ in range(100)])
    models = {"original": original,
              "safemax": unlearn("safemax", original, 0, data, profile, seed=0).model,
              "retrain": ConditionalDiffusion.load(old / "retrain" / "1e6a19fcb2c82557")}
    for name, model in models.items():
        images = model.sample(labels, profile.sampler, seed=1234, batch_size=500)
        forget = images[:200]
        reader_logits = yardstick.reader.predict_logits(forget)
        top, share = dominant_reading(reader_logits)
        row = {
            "new_classifier_ua": unlearning_accuracy(yardstick.classifier.predict_logits(forget), 0),
            "recognised_rate": recognised_rate(reader_logits, 0),
            "unrecognisable_rate": float((reader_logits.argmax(1) == 10).float().mean()),
            "dominant_reading": "unrecognisable" if top == 10 else str(top),
            "dominant_share": share,
            "reader_histogram": class_histogram(reader_logits),
            "old_record_histogram": OLD_RECORDS[name],
        }
        old_logits = old_classifier.predict_logits(forget)
        row["old_classifier_histogram"] = class_histogram(old_logits)
        row["old_classifier_ua"] = unlearning_accuracy(old_logits, 0)
        row["same_samples_as_old_record"] = row["old_classifier_histogram"] == OLD_RECORDS[name]
        report[name] = row
        save_sample_grid(images, labels, HERE / f"{name}__f0.png", data.class_names, 0, 8,
                         title=f"{name}, forget class 0, old protocol samples (seed 1234)")
        print(name, json.dumps(row))
    (HERE / "rescored.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
