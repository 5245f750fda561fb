"""Known answers for the quality measures (issue 19, item 2): the set builders, RBF-MMD², PRDC coverage under
collapse, the rule, and the recommended measure's ordering on the committed mnist-16px yardstick."""

from __future__ import annotations

import pytest
import torch

from unlearnbench.metrics.quality import (
    BAD_SETS,
    FAINT_CONTRAST,
    RBFMMD,
    SETS,
    known_answer_sets,
    known_answer_verdict,
    median_bandwidth,
    prdc_scores,
    rbf_mmd2,
    resampled_kid,
)


def toy_digits(per_class: int = 30, classes: int = 4, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct images per class in [−1, 1]: class c lights row c (plus small noise), labels 0..classes−1."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(classes).repeat_interleave(per_class)
    images = torch.full((len(labels), 1, size, size), -1.0)
    images[torch.arange(len(labels)), 0, labels] = 1.0
    return (images + 0.05 * torch.randn(images.shape, generator=g)).clamp(-1, 1), labels


def test_known_answer_sets_shapes_ranges_and_contents():
    images, labels = toy_digits()
    sets = known_answer_sets(images, labels, [1, 2], 20, seed=3)
    assert list(sets) == list(SETS)
    for name, x in sets.items():
        assert x.shape == (20, 1, 8, 8), name
        assert x.min() >= -1 and x.max() <= 1, name
    real = sets["real"]
    lit = real[:, 0].amax(dim=-1).argmax(dim=-1)  # the lit row = the class
    assert sorted(lit.tolist()) == [1] * 10 + [2] * 10  # balanced over the set's classes
    wrong = sets["wrong_class"][:, 0].amax(dim=-1).argmax(dim=-1)
    assert set(wrong.tolist()) == {0, 3}  # only the other classes
    assert (sets["blank"] == -1).all() and (sets["constant"] == 0).all()
    assert (sets["collapsed"] == sets["collapsed"][0]).all() and torch.equal(sets["collapsed"][0], real[0])
    assert torch.allclose(sets["faint"], -1 + FAINT_CONTRAST * (real + 1))
    # shuffled: the same pixels per image, not in the same places
    assert torch.equal(sets["shuffled"].flatten(1).sort(dim=1).values, real.flatten(1).sort(dim=1).values)
    assert not torch.equal(sets["shuffled"], real)
    assert 0.05 < (sets["mild"] - real).std() < 0.1  # σ 0.1, less where clipped at ±1
    assert (sets["noise"] > -1).float().mean() > 0.7 and sets["noise"].mean().abs() < 0.1
    again = known_answer_sets(images, labels, [1, 2], 20, seed=3)
    assert all(torch.equal(sets[k], again[k]) for k in SETS)


def test_known_answer_sets_refuse_impossible_requests():
    images, labels = toy_digits(per_class=5)
    with pytest.raises(ValueError, match="cover every label"):
        known_answer_sets(images, labels, [0, 1, 2, 3], 4, seed=0)
    with pytest.raises(ValueError, match="images"):
        known_answer_sets(images, labels, [0], 6, seed=0)


def test_rbf_mmd2_is_zero_for_one_distribution_and_positive_for_shifted_ones():
    g = torch.Generator().manual_seed(1)
    real, same = torch.randn(400, 8, generator=g), torch.randn(300, 8, generator=g)
    assert abs(rbf_mmd2(real, same)) < 0.01
    assert rbf_mmd2(real, same + 1.0) > 0.1
    assert rbf_mmd2(real, same + 1.0) < rbf_mmd2(real, same + 3.0)
    # the median heuristic: for N(0, I_d) the pairwise distance concentrates at sqrt(2d) = 4
    assert median_bandwidth(real) == pytest.approx(4.0, rel=0.1)
    # one point is not the distribution: collapse is caught too (characteristic kernel)
    assert rbf_mmd2(real, same[:1].expand(300, -1)) > 0.1
    prepared = RBFMMD(real)  # the real side's term computed once, the same figure
    assert prepared(same + 1.0) == pytest.approx(rbf_mmd2(real, same + 1.0), rel=1e-12)


def test_resampled_kid_resamples_the_generated_side():
    g = torch.Generator().manual_seed(2)
    real, fake = torch.randn(500, 8, generator=g), torch.randn(100, 8, generator=g) + 0.5
    mean, std = resampled_kid(real, fake, subsets=50, seed=0)
    assert mean > 0 and std > 0
    # with subsets of all 100 generated features only the real side moves; with 50 of them the spread grows
    _, std_all = resampled_kid(real, fake, subsets=50, subset_fraction=1.0, seed=0)
    assert std > std_all


def test_prdc_coverage_drops_for_a_collapsed_set(capsys):
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(200, 8, generator=g), torch.randn(200, 8, generator=g)
    good = prdc_scores(real, fake)
    collapsed = prdc_scores(real, fake[:1].expand(200, -1))
    assert capsys.readouterr().out == ""  # compute_prdc's print is silenced
    assert good["coverage"] > 0.9 and good["recall"] > 0.8
    assert collapsed["coverage"] < 0.1 and collapsed["recall"] == 0.0


def test_known_answer_verdict_rule():
    good = {"real": 0.0, "mild": 0.1, **{name: 1.0 for name in BAD_SETS}}
    assert known_answer_verdict(good) == (True, [])
    assert known_answer_verdict({k: -v for k, v in good.items()}, higher_is_better=True) == (True, [])
    assert known_answer_verdict({**good, "blank": 0.05}) == (False, ["blank"])  # better than mild
    assert known_answer_verdict({**good, "mild": -0.5}) == (False, ["mild"])  # real is not ≈ best


@pytest.fixture(scope="module")
def mnist_table():
    """The known-answer table on the committed mnist-16px yardstick for forget class 0 at small n (12 images per
    retained class, 100 of class 0), in both feature spaces."""
    from unlearnbench.datasets import UnlearningDataModule
    from unlearnbench.foundation.config import load_profile
    from unlearnbench.foundation.yardstick import load_yardstick
    from unlearnbench.studies.quality_table import known_answer_table, verdicts

    profile = load_profile("mnist")
    yardstick = load_yardstick(profile, check=False)  # the table judges its feature spaces, not its floors
    data = UnlearningDataModule(profile.data, batch_size=500, seed=profile.seed)
    table = known_answer_table(yardstick, data, [0], retain_per_class=12, forget_samples=100, seed=0)
    return table, verdicts(table)


@pytest.mark.parametrize("metric", ["mmd_rbf", "kid", "coverage"])
def test_recommended_measures_pass_their_known_answers_in_the_readers_features(mnist_table, metric):
    """Headline RBF-MMD², second opinion KID (half-size subsets) and coverage, in the reader's features: every bad
    set worse than real and mild, retained classes and forget class alike."""
    table, verdict = mnist_table
    rows = verdict[(verdict["space"] == "reader") & (verdict["metric"] == metric)]
    assert len(rows) == 2
    assert rows["passed"].all(), rows[["block", "broken_by"]].to_string()
    values = table[(table["space"] == "reader") & (table["metric"] == metric)]
    for _, block in values.groupby("block"):
        v = dict(zip(block["set"], block["value"], strict=True))
        if metric == "coverage":  # higher is better
            assert all(v[bad] < min(v["real"], v["mild"]) for bad in BAD_SETS), v
        else:
            assert all(v[bad] > max(v["real"], v["mild"]) for bad in BAD_SETS), v


def test_the_clean_classifiers_features_fail_the_known_answers(mnist_table):
    """Why the headline left the classifier's features: there, barely visible noise (mild) scores worse than a bad
    set for KID in at least one block (measured: faint digits or one repeated digit)."""
    _, verdict = mnist_table
    kid = verdict[(verdict["space"] == "classifier") & (verdict["metric"] == "kid")]
    assert not kid["passed"].all()
