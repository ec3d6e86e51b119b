"""The terminal progress line of a long step (hashing, exporting, fetching).

A bar redrawn in place on a terminal, plain lines every few seconds otherwise (CI logs), and a
heartbeat so that a log never goes quiet while one huge image is still in work.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any


class Progress:
    """Progress on stderr: a bar redrawn in place on a terminal, plain lines every few seconds
    otherwise (CI logs), nothing when ``quiet``.

    Images served whole from the cache are counted as done but not in the rate, so a resumed
    run's ETA is that of the work still to do, not of cache reads.
    """

    def __init__(
        self, total: int, quiet: bool, label: str = "images hashed", stream: Any = None
    ) -> None:
        self.total, self.quiet, self.label = total, quiet, label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.2 if self.tty else 5.0
        self.start = time.monotonic()
        self.last = -1e9
        self.done = 0
        self.cached = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @contextlib.contextmanager
    def running(self) -> Iterator[Progress]:
        """Within this block the line is also written when no item finishes for an interval
        (one huge image still in work), so a log never goes quiet while work goes on."""
        thread = threading.Thread(target=self._heartbeat, daemon=True)
        if not self.quiet:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            if thread.is_alive():
                thread.join()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.interval / 2):
            with self._lock:
                now = time.monotonic()
                if self.done < self.total and now - self.last >= self.interval:
                    self._write(now)

    def step(self, cached: bool = False) -> None:
        with self._lock:
            self.done += 1
            self.cached += cached
            now = time.monotonic()
            final = self.done >= self.total
            if self.quiet or (now - self.last < self.interval and not final):
                return
            self._write(now)

    def _write(self, now: float) -> None:
        final = self.done >= self.total
        self.last = now
        elapsed = now - self.start
        computed = self.done - self.cached
        rate = computed / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done
        eta = "0s" if left == 0 else f"{left / rate:.0f}s" if rate > 0 else "?"
        from_cache = f"{self.cached} from cache, " if self.cached else ""
        text = (
            f"{self.done}/{self.total} {self.label} "
            f"({from_cache}{rate:.1f}/s, {elapsed:.0f}s, ETA {eta})"
        )
        if self.tty:
            width = 30
            filled = round(width * self.done / max(1, self.total))
            bar = "#" * filled + "." * (width - filled)
            # \x1b[K clears what a longer previous line left to the right of this one.
            self.stream.write(f"\r  [{bar}] {text}\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(f"  {text}\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line for a later stage (an algorithm's statistics), with the elapsed time."""
        if not self.quiet:
            self.stream.write(f"  {text} ({time.monotonic() - self.start:.0f}s)\n")
            self.stream.flush()
