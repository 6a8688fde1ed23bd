"""A progress line on stderr for diagnostic work that takes more than a second.

Quick work prints nothing: the line appears only once a second has passed (tqdm's `delay`), so
a diagnostic that finishes at once stays silent. Without tqdm, or when stderr is not a terminal (a
log file), a plain line stands in for it; in a log it is a new line every few seconds, never a
carriage-return repaint.
"""
import sys
import time

DELAY_S = 1.0
LOG_EVERY_S = 5.0  # in a log, at most one line this often


def progress(total, desc):
    """A counter with tqdm's `update(n)` and `close()`, also usable as a context manager."""
    if not sys.stderr.isatty():
        return _Line(total, desc, inline=False)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Line(total, desc)
    return tqdm(total=total, desc=desc, delay=DELAY_S, leave=False, dynamic_ncols=True, file=sys.stderr)


class _Line:
    """The stand-in: `desc: k/total` once DELAY_S has passed, rewritten in place on a terminal
    (inline) or, in a log, printed as a new line at most every LOG_EVERY_S."""

    def __init__(self, total, desc, inline=True):
        self.total, self.desc, self.done, self.inline = total, desc, 0, inline
        self.started = time.perf_counter()
        self.shown = False
        self.last_line = None

    def update(self, n=1):
        self.done += n
        now = time.perf_counter()
        if now - self.started < DELAY_S:
            return
        if self.inline:
            self.shown = True
            print(f"\r{self.desc}: {self.done}/{self.total}", end="", file=sys.stderr, flush=True)
        elif self.last_line is None or now - self.last_line >= LOG_EVERY_S or self.done == self.total:
            self.last_line = now
            print(f"{self.desc}: {self.done}/{self.total}", file=sys.stderr, flush=True)

    def close(self):
        if self.shown:
            print(file=sys.stderr, flush=True)
            self.shown = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
