r"""Renderings of a digit that a person still reads, and images that carry no digit: what the reader is trained on
and what its stress card measures (METHODS.md, "Forgetting reader").

Images are in [-1, 1], shape (N, C, H, W); a rendering works on the ink map :math:`p = (x + 1)/2 \in [0, 1]`
(ink 1, paper 0) and returns an image again. Every geometric strength is a fraction of the image side, so one
family means the same rendering at 8, 16 or 28 px.

Identity-preserving renderings (:func:`render`, applied in this order):

- stroke width: :math:`p' = (1 - t)\,p + t\,\mathrm{dilate}(p)` (thicker, t > 0) or
  :math:`(1 - |t|)\,p + |t|\,\mathrm{erode}(p)` (thinner, t < 0), 3×3 max-pooling;
- affine warp: shift (dx, dy) · side, scale s, rotation θ, paper-filled (``grid_sample``, bilinear);
- Gaussian blur of σ · side / 16 px;
- ink and paper: :math:`q = b + \pm c\,p'` with contrast c, polarity ± and paper level b (any level that keeps
  q in [0, 1]): dim or bright ink, dark on light or light on dark;
- a frame: the outer ``w`` pixels set to an ink or paper level;
- additive noise: Gaussian σ, and a structured (stripe) pattern of amplitude a, both in [-1, 1] units.

Images without a digit (:func:`junk`): Gaussian, saturated, uniform and smooth noise, flat images, sparse speckle,
pixel-shuffled digits (same ink, no shape), a frame on a flat background, and a digit buried under noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Rendering:
    """One rendering's parameters (defaults: the digit as it is). Fractions of the side for ``shift``; ``blur`` in
    pixels of a 16-px image; ``noise`` and ``stripes`` in [-1, 1] units; ``frame_width`` in pixels of a 16-px image,
    ``frame_level`` in ink units (0 = paper colour … 1 = ink colour); ``polarity`` +1 light ink on dark paper (the
    data's own), −1 dark on light; ``paper`` the paper level in [0, 1] (``None``: 0 for +1, 1 for −1)."""

    stroke: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0
    rotation: float = 0.0  # degrees
    blur: float = 0.0
    contrast: float = 1.0
    polarity: int = 1
    paper: float | None = None
    frame_width: float = 0.0
    frame_level: float = 1.0
    noise: float = 0.0
    stripes: float = 0.0


def _stroke(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    dilated = F.max_pool2d(p, 3, 1, 1)
    eroded = -F.max_pool2d(-p, 3, 1, 1)
    t = t.view(-1, 1, 1, 1)
    return torch.where(t >= 0, (1 - t) * p + t * dilated, (1 + t) * p - t * eroded)


def _affine(p: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Warp by output = input(A⁻¹(u − 2·shift)) in normalised coordinates, paper (0) outside."""
    angle = degrees * math.pi / 180
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, sin, -2 * (cos * shift[:, 0] + sin * shift[:, 1])], 1),
                         torch.stack([-sin, cos, -2 * (-sin * shift[:, 0] + cos * shift[:, 1])], 1)], 1)
    grid = F.affine_grid(theta.to(p), list(p.shape), align_corners=False)
    return F.grid_sample(p, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _blur(p: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian blur (σ in pixels at this size; σ = 0 leaves the image), separable 5-tap kernel."""
    offsets = torch.arange(-2, 3, dtype=p.dtype)
    s = sigma.clamp_min(1e-3).view(-1, 1)
    kernel = torch.exp(-offsets.view(1, -1) ** 2 / (2 * s ** 2))
    kernel = torch.where(sigma.view(-1, 1) > 0, kernel / kernel.sum(1, keepdim=True),
                         (offsets.view(1, -1) == 0).to(p.dtype))
    n, c, h, w = p.shape
    flat = p.reshape(1, n * c, h, w)
    k = kernel.repeat_interleave(c, 0)
    flat = F.conv2d(F.pad(flat, (2, 2, 0, 0), mode="replicate"), k.view(n * c, 1, 1, 5), groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, 2, 2), mode="replicate"), k.view(n * c, 1, 5, 1), groups=n * c)
    return flat.reshape(n, c, h, w)


def _frame_mask(shape: tuple[int, ...], width: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) booleans: the outer ``width`` pixels of each image (0 = none)."""
    h, w = shape[-2:]
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    edge = torch.minimum(torch.minimum(rows, h - 1 - rows), torch.minimum(cols, w - 1 - cols))
    return (edge < width.view(-1, 1, 1)).unsqueeze(1)


def _stripes(shape: tuple[int, ...], amplitude: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """a · sin(2π (f_x u + f_y v) + φ): stripes of random direction, 2–5 periods per side and phase."""
    n, h, w = shape[0], shape[-2], shape[-1]
    freq = torch.empty(n, 2).uniform_(2, 5, generator=generator) * torch.sign(torch.rand(n, 2, generator=generator)
                                                                              - 0.5)
    phase = torch.rand(n, generator=generator) * 2 * math.pi
    u = torch.linspace(0, 1, w).view(1, 1, w)
    v = torch.linspace(0, 1, h).view(1, h, 1)
    wave = torch.sin(2 * math.pi * (freq[:, 0].view(-1, 1, 1) * u + freq[:, 1].view(-1, 1, 1) * v)
                     + phase.view(-1, 1, 1))
    return (amplitude.view(-1, 1, 1) * wave).unsqueeze(1)


def render_batch(x: torch.Tensor, stroke: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                 rotation: torch.Tensor, blur: torch.Tensor, contrast: torch.Tensor, polarity: torch.Tensor,
                 paper: torch.Tensor, frame_width: torch.Tensor, frame_level: torch.Tensor, noise: torch.Tensor,
                 stripes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Every image its own :class:`Rendering` (one value per image in each tensor; ``shift`` (N, 2); ``paper``
    NaN = the polarity's default)."""
    side = x.shape[-1]
    p = ((x + 1) / 2).clamp(0, 1)
    p = _stroke(p, stroke)
    p = _affine(p, shift, scale, rotation)
    p = _blur(p, blur * side / 16)
    paper = torch.where(torch.isnan(paper), (polarity < 0).to(p.dtype), paper)
    ink = (paper + polarity * contrast).clamp(0, 1)
    b = (-1, 1, 1, 1)
    q = paper.view(b) + (ink - paper).view(b) * p
    level = paper + frame_level * (ink - paper)
    q = torch.where(_frame_mask(x.shape, torch.round(frame_width * side / 16)), level.view(b), q)
    out = 2 * q - 1
    out = out + noise.view(b) * torch.randn(x.shape, generator=generator) + _stripes(x.shape, stripes, generator)
    return out.clamp(-1, 1)


def render(x: torch.Tensor, rendering: Rendering, seed: int = 0) -> torch.Tensor:
    """``x`` under one :class:`Rendering` (noise, stripes and a shift's sign drawn under ``seed``: the shift's
    direction is random per image, its length fixed; so is the rotation's sign)."""
    n = len(x)
    g = torch.Generator().manual_seed(seed)
    full = lambda v: torch.full((n,), float(v))  # noqa: E731
    angle = torch.rand(n, generator=g) * 2 * math.pi
    length = math.hypot(*rendering.shift)
    shift = (torch.stack([torch.cos(angle), torch.sin(angle)], 1) * length if length
             else torch.zeros(n, 2))
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    return render_batch(x, full(rendering.stroke), shift, full(rendering.scale), sign * rendering.rotation,
                        full(rendering.blur), full(rendering.contrast), full(rendering.polarity),
                        full(float("nan") if rendering.paper is None else rendering.paper),
                        full(rendering.frame_width), full(rendering.frame_level), full(rendering.noise),
                        full(rendering.stripes), generator=g)


# -- the reader's training distribution ------------------------------------------------------------------------
TRAINING_RANGES = {  # the renderings the reader is trained to read (each applied to about half the positives)
    "contrast": (0.15, 1.0), "stroke": (-0.8, 1.0), "shift": 0.25, "scale": (0.6, 1.3), "rotation": 30.0,
    "blur": (0.0, 1.2), "frame_width": (1.0, 2.0), "noise_snr": 0.7, "stripes": 0.3,
}


def random_renderings(x: torch.Tensor) -> torch.Tensor:
    """Each image under a random combination of renderings within :data:`TRAINING_RANGES` (global RNG): every
    kind is applied with probability ½ independently, the polarity is inverted for ⅓ of the images, the paper level
    is random for ⅓. Gaussian noise keeps its σ below 0.7 × the ink amplitude (2c), so a faint digit is never
    buried: that is junk's job."""
    n = len(x)
    r = TRAINING_RANGES

    def maybe(values: torch.Tensor, default: float, prob: float = 0.5) -> torch.Tensor:
        return torch.where(torch.rand(n) < prob, values, torch.full_like(values, default))

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.empty(n).uniform_(lo, hi)

    contrast = maybe(uniform(*r["contrast"]), 1.0)
    polarity = torch.where(torch.rand(n) < 1 / 3, -1.0, 1.0)
    paper_room = 1 - contrast
    paper = torch.where(polarity > 0, torch.rand(n) * paper_room, contrast + torch.rand(n) * paper_room)
    paper = torch.where(torch.rand(n) < 1 / 3, paper, torch.full_like(paper, float("nan")))
    shift = maybe(torch.ones(n), 0.0).view(-1, 1) * (torch.rand(n, 2) * 2 - 1) * r["shift"]
    frame = maybe(torch.randint(int(r["frame_width"][0]), int(r["frame_width"][1]) + 1, (n,)).float(), 0.0, 0.25)
    noise = maybe(torch.rand(n) * r["noise_snr"] * 2 * contrast, 0.0)
    return render_batch(x, maybe(uniform(*r["stroke"]), 0.0), shift, maybe(uniform(*r["scale"]), 1.0),
                        maybe(uniform(-r["rotation"], r["rotation"]), 0.0), maybe(uniform(*r["blur"]), 0.0),
                        contrast, polarity, paper, frame, torch.rand(n), noise,
                        maybe(torch.rand(n) * r["stripes"], 0.0, 0.25))


def junk(digits: torch.Tensor, kinds: tuple[str, ...] | None = None, generator: torch.Generator | None = None
         ) -> torch.Tensor:
    """Images shaped like ``digits`` that carry no digit, one kind of :data:`JUNK_KINDS` (or of ``kinds``) drawn
    per image."""
    kinds = kinds or JUNK_KINDS
    n = len(digits)
    choice = torch.randint(0, len(kinds), (n,), generator=generator)
    out = torch.empty_like(digits)
    for i, kind in enumerate(kinds):
        chosen = choice == i
        if chosen.any():
            out[chosen] = JUNK_MAKERS[kind](digits[chosen], generator)
    return out.clamp(-1, 1)


def _like(x: torch.Tensor, g: torch.Generator | None, lo: float, hi: float) -> torch.Tensor:
    return torch.empty(len(x)).uniform_(lo, hi, generator=g)


def _gaussian(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    scale = torch.exp(_like(x, g, math.log(0.2), math.log(4.0))).view(-1, 1, 1, 1)
    return _like(x, g, -1.0, 0.5).view(-1, 1, 1, 1) + scale * torch.randn(x.shape, generator=g)


def _saturated(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=g).sign()


def _uniform(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return torch.rand(x.shape, generator=g) * 2 - 1


def _smooth(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    side = x.shape[-1]
    coarse = torch.randn(len(x), x.shape[1], max(1, side // 4), max(1, side // 4), generator=g)
    scale = torch.exp(_like(x, g, math.log(0.2), math.log(4.0))).view(-1, 1, 1, 1)
    smooth = F.interpolate(coarse, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return _like(x, g, -1.0, 0.5).view(-1, 1, 1, 1) + 2 * scale * smooth


def _flat(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return _like(x, g, -1.0, 1.0).view(-1, 1, 1, 1) + 0.05 * torch.randn(x.shape, generator=g)


def _speckle(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    density = _like(x, g, 0.02, 0.2).view(-1, 1, 1, 1)
    dots = (torch.rand(x.shape, generator=g) < density).to(x.dtype)
    paper = _like(x, g, -1.0, 0.0).view(-1, 1, 1, 1)
    return paper + (1 - paper) * dots


def _shuffled(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    flat = x.flatten(1)
    order = torch.argsort(torch.rand(flat.shape, generator=g), dim=1)
    shuffled = torch.gather(flat, 1, order).view_as(x)
    contrast = _like(x, g, 0.3, 1.0).view(-1, 1, 1, 1)
    invert = torch.where(torch.rand(len(x), generator=g) < 1 / 3, -1.0, 1.0).view(-1, 1, 1, 1)
    return invert * (contrast * (shuffled + 1) - 1)


def _frame_only(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    paper = _like(x, g, -1.0, 1.0).view(-1, 1, 1)
    ink = _like(x, g, -1.0, 1.0).view(-1, 1, 1)
    width = torch.randint(1, 3, (len(x),), generator=g) * max(1, round(x.shape[-1] / 16))
    mask = _frame_mask(x.shape, width).squeeze(1)
    return torch.where(mask, ink, paper).unsqueeze(1).expand_as(x).clone()


def _buried(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return (_like(x, g, 0.0, 0.15).view(-1, 1, 1, 1) * x
            + _like(x, g, 1.0, 3.0).view(-1, 1, 1, 1) * torch.randn(x.shape, generator=g))


JUNK_MAKERS = {"gaussian": _gaussian, "saturated": _saturated, "uniform": _uniform, "smooth": _smooth,
               "flat": _flat, "speckle": _speckle, "shuffled": _shuffled, "frame": _frame_only, "buried": _buried}
JUNK_KINDS = tuple(JUNK_MAKERS)


# -- the stress card's families ------------------------------------------------------------------------------------
READABLE = {  # family → (rendering at its stated strength, what it is); every one a person reads as the digit
    "clean": (Rendering(), "the test digit as it is"),
    "faint 0.3": (Rendering(contrast=0.3), "ink contrast 0.3 on black"),
    "faint 0.15": (Rendering(contrast=0.15), "ink contrast 0.15 on black"),
    "inverted": (Rendering(polarity=-1), "dark ink on white"),
    "inverted faint 0.3": (Rendering(polarity=-1, contrast=0.3), "dark ink of contrast 0.3 on white"),
    "grey paper": (Rendering(contrast=0.3, paper=0.4), "contrast 0.3 on mid-grey paper"),
    "thin": (Rendering(stroke=-0.7), "strokes eroded (t = −0.7)"),
    "thick": (Rendering(stroke=1.0), "strokes dilated 3×3"),
    "shift 3/16": (Rendering(shift=(3 / 16, 0.0)), "shifted by 3/16 of the side (3 px at 16 px), random direction"),
    "scale 0.7": (Rendering(scale=0.7), "shrunk to 70 %"),
    "scale 1.25": (Rendering(scale=1.25), "enlarged to 125 %"),
    "rotation 25°": (Rendering(rotation=25.0), "rotated by ±25°"),
    "blur 1 px": (Rendering(blur=1.0), "Gaussian blur σ = 1 px (at 16 px)"),
    "frame": (Rendering(frame_width=1.0), "a one-pixel frame of ink colour"),
    "grey border": (Rendering(frame_width=2.0, frame_level=0.5), "a two-pixel border of half ink"),
    "noise 0.3": (Rendering(noise=0.3), "Gaussian noise σ = 0.3"),
    "stripes 0.3": (Rendering(stripes=0.3), "stripes of amplitude 0.3"),
    "combined": (Rendering(contrast=0.4, shift=(2 / 16, 0.0), rotation=15.0, noise=0.1),
                 "contrast 0.4, shift 2/16, rotation ±15°, noise σ 0.1"),
}
UNREADABLE = {  # family → what it is; none carries a digit
    "gaussian noise": "N(0, 1) clipped",
    "saturated noise": "sign of N(0, 1)",
    "uniform noise": "U[−1, 1]",
    "smooth noise": "low-frequency noise of random scale and offset",
    "flat black": "all −1",
    "flat grey": "all 0",
    "flat white": "all +1",
    "speckle": "sparse bright dots (2–20 %) on dark paper",
    "shuffled": "a test digit's pixels permuted",
    "frame only": "a frame on flat paper",
}


def unreadable_images(name: str, digits: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The stress card's images of the junk family ``name`` (:data:`UNREADABLE`), shaped like ``digits``."""
    g = torch.Generator().manual_seed(seed)
    flat = {"flat black": -1.0, "flat grey": 0.0, "flat white": 1.0}
    if name in flat:
        return torch.full_like(digits, flat[name])
    if name == "gaussian noise":
        return torch.randn(digits.shape, generator=g).clamp(-1, 1)
    kind = {"saturated noise": "saturated", "uniform noise": "uniform", "smooth noise": "smooth",
            "speckle": "speckle", "shuffled": "shuffled", "frame only": "frame"}[name]
    return JUNK_MAKERS[kind](digits, g).clamp(-1, 1)


def readable_images(name: str, digits: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The stress card's images of the readable family ``name`` (:data:`READABLE`)."""
    return render(digits, READABLE[name][0], seed)

