"""Issue 11's continual requests and O3's orthogonal LoRA (tiny profile)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from unlearnbench.foundation.pretraining import load_original
from unlearnbench.methods import create_method, run_unlearning
from unlearnbench.methods.orthogonal_lora import lora_a_matrices, orthogonality_penalty


@pytest.fixture
def original(profile):
    return load_original(profile)[0]


def test_retained_classes_exclude_every_earlier_request(original, data, profile):
    method = create_method("ft", original, 2, data, profile, seed=0, forgotten_before=[0, 5])
    assert method.retained_classes() == [c for c in range(data.num_classes) if c not in (0, 2, 5)]
    labels = set(method.retain_set().tensors[1].tolist())
    assert labels == set(method.retained_classes())
    rl = create_method("rl", original, 2, data, profile, seed=0, forgotten_before=[3],
                       overrides={"pseudo_label": "random"})
    assert set(rl.pseudo_labels(500, "cpu").tolist()) <= set(rl.retained_classes())
    assert int(create_method("rl", original, 2, data, profile, seed=0, forgotten_before=[3]).pseudo_labels(
        1, "cpu")) == 4  # "next" skips the forgotten class 3
    with pytest.raises(ValueError, match="already forgotten"):
        create_method("ft", original, 2, data, profile, seed=0, forgotten_before=[2])


def test_sa_replay_and_retrain_never_see_an_earlier_request(original, data, profile):
    sa = create_method("sa", original, 1, data, profile, seed=0, forgotten_before=[0],
                       overrides={"replay_per_class": 2, "fisher_samples": 2, "fisher_timesteps": 2})
    sa.prepare()
    assert not {0, 1} & set(sa.replay.tensors[1].tolist())
    retrain = create_method("retrain", original, 1, data, profile, seed=0, forgotten_before=[0])
    assert retrain.retained_classes() == list(range(2, data.num_classes))


def test_o3_trains_only_its_adapter_and_merges_it(original, data, profile):
    method = create_method("o3", original, 0, data, profile, seed=0, overrides={"lr": 1e-2})
    outcome = run_unlearning(method)
    base = dict(original.unet.named_parameters())
    merged = dict(outcome.model.unet.named_parameters())
    assert merged.keys() == base.keys()  # the adapter is merged away: a plain UNet again
    assert any(not torch.equal(merged[k], base[k]) for k in base)
    # the class embedding has no adapter: bit-identical
    assert torch.equal(merged["class_embedding.weight"], base["class_embedding.weight"])
    [a_k] = outcome.model.continual_state["lora_a"]
    assert a_k and all(a.shape[0] == 8 for a in a_k.values())
    assert outcome.extra["adapter_parameters"] < sum(p.numel() for p in original.parameters())


def test_o3_penalty_is_the_squared_overlap_of_a_matrices_and_drives_a_new_adapter_orthogonal(original, data,
                                                                                               profile):
    a1 = {"layer": torch.tensor([[1.0, 0.0, 0.0]])}
    assert orthogonality_penalty({"layer": torch.tensor([[0.0, 2.0, 0.0]])}, [a1]).item() == 0.0
    assert orthogonality_penalty({"layer": torch.tensor([[3.0, 1.0, 0.0]])}, [a1]).item() == pytest.approx(9.0)
    first = run_unlearning(create_method("o3", original, 0, data, profile, seed=0, overrides={"lr": 1e-2}))
    earlier = first.model.continual_state["lora_a"]
    # request 2 with only the penalty (the forget term scaled away is not possible: use a large μ and lr instead)
    second = create_method("o3", first.model, 1, data, profile, seed=0, forgotten_before=[0],
                           overrides={"lr": 1e-2, "ortho_weight": 100.0})
    assert second.earlier_adapters and len(second.earlier_adapters) == 1
    second.prepare()
    start = orthogonality_penalty(lora_a_matrices(second.model.unet), earlier).item()
    outcome = second.run()
    assert outcome.extra["earlier_adapters"] == 1
    assert outcome.extra["orthogonality_penalty"] < 0.5 * start
    assert len(outcome.model.continual_state["lora_a"]) == 2


def test_continual_chain_scores_every_forgotten_class_and_resumes(tmp_path, profile, monkeypatch):
    from unlearnbench.metrics.evaluator import Evaluator
    from unlearnbench.orchestration.continual import ContinualRunner
    from unlearnbench.orchestration.runner import BenchmarkRunner

    sampled = []
    generate = Evaluator.generate

    def spy(self, model, counts, seed=None, desc="sampling"):
        sampled.append(desc)
        return generate(self, model, counts, seed, desc)

    monkeypatch.setattr(Evaluator, "generate", spy)

    profile.runtime.output_dir = str(tmp_path / "out")
    profile.unlearning.methods = ["ft", "o3"]
    profile.evaluation.forget_samples = 8
    profile.evaluation.retain_samples_per_class = 4
    profile.evaluation.relearn_steps = 0
    continual = ContinualRunner(BenchmarkRunner(profile), [0, 1])
    table = continual.run()
    assert list(table["method"]) == ["original", "original", "ft", "ft", "o3", "o3"]
    assert (table["status"] == "ok").all()
    assert list(table["forgotten"])[:2] == ["0", "0+1"]
    runs = sorted((tmp_path / "out" / profile.name / "continual" / "runs").glob("*.json"))
    step2 = [json.loads(p.read_text()) for p in runs if "o3" in p.name and "step2" in p.name][0]
    assert set(step2["recognised_by_class"]) == {"0", "1"} and step2["retain_classes"] == list(range(2, 10))
    assert step2["extra_earlier_adapters"] == 1
    original_rows = table[table["method"] == "original"]
    assert (original_rows["step_seconds"] == 0).all()
    assert sampled.count("original, every class") == 1  # one sample set of the original serves both its steps
    assert (tmp_path / "out" / profile.name / "continual" / "continual.png").is_file()
    md = (tmp_path / "out" / profile.name / "continual" / "continual.md").read_text()
    assert "| o3 | 0 | 2 | 1 | 0+1 |" in md
    # a rerun finds every record: nothing is recomputed, the table is the same
    mtimes = [p.stat().st_mtime_ns for p in runs]
    again = ContinualRunner(BenchmarkRunner(profile), [0, 1]).run()
    assert [p.stat().st_mtime_ns for p in runs] == mtimes
    pd.testing.assert_frame_equal(again, table)
    # losing the last record recomputes that step only, from the cached step-1 model
    last = [p for p in runs if "ft" in p.name and "step2" in p.name][0]
    before = json.loads(last.read_text())
    last.unlink()
    ContinualRunner(BenchmarkRunner(profile), [0, 1]).run()
    after = json.loads(last.read_text())
    assert after["recognised_by_class"] == before["recognised_by_class"]
    assert after["retain_accuracy"] == before["retain_accuracy"]
