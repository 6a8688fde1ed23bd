"""Buffers that outlive a pass: what a compiled pass works in, given back when it is done with it.

A pass takes its buffers (states, saved values, whole-segment temporaries) at forward and gives them
back after its backward (or at once, when nothing will run backward). The next pass of the same
shapes takes the same memory again: a fresh large array would cost page faults on first touch,
which at small sizes cost as much as the arithmetic. Arrays that reach the caller (the output, final
states, gradients) are never taken from here.
"""
import numpy as np

LIMIT_BYTES = 1 << 30   # memory kept for later passes, at most


class Workspace:
    def __init__(self, limit=LIMIT_BYTES):
        self.limit, self.bytes = limit, 0
        self.free = {}   # (array type, shape, dtype) -> arrays nobody uses

    def take(self, shape, dtype, xp=np):
        arrays = self.free.get((xp.ndarray, shape, dtype))
        if arrays:
            array = arrays.pop()
            self.bytes -= array.nbytes
            return array
        return xp.empty(shape, dtype)

    def give(self, arrays):
        for array in arrays:
            if self.bytes + array.nbytes <= self.limit:
                self.free.setdefault((type(array), array.shape, array.dtype), []).append(array)
                self.bytes += array.nbytes

    def clear(self):
        self.free, self.bytes = {}, 0


WORKSPACE = Workspace()


class Lease:
    """The buffers one pass has taken: `alloc(shape, dtype)` takes one, `release()` gives all back."""

    def __init__(self, xp=np, workspace=WORKSPACE):
        self.xp, self.workspace, self.taken = xp, workspace, []

    def alloc(self, shape, dtype):
        array = self.workspace.take(tuple(shape), np.dtype(dtype), self.xp)
        self.taken.append(array)
        return array

    def release(self):
        taken, self.taken = self.taken, []
        self.workspace.give(taken)

    def __del__(self):
        self.release()
