"""A run prints what a user needs and no third-party noise (issue 18, item 8).

The command line runs a tiny plan (the original row and GA, with the relearning attack and W&B offline, as
``make bench`` has it) in a fresh process with W&B's own silencing variables removed from the environment, and its
whole output, stdout and stderr, is searched for the markers of Lightning's banners and advertising, W&B's
banners and sync hints, pip's index warnings and warnings about settings the suite chooses. The suite's own
progress lines must still be there.
"""

from __future__ import annotations

import os
import subprocess
import sys

NOISE = (
    "Tip:", "litmodels", "litlogger",  # Lightning's advertising
    "GPU available", "TPU available", "HPU available", "You are using a CUDA device",  # Lightning's banners
    "`Trainer.fit` stopped",  # Lightning's notes
    "smaller than the logging interval", "does not have many workers", "LeafSpec",  # warnings not for the user
    "wandb:",  # W&B's banners, warnings and sync hints
    "is ignored: it is neither",  # pip's index warnings
)
TINY = ["runtime.progress=false", "pretrain.steps=60", "pretrain.warmup_steps=10", "classifier.epochs=1",
        "classifier.min_accuracy=0.0", "evaluation.forget_samples=8", "evaluation.retain_samples_per_class=2",
        "evaluation.relearn_steps=2", "evaluation.relearn_readings=[1]", "evaluation.relearn_images=8",
        "evaluation.relearn_samples=4"]


def test_a_run_prints_no_third_party_noise(tmp_path, session_cache):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}  # no WANDB_SILENT from conftest
    env.update(WANDB_MODE="offline", WANDB_DIR=str(tmp_path / "wandb"))
    command = [sys.executable, "-m", "unlearnbench.orchestration.cli", "run", "--profile", "smoke",
               "--cache-dir", session_cache, "--output-dir", str(tmp_path / "out"), "--logger", "wandb",
               "--methods", "ga", "--steps", "2", "--set", *TINY]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    noisy = [line for line in output.splitlines() if any(marker in line for marker in NOISE)]
    assert not noisy, "third-party noise in the output:\n" + "\n".join(noisy)
    for own in ("stage 1/4: data", "stage 4/4: unlearning and evaluation", "ga: recognised", "finished in"):
        assert own in output, f"{own!r} is missing: the suite's own progress must still show\n{output[-4000:]}"
    assert list((tmp_path / "wandb").rglob("*.wandb")), "W&B did not log: the test would not see its noise"
    # what a user sees last: the page's path, then where the results are (issue 21)
    last = output.strip().splitlines()[-2:]
    page = tmp_path / "out" / "smoke" / "report.html"
    assert last[0] == f"Page (open it in a browser): {page}" and page.is_file(), last
    assert last[1].split("] ", 1)[1].startswith("finished in") and str(tmp_path / "out" / "smoke") in last[1], last
    assert len(list((tmp_path / "wandb").rglob("run-*.wandb"))) == 3  # the original's run, GA's and the leaderboard's


def test_the_progress_bar_of_a_step_bounded_fit_shows_no_negative_epoch_count():
    """Lightning's Rich bar printed "Epoch 5/-2" for the suite's fits (``max_epochs=-1``): the bar says "Epoch 5"."""
    import dataclasses
    import importlib.util
    import tempfile

    from lightning.pytorch.callbacks import ProgressBar
    from lightning.pytorch.loggers import CSVLogger

    from unlearnbench.foundation.config import RuntimeConfig
    from unlearnbench.foundation.trainer import StepBoundRichProgressBar, build_trainer

    trainer = build_trainer(dataclasses.replace(RuntimeConfig(), progress=True, accelerator="cpu"), max_steps=3)
    bars = [c for c in trainer.callbacks if isinstance(c, ProgressBar)]
    assert len(bars) == 1, bars
    if importlib.util.find_spec("rich") is not None:  # Lightning's bar is Rich's where Rich is installed
        assert isinstance(bars[0], StepBoundRichProgressBar)
        assert bars[0]._get_train_description(5) == "Epoch 5"
    # the bar shows the fit's own figures, not the logger's version number (Lightning's own bar would)
    with tempfile.TemporaryDirectory() as folder:
        logged = build_trainer(dataclasses.replace(RuntimeConfig(), progress=True, accelerator="cpu"), max_steps=3,
                               logger=CSVLogger(folder))
        bar = next(c for c in logged.callbacks if isinstance(c, ProgressBar))
        assert "v_num" in ProgressBar.get_metrics(bar, logged, None)
        assert "v_num" not in bar.get_metrics(logged, None)
    quiet = build_trainer(dataclasses.replace(RuntimeConfig(), progress=False, accelerator="cpu"), max_steps=3)
    assert not [c for c in quiet.callbacks if isinstance(c, ProgressBar)]
