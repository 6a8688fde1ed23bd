"""torch.autograd.Function: an op written as a forward and a backward on Tensors, with a context object.

    class Cube(tr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 3 * x ** 2 * g

    y = Cube.apply(x)

forward runs without recording (under no_grad) and may take any arguments; the outputs it returns (a
Tensor or a tuple, non-tensors allowed) come from one recorded node whose backward calls `backward(ctx,
*output_grads)`, which returns one gradient per argument of forward (None for a non-tensor or one that
needs none). Written with Tensor ops, that backward is differentiated again under create_graph=True.
torch 2's form, `forward(*args)` with `setup_context(ctx, inputs, output)`, works too. The engine's
own ops subclass `tr.Function` instead (forward on raw arrays); this is the form PyTorch code brings.
"""
import functools

from .tensor import Function as _Op
from .tensor import Tensor, is_grad_enabled, no_grad


class FunctionCtx:
    """What forward leaves for backward: saved tensors (checked against in-place changes since), which
    inputs need a gradient, which outputs have none, whether missing output gradients arrive as zeros;
    any other attribute set on it is kept as it is."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._saved = ()
        self._non_differentiable = set()

    def save_for_backward(self, *tensors):
        for k, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument {k} is of type "
                                f"{type(t).__name__}")
        self._saved = tuple(None if t is None else (t, t._version) for t in tensors)

    @property
    def saved_tensors(self):
        for entry in self._saved:
            if entry is not None and entry[0]._version != entry[1]:
                t, version = entry
                raise RuntimeError(f"one of the variables needed for gradient computation has been modified by an "
                                   f"inplace operation: a tensor of shape {t.shape} saved with "
                                   f"save_for_backward is at version {t._version}; expected version {version}")
        return tuple(None if entry is None else entry[0] for entry in self._saved)

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value):
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        raise NotImplementedError("mark_dirty: a custom Function that changes its inputs in place is not "
                                  "supported; return a new tensor instead")


class _Recorded(_Op):
    """The node a custom Function's outputs come from: its forward hands back the arrays the user's
    forward computed; its backward is the user's."""
    multiple_outputs = True

    def forward(self, *arrays, outputs, custom):
        self.custom = custom
        return outputs

    def backward(self, *gs):
        fn, ctx, positions, argument_count, outputs = self.custom
        if ctx.materialize_grads:
            gs = tuple(Tensor._make(out.xp.zeros_like(out.array), None) if g is None and out is not None else g
                       for g, out in zip(gs, outputs))
        grads = fn.backward(ctx, *gs)
        grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
        # torch allows extra trailing Nones; fewer (or extra non-None) is an error
        if len(grads) < argument_count or any(g is not None for g in grads[argument_count:]):
            raise RuntimeError(f"function {fn.__name__}Backward returned an incorrect number of gradients "
                                   f"(expected {argument_count}, got {len(grads)})")
        picked = []
        for k, shape in zip(positions, self.shapes):
            g = grads[k]
            if g is not None and not isinstance(g, Tensor):
                raise TypeError(f"function {fn.__name__}Backward returned a {type(g).__name__} as the gradient "
                                f"of argument {k}; expected a Tensor or None")
            if g is not None and g.shape != shape:
                try:
                    g = g.expand(*shape) if g.numel() == 1 else g.reshape(shape)
                except ValueError:
                    raise RuntimeError(f"Function {fn.__name__}Backward returned an invalid gradient at index {k} - "
                                       f"got {list(g.shape)} but expected shape compatible with {list(shape)}") from None
            picked.append(g)
        return tuple(picked)


class Function:
    """Subclass it with static `forward(ctx, *args)` and `backward(ctx, *grad_outputs)`; call `apply`."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a custom Function defines forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a custom Function defines backward")

    setup_context = None  # torch 2's form: forward(*args), then setup_context(ctx, inputs, output)

    @classmethod
    def apply(cls, *args, **kwargs):
        if kwargs:
            raise TypeError(f"{cls.__name__}.apply() takes no keyword arguments; pass them by position")
        ctx = FunctionCtx(tuple(isinstance(a, Tensor) and a.requires_grad for a in args))
        with no_grad():
            if cls.setup_context is not None:
                out = cls.forward(*args)
                cls.setup_context(ctx, args, out)
            else:
                out = cls.forward(ctx, *args)
        single = not isinstance(out, (tuple, list))
        outs = (out,) if single else tuple(out)
        tensors = [o for o in outs if isinstance(o, Tensor)]
        positions = [k for k, a in enumerate(args) if isinstance(a, Tensor)]
        if not tensors or not any(ctx.needs_input_grad) or not is_grad_enabled():
            return out
        inputs = [args[k] for k in positions]
        ordered = [o for o in outs if isinstance(o, Tensor)]   # the node's outputs: the tensors, in order
        custom = (cls, ctx, positions, len(args), ordered)
        made = iter(_Recorded.apply(*inputs, outputs=tuple(o.array for o in ordered), custom=custom))
        results = []
        for o in outs:
            if not isinstance(o, Tensor):
                results.append(o)
                continue
            t = next(made)
            results.append(t.detach() if id(o) in ctx._non_differentiable else t)
        return results[0] if single else tuple(results)


def once_differentiable(backward):
    """A custom Function's backward that is not itself differentiable (it may work on arrays): it runs
    unrecorded, so create_graph=True through it gives gradients without a graph, as torch's."""
    @functools.wraps(backward)
    def wrapped(ctx, *grad_outputs):
        with no_grad():
            return backward(ctx, *grad_outputs)
    return wrapped
