"""torch.utils.checkpoint: activation checkpointing, trading compute for memory.

`checkpoint(function, *args)` runs `function` unrecorded, so none of its inner arrays is kept; its
outputs come from one node whose backward runs `function` again (with the RNG state of the forward,
so dropout draws the same masks), recorded, and differentiates that. The tensors it reads that
require grad (its arguments, the parameters of a module it calls, any tensor it closes over) are
the node's inputs, noted while the forward runs, so gradients reach all of them, as torch's
non-reentrant checkpoint gives. Under create_graph=True the recomputed graph stays attached to the
inputs' own graph, so the gradient can be differentiated again.
"""
import contextlib
import warnings

from .. import autograd, ops
from ..generator import default_generator
from ..tensor import Function, Tensor, _state, enable_grad, is_grad_enabled, no_grad

__all__ = ["CheckpointError", "checkpoint", "checkpoint_sequential"]

_DETERMINISM_CHECKS = ("default", "none")


class CheckpointError(RuntimeError):
    """The recomputation in backward did not give what the forward gave."""


def _noop_context_fn():
    return contextlib.nullcontext(), contextlib.nullcontext()


def _warn_use_reentrant(caller):
    warnings.warn(f"{caller}: the use_reentrant parameter should be passed explicitly. use_reentrant=False "
                  f"is recommended, but if you need to preserve the current default behavior, you can pass "
                  f"use_reentrant=True. Refer to docs for more details on the differences between the two "
                  f"variants.", stacklevel=3)


def checkpoint(function, *args, use_reentrant=None, context_fn=_noop_context_fn, determinism_check="default",
               debug=False, early_stop=True, **kwargs):
    """`function(*args, **kwargs)`, its intermediate values not kept but recomputed in backward."""
    if use_reentrant is None:
        _warn_use_reentrant("torch.utils.checkpoint")
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if use_reentrant:
        if kwargs:
            raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
        if context_fn is not _noop_context_fn or debug is not False:
            raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
    if determinism_check not in _DETERMINISM_CHECKS:
        raise ValueError(f"determinism_check should be one of {list(_DETERMINISM_CHECKS)}, but got "
                         f"{determinism_check}")
    explicit = [a for a in list(args) + list(kwargs.values()) if isinstance(a, Tensor) and a.requires_grad]
    if use_reentrant and not explicit:  # as torch's reentrant form: nothing to differentiate
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", stacklevel=2)
    if (not is_grad_enabled() or _state.forward_ad or _state.tape is not None
            or (use_reentrant and not explicit)):
        with no_grad() if use_reentrant and not explicit else contextlib.nullcontext():
            return function(*args, **kwargs)  # nothing to save memory on: recorded (or not) as usual
    forward_context, recompute_context = context_fn()
    rng_state = default_generator.get_state() if preserve else None
    reads = _Reads(explicit)
    with no_grad(), _watching(reads), forward_context:
        out = function(*args, **kwargs)
    if not reads.tensors:
        return out
    call = _Call(function, args, kwargs, rng_state, recompute_context, determinism_check == "default")
    return _wrap_outputs(out, reads.tensors, call)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Run `functions` (a Sequential or a list) in `segments` chunks, each but the last checkpointed."""
    from ..nn import Sequential
    if use_reentrant is None:
        _warn_use_reentrant("torch.utils.checkpoint.checkpoint_sequential")
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    if isinstance(functions, Sequential):
        functions = list(functions.children())

    def run(start, end):
        def forward(x):
            for j in range(start, end + 1):
                x = functions[j](x)
            return x
        return forward

    segment_size = len(functions) // segments
    end = -1
    for start in range(0, segment_size * (segments - 1), segment_size):
        end = start + segment_size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant, preserve_rng_state=preserve)
    return run(end + 1, len(functions) - 1)(input)


# ----------------------------------------------------------------------------- forward


class _Reads:
    """The tensors that require grad which the unrecorded forward reads, each once, in order."""

    def __init__(self, first):
        self.tensors, self._seen = [], set()
        self(first)

    def __call__(self, inputs):
        for t in inputs:
            if t.requires_grad and id(t) not in self._seen:
                self._seen.add(id(t))
                self.tensors.append(t)


@contextlib.contextmanager
def _watching(reads):
    before, _state.watch = _state.watch, reads
    try:
        yield
    finally:
        _state.watch = before


class _Call:
    """What backward needs to run the function again as the forward ran it."""

    def __init__(self, function, args, kwargs, rng_state, recompute_context, check):
        self.function, self.args, self.kwargs = function, args, kwargs
        self.rng_state, self.recompute_context, self.check = rng_state, recompute_context, check

    def rerun(self):
        before = default_generator.get_state() if self.rng_state is not None else None
        if before is not None:
            default_generator.set_state(self.rng_state)
        try:
            with enable_grad(), self.recompute_context:
                return self.function(*self.args, **self.kwargs)
        finally:
            if before is not None:
                default_generator.set_state(before)


def _float_tensors(out):
    """The outputs a gradient can flow back through: floating point tensors, at the top level."""
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _wrap_outputs(out, inputs, call):
    """`out` with its floating point tensors replaced by the outputs of one _Checkpoint node."""
    tensors = _float_tensors(out)
    if not tensors:
        return out
    call.output_meta = [(t.shape, t.dtype) for t in tensors]
    made = dict(zip(map(id, tensors), _Checkpoint.apply(*inputs, outputs=tuple(t.array for t in tensors),
                                                        call=call)))
    if isinstance(out, Tensor):
        return made[id(out)]
    return type(out)(made.get(id(o), o) for o in out)


# ----------------------------------------------------------------------------- backward


class _Checkpoint(Function):
    """The node a checkpointed function's outputs come from; its inputs are the tensors the function
    read that require grad. Backward runs the function again and differentiates the recomputation."""
    multiple_outputs = True  # saves nothing: its inputs are kept (as parents), the rest is recomputed

    def forward(self, *arrays, outputs, call):
        self.call = call
        return outputs

    def backward(self, *gs):
        self.check_versions()
        inputs = [self._input_tensor(i) for i in range(len(self.parents))]
        create_graph = is_grad_enabled()  # the engine records gradients only under create_graph=True
        # each input gets a fresh node standing for it, through which the recomputed graph reaches the
        # input's own graph; the gradient is taken where those nodes stand, and goes no further
        with enable_grad():
            stand_ins = [ops.Reshape.apply(t, shape=t.shape) for t in inputs]
        swapped = [(t, t._ctx, t._output_nr) for t in inputs]
        capture = {id(s._ctx): None for s in stand_ins}
        try:  # the function reads its inputs from where it finds them: they stand on the fresh nodes
            for t, s in zip(inputs, stand_ins):
                t._ctx, t._output_nr = s._ctx, 0
            recomputed = _float_tensors(self.call.rerun())
            self._check_recomputed(recomputed)
            pairs = [(o, g) for o, g in zip(recomputed, gs) if g is not None and o.requires_grad]
            if pairs:
                autograd._run([o for o, _ in pairs], [g for _, g in pairs], retain_graph=create_graph,
                              create_graph=create_graph, capture=capture, only=(),
                              stop=frozenset(s._ctx for s in stand_ins))
        finally:
            for t, ctx, nr in swapped:
                t._ctx, t._output_nr = ctx, nr
        return tuple(capture[id(s._ctx)] for s in stand_ins)

    def _input_tensor(self, i):
        return self.versions[i][0]

    def _check_recomputed(self, recomputed):
        meta = [(t.shape, t.dtype) for t in recomputed]
        if self.call.check and meta != self.call.output_meta:
            raise CheckpointError(f"torch.utils.checkpoint: Recomputed values have different metadata than "
                                  f"during the original forward pass: the forward gave "
                                  f"{_described(self.call.output_meta)}, the recomputation "
                                  f"{_described(meta)}")
        if len(recomputed) != len(self.call.output_meta):
            raise CheckpointError(f"torch.utils.checkpoint: the recomputation gave {len(recomputed)} floating "
                                  f"point outputs; the forward gave {len(self.call.output_meta)}")


def _described(meta):
    return ", ".join(f"{tuple(shape)} {dtype}" for shape, dtype in meta) or "nothing"
