"""One line per stage: what is running, elapsed time and what remains."""

from __future__ import annotations

import sys
import time

from unlearnbench.foundation.cost import format_seconds


class StageLog:
    """Prints ``[+elapsed] stage k/n: what (remaining: …)`` lines to stderr."""

    def __init__(self, total: int, stream=None) -> None:
        self.total = total
        self.done = 0
        self.start = time.perf_counter()
        self.stage_start = self.start
        self.stream = stream or sys.stderr

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def begin(self, what: str) -> None:
        self.done += 1
        self.stage_start = time.perf_counter()
        remaining = self.total - self.done
        self.say(f"stage {self.done}/{self.total}: {what} (remaining after this: {remaining})")

    def end(self, what: str) -> float:
        took = time.perf_counter() - self.stage_start
        self.say(f"  done: {what} in {format_seconds(took)}")
        return took

    def say(self, message: str) -> None:
        print(f"[+{format_seconds(self.elapsed())}] {message}", file=self.stream, flush=True)
