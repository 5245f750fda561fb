"""A helper process ends when the process that asked for it is gone.

The suite's helpers are a plan's pool workers (:mod:`unlearnbench.orchestration.pool`) and each method's unlearning
child (:mod:`unlearnbench.methods.isolation`). Stopping a plan with a signal that Python cannot catch or does not
turn into an exception (``kill``, ``pkill``: SIGTERM's default action, SIGKILL) ends the runner at once, without the
clean-up that would stop its helpers: they used to go on computing, and a stopped study wrote one more record (issue
20, 2026-11-30). Each helper therefore watches the process it works for: a daemon thread checks every
``poll_seconds`` that the process still runs, and once it does not (it exited, or it is a zombie nobody reaped) the
helper exits at once with :data:`ORPHAN_EXIT_CODE`, writing nothing more.

Which process to watch: a pool worker watches its runner (its parent). An unlearning child is forked by a fork
server, not by the process that asked for it, and the fork server lives on as long as any of its children does
(each child holds the server's "alive" pipe), so the child watches the process that asked for it (the worker, or
the runner when runs are computed one at a time), whose id it is given.

Records are never half-written either way (every record is written atomically), so this only stops wasted compute
and records nobody asked for. On Windows there is no watch (``os.kill`` would end the watched process there).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

ORPHAN_EXIT_CODE = 3  # what a helper exits with when the process it works for is gone


def process_runs(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie, where ``/proc`` tells, has exited). POSIX."""
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): existence is all we can tell
    return state != "Z"


def exit_when_gone(pid: int | None = None, poll_seconds: float = 1.0) -> threading.Thread | None:
    """Exit this process (``os._exit``) once process ``pid`` (default: this one's parent) no longer runs; returns
    the watching daemon thread (``None`` on Windows, where there is no watch).

    Pass ``pid`` from the process being watched wherever this one may start after it is gone (a spawned worker
    imports torch first) or is not its child (a fork server's child): it then exits at once, or when that process
    goes, instead of watching the wrong one.
    """
    if os.name == "nt":
        return None
    watched = os.getppid() if pid is None else pid

    def watch() -> None:
        while process_runs(watched):
            time.sleep(poll_seconds)
        print(f"unlearnbench: process {os.getpid()} stops: the process it worked for ({watched}) is gone",
              file=sys.stderr, flush=True)
        os._exit(ORPHAN_EXIT_CODE)

    thread = threading.Thread(target=watch, name="exit-when-gone", daemon=True)
    thread.start()
    return thread
