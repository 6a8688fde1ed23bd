"""A progress line on stderr for diagnostic work that takes more than a second.

Quick work prints nothing: the line appears only once a second has passed (tqdm's `delay`), so
a diagnostic that finishes at once stays silent. Without tqdm a plain line stands in for it.
"""
import sys
import time

DELAY_S = 1.0


def progress(total, desc):
    """A counter with tqdm's `update(n)` and `close()`, also usable as a context manager."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Line(total, desc)
    return tqdm(total=total, desc=desc, delay=DELAY_S, leave=False, dynamic_ncols=True, file=sys.stderr)


class _Line:
    """The stand-in without tqdm: `desc: k/total` rewritten in place once DELAY_S has passed."""

    def __init__(self, total, desc):
        self.total, self.desc, self.done = total, desc, 0
        self.started = time.perf_counter()
        self.shown = False

    def update(self, n=1):
        self.done += n
        if time.perf_counter() - self.started >= DELAY_S:
            self.shown = True
            print(f"\r{self.desc}: {self.done}/{self.total}", end="", file=sys.stderr, flush=True)

    def close(self):
        if self.shown:
            print(file=sys.stderr, flush=True)
            self.shown = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
