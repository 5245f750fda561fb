r"""Image-quality distances and the known-answer sets that decide which of them may rank methods (issue 19).

A quality measure is trusted only if it passes its *known-answer table*: sets whose quality a person knows, built
from real images (:func:`known_answer_sets`), scored against the real test images of the same classes. Held-out
real digits must score (about) best, a mild degradation close behind, and every bad set — blank, constant, noise,
shuffled, faint, wrong class, collapsed — clearly worse than both (:func:`known_answer_verdict`).

The candidate measures, all on feature matrices (N, D) (real) and (M, D) (generated):

- FID (:func:`unlearnbench.metrics.fid.frechet_distance`);
- KID, the unbiased MMD² with a cubic polynomial kernel, averaged over random subsets *smaller* than the generated
  set so that both sides are resampled (:func:`resampled_kid`);
- the unbiased MMD² with a Gaussian kernel whose bandwidth is the real features' median pairwise distance
  (:class:`RBFMMD`): a characteristic kernel, so it is zero only for equal distributions;
- precision, recall, density and coverage with k nearest neighbours (:func:`prdc_scores`, PyPI ``prdc``).

Everything here works on tensors and seeds only (no networks, no data modules); results are deterministic.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import torch

from unlearnbench.metrics.fid import feature_scale, frechet_distance, kernel_distance

MILD_NOISE_SIGMA = 0.1  # the mild degradation: clip(x + 0.1 ε, −1, 1), ε ~ N(0, 1) — 5 % of the range, barely seen
FAINT_CONTRAST = 0.2  # faint digits: −1 + 0.2 (x + 1)
BAD_SETS = ("blank", "constant", "noise", "shuffled", "faint", "wrong_class", "collapsed")
SETS = ("real", "mild", *BAD_SETS)
HIGHER_IS_BETTER = frozenset({"precision", "recall", "density", "coverage"})
DISTANCES = ("fid", "kid", "mmd_rbf")
METRICS = (*DISTANCES, "precision", "recall", "density", "coverage")
NEAREST_K = 5
KID_SUBSETS = 100
KID_SUBSET_FRACTION = 0.5
MEDIAN_POINTS = 2048  # at most this many real features (evenly strided) define the RBF bandwidth
REAL_IS_BEST_TOLERANCE = 0.1  # "real ≈ best": within 10 % of the gap between the best set and the closest bad set


# -- the known-answer sets -----------------------------------------------------------------------------------
def balanced_indices(labels: torch.Tensor, classes: Sequence[int], n: int, generator: torch.Generator
                     ) -> torch.Tensor:
    """``n`` indices of images whose label is in ``classes``, spread evenly over them (n // k each, the remainder to
    the first classes), drawn without replacement under ``generator``; ordered by class."""
    classes = list(classes)
    if not classes or n < 1:
        raise ValueError(f"need at least one class and n >= 1, got classes {classes} and n = {n}")
    picks = []
    for i, c in enumerate(classes):
        count = n // len(classes) + (i < n % len(classes))
        pool = torch.nonzero(labels == c).flatten()
        if count > len(pool):
            raise ValueError(f"class {c} has {len(pool)} images, {count} requested")
        picks.append(pool[torch.randperm(len(pool), generator=generator)[:count]])
    return torch.cat(picks)


def known_answer_sets(images: torch.Tensor, labels: torch.Tensor, classes: Sequence[int], n: int, seed: int
                      ) -> dict[str, torch.Tensor]:
    r"""The sets of the known-answer table for the class set ``classes``, ``n`` images each (images in [−1, 1],
    (N, C, H, W); pass real images *not* used as the reference, e.g. the training split against the test split).

    - ``real``: real images of ``classes``, balanced over them;
    - ``mild``: those images under Gaussian noise, :math:`\mathrm{clip}(x + 0.1\,\varepsilon, -1, 1)`;
    - ``blank``: every pixel −1; ``constant``: every pixel 0 (mid grey);
    - ``noise``: :math:`\mathrm{clip}(\varepsilon, -1, 1)`, :math:`\varepsilon \sim N(0, 1)`;
    - ``shuffled``: each ``real`` image with its own random permutation of its pixels (same histogram, no shape);
    - ``faint``: the ``real`` images at contrast 0.2, :math:`-1 + 0.2\,(x + 1)`;
    - ``wrong_class``: real images of every class of ``labels`` *not* in ``classes``, balanced over them;
    - ``collapsed``: the first ``real`` image repeated ``n`` times (mode collapse).

    Deterministic for a fixed ``seed`` (own generator; the global RNG is untouched).
    """
    classes = sorted({int(c) for c in classes})
    others = [c for c in labels.unique().tolist() if c not in classes]
    if not others:
        raise ValueError(f"classes {classes} cover every label: no wrong-class set can be drawn")
    g = torch.Generator().manual_seed(seed)
    real = images[balanced_indices(labels, classes, n, g)].float()
    wrong = images[balanced_indices(labels, others, n, g)].float()
    flat = real.flatten(1)
    order = torch.rand(flat.shape, generator=g).argsort(dim=1)
    return {
        "real": real,
        "mild": (real + MILD_NOISE_SIGMA * torch.randn(real.shape, generator=g)).clamp(-1, 1),
        "blank": torch.full_like(real, -1.0),
        "constant": torch.zeros_like(real),
        "noise": torch.randn(real.shape, generator=g).clamp(-1, 1),
        "shuffled": flat.gather(1, order).view_as(real),
        "faint": -1 + FAINT_CONTRAST * (real + 1),
        "wrong_class": wrong,
        "collapsed": real[:1].expand_as(real).clone(),
    }


# -- the distances -------------------------------------------------------------------------------------------
def resampled_kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = KID_SUBSETS,
                  subset_fraction: float = KID_SUBSET_FRACTION, seed: int = 0) -> tuple[float, float]:
    r"""KID (Bińkowski et al., 2018, "Demystifying MMD GANs"): the unbiased MMD² with the cubic polynomial kernel
    :math:`k(x, y) = (x^\top y / d + 1)^3`, averaged over ``subsets`` random subsets of
    :math:`s = \lfloor \text{subset\_fraction} \cdot M \rfloor` features drawn from *each* side (torchmetrics via
    :func:`~unlearnbench.metrics.fid.kernel_distance`). With s below the generated count M, the generated side is
    resampled too, so the std over subsets reflects both samples. Features are divided by the real features'
    :func:`~unlearnbench.metrics.fid.feature_scale` first. Returns (mean, std)."""
    size = max(2, int(subset_fraction * len(fake)))
    return kernel_distance(real, fake, subsets, size, seed, feature_scale(real))


def median_bandwidth(real: torch.Tensor, max_points: int = MEDIAN_POINTS) -> float:
    r"""The median heuristic (Gretton et al., 2012): :math:`\sigma = \operatorname{median}_{i<j}\lVert r_i - r_j
    \rVert` over the real features (at most ``max_points`` of them, evenly strided: a fixed function of the real
    side)."""
    r = real.double()[:: max(1, math.ceil(len(real) / max_points))]
    dist = torch.cdist(r, r)
    i, j = torch.triu_indices(len(r), len(r), offset=1)
    return float(dist[i, j].median())


def _kernel_sum(x: torch.Tensor, y: torch.Tensor, gamma: float, chunk: int = 2048) -> float:
    """Σ_ij exp(−γ ‖x_i − y_j‖²), chunked over x so that large real sets fit in memory."""
    return float(sum(torch.exp(-gamma * torch.cdist(part, y).pow(2)).sum() for part in x.split(chunk)))


@dataclass
class RBFMMD:
    r"""The unbiased MMD² (Gretton et al., 2012, "A Kernel Two-Sample Test", eq. 3) against fixed real features, with
    the Gaussian kernel :math:`k(x, y) = \exp(-\lVert x - y \rVert^2 / (2\sigma^2))`:

    .. math:: \widehat{\mathrm{MMD}}^2_u = \frac{1}{N(N-1)}\sum_{i \ne j} k(r_i, r_j)
              + \frac{1}{M(M-1)}\sum_{i \ne j} k(g_i, g_j) - \frac{2}{NM}\sum_{i,j} k(r_i, g_j)

    σ is :func:`median_bandwidth` of the real features unless given, so the kernel is a fixed function of the real
    side; the first (real-only, O(N²)) term is computed once per object. The kernel is characteristic: the population
    MMD² is 0 only for equal distributions, and a collapsed set is far from its source (its second term is 1). The
    estimate is unbiased (it can dip below 0 by chance) and bounded by 2."""

    real: torch.Tensor = field(repr=False)
    bandwidth: float | None = None
    gamma: float = field(init=False)  # 1 / (2σ²)

    def __post_init__(self) -> None:
        self.real = self.real.double()
        if len(self.real) < 2:
            raise ValueError(f"MMD² needs at least 2 real features, got {len(self.real)}")
        if self.bandwidth is None:
            self.bandwidth = median_bandwidth(self.real)
        self.gamma = 1.0 / (2 * float(self.bandwidth) ** 2)

    @cached_property
    def real_term(self) -> float:
        r""":math:`\frac{1}{N(N-1)}\sum_{i \ne j} k(r_i, r_j)`."""
        n = len(self.real)
        return (_kernel_sum(self.real, self.real, self.gamma) - n) / (n * (n - 1))  # the diagonal k(x, x) = 1

    def __call__(self, fake: torch.Tensor) -> float:
        """MMD² between the real features and ``fake`` (M, D), M ≥ 2."""
        g, m = fake.double(), len(fake)
        if m < 2:
            raise ValueError(f"MMD² needs at least 2 generated features, got {m}")
        gg = (_kernel_sum(g, g, self.gamma) - m) / (m * (m - 1))
        return self.real_term + gg - 2 * _kernel_sum(self.real, g, self.gamma) / (len(self.real) * m)


def rbf_mmd2(real: torch.Tensor, fake: torch.Tensor, bandwidth: float | None = None) -> float:
    """:class:`RBFMMD` of ``real`` applied to ``fake``: the unbiased Gaussian-kernel MMD², median-heuristic σ."""
    return RBFMMD(real, bandwidth)(fake)


def prdc_scores(real: torch.Tensor, fake: torch.Tensor, nearest_k: int = NEAREST_K, seed: int = 0
                ) -> dict[str, float]:
    r"""Precision and recall (Kynkäänniemi et al., 2019) and density and coverage (Naeem et al., 2020) with
    ``nearest_k``-NN balls B(x, NN_k(x)), through PyPI ``prdc``:

    .. math:: \mathrm{precision} = \tfrac1M \textstyle\sum_j 1[\exists i: g_j \in B(r_i)],\quad
              \mathrm{recall} = \tfrac1N \sum_i 1[\exists j: r_i \in B(g_j)],
    .. math:: \mathrm{density} = \tfrac{1}{kM} \textstyle\sum_j \sum_i 1[g_j \in B(r_i)],\quad
              \mathrm{coverage} = \tfrac1N \sum_i 1[\exists j: g_j \in B(r_i)].

    The real side is first subsampled (under ``seed``) to the generated count M when larger: coverage and recall
    depend on N/M, and both papers compare equal-sized sets. Higher is better for all four; only recall and
    coverage see diversity (a collapsed set loses them). NaN for every score when a side has at most k features."""
    import joblib
    from prdc import compute_prdc

    if min(len(real), len(fake)) <= nearest_k:  # no k-th neighbour: undefined, not zero
        return dict.fromkeys(("precision", "recall", "density", "coverage"), float("nan"))
    if len(real) > len(fake):
        g = torch.Generator().manual_seed(seed)
        real = real[torch.randperm(len(real), generator=g)[: len(fake)]]
    # compute_prdc prints the set sizes, and asks sklearn for 8 jobs: threads that cost 10x the work at these sizes
    with contextlib.redirect_stdout(io.StringIO()), joblib.parallel_config(backend="sequential"):
        scores = compute_prdc(real.double().numpy(), fake.double().numpy(), nearest_k)
    return {name: float(value) for name, value in scores.items()}


def quality_scores(real: torch.Tensor, fake: torch.Tensor, seed: int = 0,
                   kid_subset_fraction: float = KID_SUBSET_FRACTION, nearest_k: int = NEAREST_K,
                   mmd: RBFMMD | None = None) -> dict[str, float]:
    """Every candidate measure of ``fake`` against ``real`` features: fid, kid (and kid_std), mmd_rbf, precision,
    recall, density, coverage (see the functions above). Pass ``mmd`` (an :class:`RBFMMD` of the same ``real``) to
    reuse its real-side term across many generated sets."""
    kid, kid_std = resampled_kid(real, fake, subset_fraction=kid_subset_fraction, seed=seed)
    mmd = RBFMMD(real) if mmd is None else mmd
    return {"fid": frechet_distance(real, fake), "kid": kid, "kid_std": kid_std, "mmd_rbf": mmd(fake),
            **prdc_scores(real, fake, nearest_k, seed)}


# -- the rule ------------------------------------------------------------------------------------------------
def known_answer_verdict(scores: Mapping[str, float], higher_is_better: bool = False) -> tuple[bool, list[str]]:
    """The known-answer rule for one measure's ``scores`` of every set of :data:`SETS`: it PASSES when

    1. every bad set (:data:`BAD_SETS`) scores strictly worse than both ``real`` and ``mild``, and
    2. ``real`` ≈ best: no set beats ``real`` by more than :data:`REAL_IS_BEST_TOLERANCE` of the gap between the
       best set and the closest bad set.

    Returns (passed, the sets that break the rule: bad sets not worse than real or mild, and ``mild`` or a bad set
    that beats real beyond the tolerance)."""
    sign = -1.0 if higher_is_better else 1.0  # on sign * score lower is better
    s = {name: sign * scores[name] for name in SETS}
    floor = max(s["real"], s["mild"])
    broken = [name for name in BAD_SETS if not s[name] > floor]
    best = min(s.values())
    closest_bad = min(s[name] for name in BAD_SETS)
    tolerance = REAL_IS_BEST_TOLERANCE * (closest_bad - best)
    broken += [name for name in SETS if name not in broken and name != "real" and s["real"] - s[name] > tolerance]
    return not broken, broken
