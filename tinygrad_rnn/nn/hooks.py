"""Module hooks, called as PyTorch calls them: forward pre-hooks, forward hooks, full backward hooks.

A full backward hook needs the gradients with respect to all of a module's Tensor inputs at once,
and those with respect to its outputs. Both ends of the module are wrapped in an identity over
several tensors: `_Gather` takes the tensors in and gives one flat carrier, and one `_Pick` per
tensor gives each back (the same values) from it. Backward sums what the picks send into the
carrier's gradient, so the gather node runs once, with every gradient in hand: at the outputs it
records them, at the inputs it calls the hooks and hands on what they return.
"""
import itertools
import warnings

import numpy as np

from .. import backend
from ..tensor import Function, Tensor, is_grad_enabled

_handle_ids = itertools.count()


class RemovableHandle:
    """Returned by the register_*_hook methods: remove() takes the hook away (also as a context)."""

    def __init__(self, hooks):
        self.id = next(_handle_ids)
        self._hooks = hooks

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def add(hooks, hook, prepend, with_kwargs):
    if not callable(hook):
        raise TypeError(f"a hook must be callable, got {type(hook).__name__}")
    handle = RemovableHandle(hooks)
    hooks[handle.id] = (hook, with_kwargs)
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


def call_with_hooks(module, args, kwargs):
    """module.forward(*args, **kwargs) with its hooks, in PyTorch's order: forward pre-hooks, the
    inputs wrapped for backward hooks, forward, forward hooks, the outputs wrapped."""
    for hook, with_kwargs in list(module._forward_pre_hooks.values()):
        if with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                                       f"but got {result!r:.80}.")
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    backward = None
    if module._backward_hooks and is_grad_enabled():
        backward = _BackwardHooks(module, [hook for hook, _ in module._backward_hooks.values()])
        args = backward.wrap_inputs(args)
    output = module.forward(*args, **kwargs)
    for hook, with_kwargs in list(module._forward_hooks.values()):
        result = hook(module, args, kwargs, output) if with_kwargs else hook(module, args, output)
        if result is not None:
            output = result
    if backward is not None:
        output = backward.wrap_outputs(output)
    return output


# ----------------------------------------------------------------------------- backward hooks

class _BackwardHooks:
    """One call's backward hooks: remembers the output gradients until the input gradients come."""

    def __init__(self, module, hooks):
        self.module, self.hooks = module, hooks
        self.input_slots = None   # positions of the Tensor inputs; None when none needs a gradient
        self.n_inputs = 0
        self.grad_outputs = None

    def wrap_inputs(self, args):
        self.n_inputs = len(args)
        self.input_slots, self.input_grad_slots = _slots(args)
        if self.input_slots is None:
            return args
        self.input_zeros = {i: (args[i].shape, args[i].dtype, args[i].device) for i in self.input_slots}
        return _wrap(args, self.input_grad_slots, self._inputs_reached)

    def wrap_outputs(self, output):
        single = not isinstance(output, tuple)
        outputs = (output,) if single else output
        self.n_outputs = len(outputs)
        slots, self.output_grad_slots = _slots(outputs)
        if slots is None:
            return output
        wrapped = _wrap(outputs, self.output_grad_slots, self._outputs_reached)
        return wrapped[0] if single else wrapped

    def _outputs_reached(self, grads):
        """The gradients of the outputs (None for an output nothing used); kept for the inputs' turn,
        or, when no input needs a gradient, given to the hooks now with grad_input all None."""
        self.grad_outputs = _spread(grads, self.output_grad_slots, [None] * self.n_outputs)
        if self.input_slots is None:
            warnings.warn("Full backward hook is firing when gradients are computed with respect to module "
                          "outputs since no inputs require gradients.", stacklevel=2)
            grad_inputs = (None,) * self.n_inputs
            for hook in self.hooks:
                result = hook(self.module, grad_inputs, self.grad_outputs)
                if result is not None and not (isinstance(result, tuple) and all(r is None for r in result)):
                    raise RuntimeError("Backward hook for Modules where no input requires gradient should "
                                       "always return None or None for all gradients.")
            self.grad_outputs = None
        return grads

    def _inputs_reached(self, grads):
        """The hooks on the gradients of the inputs; returns those to pass on."""
        if self.grad_outputs is None:  # the gradient reached the inputs without passing the outputs
            return grads
        zeros = [None] * self.n_inputs  # Tensor inputs get zeros where no gradient came, as in PyTorch
        for i, (shape, dtype, device) in self.input_zeros.items():
            zeros[i] = Tensor._make(backend.xp_for(device).zeros(shape, dtype), None)
        grad_inputs = _spread(grads, self.input_grad_slots, zeros)
        for hook in self.hooks:
            result = hook(self.module, grad_inputs, self.grad_outputs)
            if result is None:
                continue
            if not isinstance(result, (tuple, list)) or len(result) != len(grad_inputs):
                got = len(result) if isinstance(result, (tuple, list)) else type(result).__name__
                raise RuntimeError(f"Backward hook returned an invalid number of grad_input, got {got}, "
                                   f"but expected {len(grad_inputs)}")
            grad_inputs = tuple(result)
        self.grad_outputs = None
        return [grad_inputs[slot] for slot in self.input_grad_slots]


def _slots(values):
    """(positions of the Tensors among values, positions of those that need a gradient), or
    (None, None) when none needs one: then nothing is wrapped."""
    tensors = [i for i, v in enumerate(values) if isinstance(v, Tensor)]
    needing = [i for i in tensors if values[i].requires_grad]
    return (tensors, needing) if needing else (None, None)


def _spread(grads, slots, base):
    """`base` (a list) with the gradients placed at their positions where they are not None."""
    for slot, g in zip(slots, grads):
        if g is not None:
            base[slot] = g
    return tuple(base)


def _wrap(values, slots, on_backward):
    """values with the Tensors at `slots` passed through one gather node and picked back out."""
    carrier = _Gather.apply(*[values[i] for i in slots], on_backward=on_backward)
    picked = list(values)
    for k, slot in enumerate(slots):
        picked[slot] = _Pick.apply(carrier, k=k, value=values[slot].array)
        picked[slot].name = values[slot].name
    return tuple(picked)


class _Gather(Function):
    """Several tensors in, one flat carrier out (a view of zeros: nothing is copied). Backward cuts
    the carrier's gradient back into one gradient per tensor (None for those no pick sent one for)
    and hands them to `on_backward`, which returns the gradients to pass on."""
    op = "hook"

    def forward(self, *arrays, on_backward):
        self.on_backward = on_backward
        self.inputs = [(a.shape, a.dtype) for a in arrays]
        self.offsets = np.cumsum([0] + [a.size for a in arrays]).tolist()
        self.arrived = [False] * len(arrays)
        self.dtype = np.result_type(*[a.dtype for a in arrays if a.dtype.kind == "f"] or [np.float32])
        xp = backend.xp_of(arrays[0])
        return xp.broadcast_to(xp.zeros((), self.dtype), (self.offsets[-1],))

    def backward(self, g):
        as_tensor = isinstance(g, Tensor)
        raw = g.array if as_tensor else g
        grads = []
        for k, (shape, dtype) in enumerate(self.inputs):
            piece = raw[self.offsets[k]:self.offsets[k + 1]].reshape(shape)
            grads.append(Tensor._make(piece.astype(dtype, copy=False), None) if self.arrived[k] else None)
        self.arrived = [False] * len(self.inputs)
        return tuple(_engine_form(r, as_tensor) for r in self.on_backward(grads))


class _Pick(Function):
    """Tensor k of a gather's inputs, out of its carrier; backward places its gradient in the carrier's."""
    op = "hook_output"

    def forward(self, carrier, k, value):
        self.k, self.size = k, carrier.size
        return value

    def backward(self, g):
        gather = self.parents[0]
        as_tensor = isinstance(g, Tensor)
        raw = g.array if as_tensor else g
        gather.arrived[self.k] = True
        packed = backend.xp_of(raw).zeros(self.size, gather.dtype)
        packed[gather.offsets[self.k]:gather.offsets[self.k + 1]] = raw.reshape(-1)
        return (Tensor._make(packed, None) if as_tensor else packed,)


def _engine_form(grad, as_tensor):
    """A gradient (a Tensor, an array or None) in the form the engine passes them: Tensor or raw array."""
    if grad is None:
        return None
    if as_tensor:
        return grad if isinstance(grad, Tensor) else Tensor(grad, dtype=grad.dtype)
    return grad.array if isinstance(grad, Tensor) else grad
