"""How tensors print: torch.set_printoptions' options, applied to the NumPy text a tensor's repr shows.

The elements are written as NumPy writes them (`tensor([1.5000])` in torch is `tensor([1.5])` here); the
options choose how many digits, how many elements before "...", and where lines break, as in torch.
"""
import math
import sys

import numpy as np

# torch's profiles; "default" is this library's own starting point (the repr before options existed):
# torch's default threshold is 1000 and linewidth 80
PROFILES = {
    "default": {"precision": 4, "threshold": 200, "edgeitems": 3, "linewidth": 75},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}


class PrintOptions:
    """The options in force (torch's PRINT_OPTS); sci_mode None lets the formatter choose."""

    def __init__(self):
        self.__dict__.update(PROFILES["default"])
        self.sci_mode = None


PRINT_OPTS = PrintOptions()


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """As torch.set_printoptions: a profile ("default", "short" or "full") sets the four numbers first,
    then each one given replaces its value; sci_mode is always set (None: the formatter chooses).
    As in torch, an unknown profile changes nothing."""
    PRINT_OPTS.__dict__.update(PROFILES.get(profile, {}))
    given = {"precision": precision, "threshold": threshold, "edgeitems": edgeitems, "linewidth": linewidth}
    PRINT_OPTS.__dict__.update({name: value for name, value in given.items() if value is not None})
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions():
    """The options in force, as a dict (torch has torch._tensor_str.PRINT_OPTS)."""
    return dict(vars(PRINT_OPTS))


def _scientific(array, precision):
    """NumPy formatter writing every float as torch's sci_mode does: `{:.{p}e}`, right-aligned to the widest."""
    width = max((len(f"{v:.{precision}e}") for v in array.reshape(-1)), default=0)
    return {"float_kind": lambda v: f"{v:>{width}.{precision}e}"}


def array_text(array):
    """The body of a tensor's repr: `array` (a NumPy array) under the print options in force."""
    options = PRINT_OPTS
    threshold = sys.maxsize if options.threshold == math.inf else int(options.threshold)
    formatter = _scientific(array, options.precision) if options.sci_mode and array.dtype.kind == "f" else None
    return np.array2string(array, separator=", ", prefix="tensor(", threshold=threshold,
                           precision=options.precision, edgeitems=options.edgeitems,
                           max_line_width=options.linewidth, suppress_small=options.sci_mode is False,
                           formatter=formatter, floatmode="maxprec", sign="-")
