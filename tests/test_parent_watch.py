"""A stopped runner takes its helpers with it (issue 20, 2026-11-30: a study stopped with ``pkill`` left its two pool
workers computing, and they wrote one more record; then, with the workers fixed, their unlearning children computed
on, kept alive with their fork servers).

The unit tests kill the parent of a watched and of an unwatched process (the control: without the watch it lives
on), and a watched process that is not the helper's parent and is left a zombie; the plan test stops a real
``unlearnbench run`` with two workers by SIGTERM, as ``kill``/``pkill`` do, while an unlearning child computes, and
every process under the runner must end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads processes from Linux's /proc")

HELPER = ("import time\n"
          "from unlearnbench.foundation.parent_watch import exit_when_gone\n"
          "if {watch}: exit_when_gone(poll_seconds=0.05)\n"
          "print('ready', flush=True)\n"
          "time.sleep(120)\n")
MIDDLE = ("import subprocess, sys, time\n"
          "helper = subprocess.Popen([sys.executable, '-c', {helper!r}], stdout=subprocess.PIPE, text=True)\n"
          "assert helper.stdout.readline().strip() == 'ready'\n"
          "print(helper.pid, flush=True)\n"
          "time.sleep(120)\n")


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie may wait for a reaper that never comes)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def workers(pid: int) -> list[int]:
    """The pool's worker processes under ``pid`` (``multiprocessing``'s spawned children)."""
    return [c for c in children(pid) if "spawn_main" in cmdline(c)]


def unlearning_children(pid: int) -> list[int]:
    """The unlearning children under ``pid``: processes forked by a fork server (their command line is the
    server's)."""
    servers = [p for p in descendants(pid) if "multiprocessing.forkserver" in cmdline(p)]
    return [p for p in servers if any(p in children(s) for s in servers)]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def ended_within(pids: list[int], seconds: float) -> list[int]:
    """The pids still alive after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


@pytest.mark.parametrize("watch", [True, False])
def test_a_watched_process_ends_with_its_parent_and_an_unwatched_one_does_not(watch):
    script = MIDDLE.format(helper=HELPER.format(watch=watch))
    middle = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    helper = int(middle.stdout.readline())
    try:
        assert alive(helper)
        middle.kill()
        middle.wait()
        left = ended_within([helper], 10 if watch else 2)
        assert left == ([] if watch else [helper])
    finally:
        if alive(helper):
            os.kill(helper, signal.SIGKILL)


def test_a_process_that_is_not_the_parent_is_watched_to_its_end_even_as_a_zombie():
    from unlearnbench.foundation.parent_watch import process_runs

    watched = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    helper = subprocess.Popen([sys.executable, "-c", "import time\n"
                               "from unlearnbench.foundation.parent_watch import exit_when_gone\n"
                               f"exit_when_gone({watched.pid}, poll_seconds=0.05)\n"
                               "print('ready', flush=True)\n"
                               "time.sleep(120)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert helper.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        assert helper.poll() is None and process_runs(watched.pid)
        watched.kill()  # not reaped yet: a zombie of this test process, which has exited all the same
        time.sleep(0.2)
        assert not process_runs(watched.pid)
        assert helper.wait(timeout=10) == 3  # ORPHAN_EXIT_CODE
    finally:
        helper.kill()
        watched.kill()
        watched.wait()


def test_a_plan_stopped_by_a_signal_stops_its_workers_and_their_unlearning(tmp_path, session_cache):
    tiny = ["runtime.progress=false", "runtime.logger=none", "runtime.workers=2", "pretrain.steps=60",
            "pretrain.warmup_steps=10", "classifier.epochs=1", "classifier.min_accuracy=0.0",
            "evaluation.forget_samples=8", "evaluation.retain_samples_per_class=2", "evaluation.relearn_steps=0",
            "unlearning.steps=100000"]  # GA's child computes until it is stopped
    command = [sys.executable, "-m", "unlearnbench.orchestration.cli", "run", "--profile", "smoke",
               "--cache-dir", session_cache, "--output-dir", str(tmp_path / "out"), "--methods", "ga",
               "--set", *tiny]
    runner = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL)
    helpers: list[int] = []
    try:
        for line in runner.stderr:  # the pool has started once the first run is handed to it
            if "run 1/" in line:
                break
        deadline = time.monotonic() + 180
        while not unlearning_children(runner.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        helpers = descendants(runner.pid)
        assert runner.poll() is None and len(workers(runner.pid)) == 2 and unlearning_children(runner.pid), (
            runner.poll(), [cmdline(p)[:80] for p in helpers])
        runner.send_signal(signal.SIGTERM)
        runner.wait(timeout=30)
        left = ended_within(helpers, 60)
        assert left == [], "still running after their runner was stopped: " + ", ".join(cmdline(p)[:120] for p in left)
    finally:
        runner.kill()
        for pid in helpers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert not list((tmp_path / "out").rglob("runs/ga__*.json"))  # GA was stopped: no record of it
