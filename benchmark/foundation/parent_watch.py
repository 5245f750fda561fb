"""A helper process ends when the process that started it is gone.

The suite's helpers are a plan's pool workers (:mod:`unlearnbench.orchestration.pool`) and each method's unlearning
child (:mod:`unlearnbench.methods.isolation`). Stopping a plan with a signal that Python cannot catch or does not
turn into an exception (``kill``, ``pkill``: SIGTERM's default action, SIGKILL) ends the runner at once, without the
clean-up that would stop its helpers: they used to go on computing, and a stopped study wrote one more record (issue
20, 2026-11-30). Each helper therefore watches its parent: a daemon thread reads ``os.getppid()`` every
``poll_seconds``, and once the parent has died (the helper was handed to another process, so the id changed) the
helper exits at once with :data:`ORPHAN_EXIT_CODE`, writing nothing more. The chain then unwinds by itself: a
worker's fork server sees its worker's pipe close and exits, and the unlearning child it forked sees the server go.

Records are never half-written either way (every record is written atomically), so this only stops wasted compute
and records nobody asked for. On Windows a process's parent id does not change when the parent dies, so the watch
never fires there.
"""

from __future__ import annotations

import os
import sys
import threading
import time

ORPHAN_EXIT_CODE = 3  # what a helper exits with when its parent is gone


def exit_with_parent(parent: int | None = None, poll_seconds: float = 1.0) -> threading.Thread:
    """Exit this process (``os._exit``) once its parent is no longer ``parent``; returns the watching daemon thread.

    ``parent``: the id of the process that started this one, passed by that process where this one takes a while to
    get here (a spawned worker imports torch first, and its runner may be gone by then: it then exits at once);
    by default the parent at the time of the call.
    """
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        print(f"unlearnbench: process {os.getpid()} stops: the process that started it ({parent}) is gone",
              file=sys.stderr, flush=True)
        os._exit(ORPHAN_EXIT_CODE)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread
