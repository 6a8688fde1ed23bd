"""Module hooks, called as PyTorch calls them: forward pre-hooks, forward hooks, full backward
pre-hooks and full backward hooks.

A full backward hook needs the gradients with respect to all of a module's Tensor inputs at once,
and those with respect to its outputs. Both ends of the module are wrapped in an identity over
several tensors, one node with an output per tensor (`_Identity`), so its backward runs once with
every gradient in hand: at the outputs it records them, at the inputs it calls the hooks and hands
on what they return.
"""
import warnings

from .. import backend
from ..autograd import RemovableHandle
from ..tensor import Function, Tensor, is_grad_enabled


class _Hook:
    """One registration (compared by identity, so a handle removes exactly its own)."""
    __slots__ = ("fn", "with_kwargs")

    def __init__(self, fn, with_kwargs):
        self.fn, self.with_kwargs = fn, with_kwargs


def add(hooks, fn, prepend, with_kwargs):
    """Register fn in the list `hooks` (first when prepend); returns the handle that removes it."""
    if not callable(fn):
        raise TypeError(f"a hook must be callable, got {type(fn).__name__}")
    hook = _Hook(fn, with_kwargs)
    hooks.insert(0 if prepend else len(hooks), hook)
    return RemovableHandle(hooks, hook)


def call_with_hooks(module, args, kwargs):
    """module.forward(*args, **kwargs) with its hooks, in PyTorch's order: forward pre-hooks, the
    inputs wrapped for backward hooks, forward, forward hooks, the outputs wrapped."""
    for hook in list(module._forward_pre_hooks):
        if hook.with_kwargs:
            result = hook.fn(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                                       f"but got {result!r:.80}.")
                args, kwargs = result
        else:
            result = hook.fn(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    backward = None
    if (module._backward_hooks or module._backward_pre_hooks) and is_grad_enabled():
        backward = _BackwardHooks(module, [hook.fn for hook in module._backward_hooks],
                                  [hook.fn for hook in module._backward_pre_hooks])
        args = backward.wrap_inputs(args)
    output = module.forward(*args, **kwargs)
    for hook in list(module._forward_hooks):
        result = hook.fn(module, args, kwargs, output) if hook.with_kwargs else hook.fn(module, args, output)
        if result is not None:
            output = result
    if backward is not None:
        output = backward.wrap_outputs(output)
    return output


# ----------------------------------------------------------------------------- backward hooks

class _BackwardHooks:
    """One call's backward hooks: remembers the output gradients until the input gradients come."""

    def __init__(self, module, hooks, pre_hooks=()):
        self.module, self.hooks, self.pre_hooks = module, hooks, pre_hooks
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
        """The gradients of the outputs (None for an output nothing used): given to the pre-hooks, which
        may replace them, then kept for the inputs' turn, or, when no input needs a gradient, given to
        the hooks now with grad_input all None. Returns those to pass on into the module."""
        self.grad_outputs = _spread(grads, self.output_grad_slots, [None] * self.n_outputs)
        for hook in self.pre_hooks:
            result = hook(self.module, self.grad_outputs)
            if result is None:
                continue
            if not isinstance(result, (tuple, list)) or len(result) != self.n_outputs:
                got = len(result) if isinstance(result, (tuple, list)) else type(result).__name__
                raise RuntimeError(f"Backward pre hook returned an invalid number of grad_output, got {got}, "
                                   f"but expected {self.n_outputs}")
            self.grad_outputs = tuple(result)
        grads = [self.grad_outputs[slot] for slot in self.output_grad_slots]
        if self.input_slots is None and self.hooks:
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
    """values with the Tensors at `slots` passed through one identity node."""
    passed = _Identity.apply(*[values[i] for i in slots], on_backward=on_backward)
    wrapped = list(values)
    for slot, tensor in zip(slots, passed):
        wrapped[slot] = tensor.named(values[slot].name)
    return tuple(wrapped)


class _Identity(Function):
    """Several tensors in, the same values out, from one node. Its backward hands the gradients of
    all its outputs (None for those nothing used) to `on_backward`, which returns those to pass on."""
    op = "hook"
    saves = ()
    multiple_outputs = True

    def forward(self, *arrays, on_backward):
        self.on_backward = on_backward
        return arrays

    def backward(self, *grads):
        return tuple(self.on_backward(list(grads)))

    def jvp(self, inputs, tangents):
        return tuple(tangents)
