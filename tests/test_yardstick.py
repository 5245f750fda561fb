"""The committed yardstick: loads without training, scores as a pure function of samples and weights, reads noisy
digits as digits and noise as unrecognisable, refuses a missing, modified or weak one; its command is deterministic."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.foundation.classifier import ClassifierTooWeakError
from unlearnbench.foundation.config import ConfigError, load_profile
from unlearnbench.foundation.renderings import READABLE, UNREADABLE, readable_images, unreadable_images
from unlearnbench.foundation.yardstick import (
    FILES,
    STRESS_IMAGES,
    YardstickMissingError,
    default_directory,
    floor_failures,
    load_yardstick,
    noise_probes,
    noisy,
    probe,
    stress_card,
    train_yardstick,
)
from unlearnbench.orchestration.cli import main

SIGMA = 0.5  # the stated noise level of the known-answer test (images in [-1, 1])


@pytest.fixture(scope="module")
def mnist():
    profile = load_profile("mnist", ["runtime.progress=false"])
    return profile, load_yardstick(profile), UnlearningDataModule(profile.data)


def test_the_committed_yardstick_loads_without_training(mnist):
    profile, yardstick, data = mnist
    assert default_directory(profile.data).name == "mnist-16px"
    assert (yardstick.directory / "card.json").is_file() and yardstick.card["fingerprint"] == yardstick.fingerprint
    for name in FILES:
        assert (yardstick.directory / name).stat().st_size < 1_000_000  # small enough to commit
    assert yardstick.reader.num_classes == data.num_classes + 1 == yardstick.classifier.num_classes + 1


def test_scoring_is_a_pure_function_of_samples_and_committed_weights(mnist):
    profile, yardstick, data = mnist
    # the predictions recorded when the weights were made (on another process, possibly another machine)
    assert probe(yardstick, data) == yardstick.card["probe"]
    again = load_yardstick(profile)
    images = data.split("test")[0][:200]
    assert torch.equal(yardstick.reader.predict_logits(images), again.reader.predict_logits(images))
    assert torch.equal(yardstick.classifier.predict_logits(images, 7), again.classifier.predict_logits(images, 200))


def test_noisy_digits_are_still_read_as_their_class(mnist):
    _, yardstick, data = mnist
    x, y = data.split("test")
    xn = noisy(x, SIGMA)
    pred = yardstick.reader.predict_logits(xn).argmax(1)
    for c in range(data.num_classes):  # every class can be the forget class
        assert (pred[y == c] == c).float().mean() >= 0.9, c


def test_pure_noise_is_unrecognisable(mnist):
    _, yardstick, data = mnist
    k = data.num_classes
    for name, images in noise_probes((1, 16, 16), 500, seed=99).items():
        probs = torch.softmax(yardstick.reader.predict_logits(images), 1)
        assert (probs.argmax(1) == k).float().mean() >= 0.9, name
        assert probs[:, k].mean() >= 0.85, name
    # the clean classifier, by contrast, labels the same noise with confidence (the case; measured: mean
    # top probability 0.96, entropy 0.09 against ln 10 = 2.30): why UA alone can be fooled
    clean = torch.softmax(yardstick.classifier.predict_logits(noise_probes((1, 16, 16), 500, seed=99)["saturated"]), 1)
    assert clean.shape[1] == k and float(clean.max(1).values.mean()) > 0.5
    assert float(torch.special.entr(clean).sum(1).mean()) < 0.5 * math.log(k)


def test_real_images_of_the_retained_classes_keep_97_percent(mnist):
    _, yardstick, data = mnist
    x, y = data.split("test")
    for net in (yardstick.classifier, yardstick.reader):
        correct = net.predict_logits(x).argmax(1) == y
        for forget in range(data.num_classes):  # whichever class is forgotten
            assert correct[y != forget].float().mean() >= 0.97, (net.name, forget)
        for c in range(data.num_classes):
            assert correct[y == c].float().mean() >= 0.95, (net.name, c)


def test_missing_or_modified_yardstick_is_refused_with_the_command(tmp_path):
    profile = load_profile("mnist", [f"classifier.directory={tmp_path / 'none'}"])
    with pytest.raises(YardstickMissingError, match="unlearnbench yardstick --profile mnist"):
        load_yardstick(profile)
    with pytest.raises(YardstickMissingError, match="`unlearnbench yardstick --profile base --set x=1` trains it"):
        load_yardstick(profile, command="unlearnbench yardstick --profile base --set x=1")  # a profile's own command
    copy = tmp_path / "copy"
    shutil.copytree(default_directory(profile.data), copy)
    profile.classifier.directory = str(copy)
    load_yardstick(profile)
    with open(copy / FILES[1], "r+b") as f:  # one flipped byte
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(YardstickMissingError, match="differs from the sha256"):
        load_yardstick(profile)


def test_floors_are_checked_on_load():
    profile = load_profile("mnist", ["classifier.min_noisy_accuracy=0.9999"])
    with pytest.raises(ClassifierTooWeakError, match="min_noisy_accuracy"):
        load_yardstick(profile)
    profile = load_profile("mnist", ["classifier.min_readable=0.9999"])
    with pytest.raises(ClassifierTooWeakError, match="stress: .* read right.*min_readable"):
        load_yardstick(profile)


def test_every_figure_below_its_floor_is_named_at_once_and_an_exempt_family_is_held_to_none():
    card = json.loads((default_directory(load_profile("mnist").data) / "card.json").read_text())
    profile = load_profile("mnist", ["classifier.min_readable=0.99", "classifier.min_unreadable=0.9999"])
    failures = floor_failures(card["metrics"], profile.classifier)
    below = {name for name, row in card["metrics"]["stress"]["readable"].items() if row["right"] < 0.99}
    assert len(below) > 1 and all(any(f.startswith(f"stress: {n} read right") for f in failures) for n in below)
    exempt = load_profile("mnist", ["classifier.min_readable=0.99", "classifier.min_unreadable=0.9999",
                                    f"classifier.stress_exempt=[{sorted(below)[0]}]"])
    assert len(floor_failures(card["metrics"], exempt.classifier)) == len(failures) - 1
    with pytest.raises(ConfigError, match="not stress-card families"):
        floor_failures(card["metrics"], load_profile("mnist", ["classifier.stress_exempt=[bold]"]).classifier)


def test_the_stress_card_passes_its_floors_and_is_what_the_reader_reads(mnist):
    """Every family a person reads is read as the right class (>= 90 %), every junk family is unrecognisable
    (>= 95 %): the renderings the issue found misread (30 % contrast, inverted, thinned, a 3-pixel shift, a frame)
    among them; and the card is a pure function of the committed reader (recomputed here)."""
    _, yardstick, data = mnist
    card = yardstick.card["metrics"]["stress"]
    assert set(card["readable"]) == set(READABLE) and set(card["unreadable"]) == set(UNREADABLE)
    for name, row in card["readable"].items():
        assert row["right"] >= 0.9, (name, row)
    for name, row in card["unreadable"].items():
        assert row["unrecognisable"] >= 0.95, (name, row)
    for name in ("faint 0.3", "inverted", "thin", "shift 3/16", "frame"):
        assert name in card["readable"]
    x, y = data.split("test")
    again = stress_card(yardstick.reader, x[:STRESS_IMAGES], y[:STRESS_IMAGES], data.num_classes)
    assert again == card


def test_renderings_keep_the_range_and_shape_and_junk_has_no_digit():
    x = torch.rand(16, 1, 16, 16) * 2 - 1
    for name in READABLE:
        out = readable_images(name, x, seed=1)
        assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1, name
    assert torch.allclose(readable_images("clean", x), x, atol=1e-5)
    inverted = readable_images("inverted", x)
    assert torch.allclose(inverted, -x, atol=1e-5)
    assert torch.allclose(readable_images("faint 0.3", x), -1 + 0.3 * (x + 1), atol=1e-5)
    for name in UNREADABLE:
        out = unreadable_images(name, x, seed=1)
        assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1, name
    shuffled = unreadable_images("shuffled", torch.linspace(-1, 1, 256).view(1, 1, 16, 16))
    assert not torch.equal(shuffled, torch.linspace(-1, 1, 256).view(1, 1, 16, 16))


def test_the_yardstick_command_is_deterministic(tmp_path):
    overrides = ["runtime.progress=false", "runtime.logger=none", "classifier.epochs=1", "classifier.reader_epochs=1",
                 "classifier.min_accuracy=0", "classifier.min_noisy_accuracy=0", "classifier.min_unrecognisable=0",
                 "classifier.min_readable=0", "classifier.min_unreadable=0"]
    profile = load_profile("smoke", overrides)
    first = train_yardstick(profile, tmp_path / "a")
    # the second through the command line, whose card records the --set overrides that made it
    assert main(["yardstick", "--profile", "smoke", "--output", str(tmp_path / "b"), "--set", *overrides]) == 0
    second = json.loads((tmp_path / "b" / "card.json").read_text())
    assert first.fingerprint == second["fingerprint"]
    assert second["command"] == "unlearnbench yardstick --profile smoke --set " + " ".join(overrides)
    card = json.loads((tmp_path / "a" / "card.json").read_text())
    assert card["command"] == "unlearnbench yardstick --profile smoke" and card["recipe"]["reader_epochs"] == 1
    with pytest.raises(Exception, match="--force"):
        train_yardstick(profile, tmp_path / "a")
    profile.classifier.directory = str(tmp_path / "a")
    assert load_yardstick(profile).fingerprint == first.fingerprint
    # below a floor: nothing is written where runs look, the rejected networks and whole card are kept in the cache
    strict = load_profile("smoke", [*overrides, "classifier.min_unreadable=1.01", f"runtime.cache_dir={tmp_path}"])
    with pytest.raises(ClassifierTooWeakError, match=r"unrecognisable = .*\(classifier.min_unreadable\).* kept in"):
        train_yardstick(strict, tmp_path / "c")
    kept = tmp_path / "yardstick-rejected" / "c"
    assert not (tmp_path / "c").exists() and json.loads((kept / "card.json").read_text())["rejected"]
    assert (kept / FILES[1]).is_file()
