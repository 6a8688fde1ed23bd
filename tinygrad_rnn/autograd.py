"""The backward pass: `Tensor.backward`, `tr.autograd.grad` and tensor hooks.

Backward is iterative (Kahn's order, no recursion), so an unrolled graph of any depth works: a node
runs once every consumer has sent its gradient. Gradients are Tensors. Without `create_graph` the
ops' VJPs run unrecorded and gradients add up in place; with it they are recorded like any forward
computation, so the gradients can be differentiated again.
"""
import itertools
import sys

from . import backend
from .ops import unbroadcast as _unbroadcast
from .tensor import Function as _Op
from .tensor import Tensor, _state, enable_grad, no_grad

_FIRST_OUTPUTS = itertools.repeat(0)  # the output every edge reads unless it says otherwise
_NOTHING_SAVED = {}  # a freed node's versions: never written


def Variable(data, requires_grad=False, volatile=False):
    """torch.autograd.Variable, which old code still calls: since Variables became Tensors, a leaf that
    shares `data`'s memory and requires grad as asked (`volatile` is ignored, as in torch)."""
    if not isinstance(data, Tensor):
        raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
    return data.detach().requires_grad_(requires_grad)


class RemovableHandle:
    """What `register_hook` returns: `.remove()` takes the hook out again."""

    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


# ----------------------------------------------------------------------------- public entry points


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of `tensors` into the `.grad` of the leaves (or of `inputs` only)."""
    tensors, grads = _roots("backward", tensors, grad_tensors)
    if retain_graph is None:
        retain_graph = create_graph
    only = None
    if inputs is not None:
        only = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        if not only:
            raise ValueError("backward: inputs= must name at least one tensor")
        for t in only:
            if not isinstance(t, Tensor):
                raise TypeError(f"backward: inputs= holds a {type(t).__name__}, not a Tensor")
            if not t.requires_grad:
                raise RuntimeError(f"backward: inputs= holds a tensor of shape {t.shape} that does not require grad")
        for t in only:
            if t._ctx is not None:  # as torch: a tensor that is not a leaf retains its gradient from now on
                t.retain_grad()
    _run(tensors, grads, retain_graph, create_graph, capture=None, only=only)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False,
         materialize_grads=False):
    """The gradients of `outputs` with respect to `inputs`, returned (not accumulated), as torch.autograd.grad."""
    outputs, grads = _roots("grad", outputs, grad_outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if not inputs:
        raise ValueError("grad: inputs must hold at least one tensor")
    for k, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: inputs[{k}] is a {type(t).__name__}, not a Tensor")
        if not t.requires_grad:
            raise RuntimeError(f"grad: inputs[{k}] (shape {t.shape}) does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    capture = {}
    for t in inputs:
        capture.setdefault(_key(t), None)
    _run(outputs, grads, retain_graph, create_graph, capture=capture, only=())
    result = []
    for k, t in enumerate(inputs):
        g = capture[_key(t)]
        if g is None:
            if not (allow_unused or materialize_grads):
                raise RuntimeError(f"grad: inputs[{k}] (shape {t.shape}) was not used to compute the outputs; "
                                   f"pass allow_unused=True to get None for it")
            if materialize_grads:
                g = Tensor._make(t.xp.zeros(t.shape, dtype=t.dtype), None)
        elif g.shape != t.shape:
            g = _unbroadcast(g, t.shape)
        result.append(g)
    return tuple(result)


def _key(t):
    """What autograd.grad's capture files a tensor's gradient under: its node (and which output), or
    the leaf itself."""
    if t._ctx is None:
        return id(t)
    return (id(t._ctx), t._output_nr) if t._ctx.multiple_outputs else id(t._ctx)


def _roots(caller, tensors, grads):
    """The output tensors and their starting gradients (ones for a scalar), checked."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grads is None or isinstance(grads, Tensor) or not isinstance(grads, (list, tuple)):
        grads = [grads] * len(tensors) if len(tensors) == 1 or grads is None else [grads]
    grads = list(grads)
    if len(grads) != len(tensors):
        raise ValueError(f"{caller}: got {len(grads)} gradients for {len(tensors)} outputs")
    out_tensors, out_grads = [], []
    for k, (t, g) in enumerate(zip(tensors, grads)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{caller}: outputs[{k}] is a {type(t).__name__}, not a Tensor")
        if not t.requires_grad:
            raise RuntimeError(f"{caller}: element {k} of the outputs does not require grad and has no graph "
                               f"(was it made under no_grad, or from inputs without requires_grad?)")
        if g is None:
            if t.array.size != 1:
                raise RuntimeError(f"{caller}: grad can be implicitly created only for a scalar output; got "
                                   f"shape {t.shape}, pass a gradient of that shape")
            g = Tensor._make(t.xp.ones_like(t.array), None)
        else:
            if not isinstance(g, Tensor):
                g = Tensor._make(t.xp.asarray(g, dtype=t.dtype), None)
            if g.shape != t.shape:
                raise ValueError(f"{caller}: the gradient has shape {g.shape} but the output has {t.shape}")
        out_tensors.append(t)
        out_grads.append(g)
    return out_tensors, out_grads


# ----------------------------------------------------------------------------- the engine


def _graph_nodes(roots, stop, watched=None):
    """All nodes above `roots`, each with `pending` = how many consumers it has in this graph.

    Nodes in `stop` are boundaries: their parents are not visited. `watched`, when given, gets
    {id(leaf): [leaf, consumers]} for the leaves with post-accumulate hooks.
    """
    seen = set()
    stack = []
    for root in roots:
        if root not in seen:
            root.pending = 0
            seen.add(root)
            stack.append(root)
    while stack:
        node = stack.pop()
        if node in stop:
            continue
        for p in node.parents:
            if isinstance(p, _Op):
                if p in seen:
                    p.pending += 1
                else:
                    p.pending = 1
                    seen.add(p)
                    stack.append(p)
            elif watched is not None and p._post_hooks and p.requires_grad:
                watched.setdefault(id(p), [p, 0])[1] += 1
    return seen


def _run(tensors, grads, retain_graph, create_graph, capture, only, stop=frozenset()):
    """Backpropagate `grads` from `tensors`.

    capture: {id(leaf) or id(node): None} filled with the gradient reaching each (autograd.grad), or
    None to accumulate into leaves' `.grad`; only: leaves allowed to accumulate (None: all).
    stop: nodes whose gradient is captured without running their backward.
    """
    generic = create_graph or _state.forward_ad  # gradients as recorded or tangent-carrying tensors
    mode = enable_grad() if create_graph else no_grad()
    xp = backend.xp_of(tensors[0].array) if tensors else None
    with mode, backend.ieee_quiet(xp):   # a gradient may be inf or NaN (0 * 1/0): torch's, silently
        for t, g in zip(tensors, grads):
            if t._ctx is None:
                _to_leaf(t, g, capture, only, create_graph)
                if capture is None:
                    _post_accumulate(t)
        roots = [t._ctx for t in tensors if t._ctx is not None]
        if not roots:
            return
        watched = {} if capture is None else None
        _graph_nodes(roots, stop, watched)
        for t, g in zip(tensors, grads):
            if t._ctx is not None:
                _add_grad(t._ctx, g, generic, t._output_nr)
        ready = [node for node in dict.fromkeys(roots) if node.pending == 0]  # roots no other root consumes
        while ready:
            node = ready.pop()
            _step(node, retain_graph, create_graph, generic, capture, only, stop, ready, watched)


def _step(node, retain_graph, create_graph, generic, capture, only, stop, ready, watched):
    if node.freed:
        raise _freed(node)
    g, node.g = node.g, None
    if node.multiple_outputs:
        _outputs_arrived(node, g, create_graph, capture)
    else:
        if g is not None and node.hooks:
            for hook in list(node.hooks):
                replaced = hook(g)
                if replaced is not None:
                    g = replaced
        if g is not None and node.keep_grad:
            node.grad = _kept(node.grad, g, create_graph)
        if capture is not None and id(node) in capture and g is not None:
            capture[id(node)] = g if capture[id(node)] is None else capture[id(node)] + g
    if node in stop:
        return
    grads = _vjp(node, g, create_graph, generic, capture is None and only is None)
    if _state.detect_anomaly:
        _check_finite(node, grads)
    if not retain_graph:
        kept = node.kept_for_drawing() if node.kept_for_drawing is not None else None
        node.__dict__.clear()
        if kept:
            node.__dict__.update(kept)
        node.saved = node.tangents = None
        node.versions = _NOTHING_SAVED  # nor the tensors whose versions it checked
        node.freed = True
    for parent, gi, shape, nr in zip(node.parents, grads, node.shapes, node.slots or _FIRST_OUTPUTS):
        if isinstance(parent, _Op):
            if gi is not None:
                if gi.shape != shape:
                    gi = _unbroadcast(gi, shape)
                if parent.multiple_outputs:
                    _add_grad(parent, gi, generic, nr)
                elif parent.g is None:  # the first gradient to arrive (_add_grad's first case, inline)
                    parent.g, parent.g_owned = gi, False
                else:
                    _add_grad(parent, gi, generic)
            parent.pending -= 1
            if parent.pending == 0:
                ready.append(parent)  # every consumer has sent its gradient (or None)
        else:
            if gi is not None and parent.requires_grad:
                _to_leaf(parent, gi if gi.shape == shape else _unbroadcast(gi, shape), capture, only, create_graph)
            if watched and id(parent) in watched:
                entry = watched[id(parent)]
                entry[1] -= 1
                if entry[1] == 0:  # every consumer has run: this backward's gradient is final
                    _post_accumulate(parent)


def _vjp(node, g, create_graph, generic, accumulating):
    """One gradient (a Tensor or None) per input of `node`; `accumulating`: into leaves' .grad, every leaf."""
    if g is None:
        return (None,) * len(node.parents)
    if node.multiple_outputs:
        return _call_backward(node, g, create_graph, generic)
    parent = node.parents[0]
    if node.backward_into is not None and not generic and (
            (isinstance(parent, _Op) and not parent.multiple_outputs)
            or (isinstance(parent, Tensor) and accumulating and not parent._hooks)):  # hooks see the gradient
        # a slice: its gradient lands in the input's own buffer
        if isinstance(parent, _Op) or parent.requires_grad:
            node.check_versions()
            node.backward_into(g.array, _gradient_buffer(parent, node.shapes[0], g.array))
        return (None,)
    if node.array_backward:
        return _call_backward(node, (g,), create_graph, generic)
    return node.backward(g)


def _call_backward(node, gs, create_graph, generic):
    """node's backward on the gradients of its outputs `gs` (Tensors or None): on raw arrays, or
    recorded when the node can differentiate its backward."""
    if not node.array_backward:
        return node.backward(*gs)
    if generic and hasattr(node, "differentiable_backward"):
        return node.differentiable_backward(*gs)
    if create_graph:
        raise RuntimeError(f"backward: {node.op}'s backward is not differentiable, so create_graph=True "
                           f"cannot pass through it")
    node.check_versions()
    wrap = Tensor._make
    arrays = [None if g is None else g.array for g in gs]
    return tuple(None if gi is None else wrap(gi, None) for gi in node.backward(*arrays))


def _check_finite(node, grads):
    """Anomaly mode: the first backward to give a NaN is named, as torch names it."""
    for k, gi in enumerate(grads):
        if gi is not None and gi.dtype.kind in "fc" and bool(gi.xp.isnan(gi.array).any()):
            where = "".join(f" {name}={index}" for name, index in (node.scope or ()))
            raise RuntimeError(f"Function '{node.op}Backward' returned nan values "
                               f"in its {k}th output{' (recorded at' + where + ')' if where else ''}.")


class set_detect_anomaly:
    """Anomaly mode on or off: each backward's gradients are checked for NaN and the first op to give
    one is named (slower: one check per node). Called alone, from now on; as a `with` block, until its end."""

    def __init__(self, mode, check_nan=True):
        self.before = _state.detect_anomaly
        _state.detect_anomaly = bool(mode) and bool(check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _state.detect_anomaly = self.before


def detect_anomaly(check_nan=True):
    """Anomaly mode inside a `with` block (or a decorated function)."""
    from .tensor import using_config
    return using_config("detect_anomaly", bool(check_nan))


def is_anomaly_enabled():
    return _state.detect_anomaly


class OutputHook:
    """A tensor hook on one output of a node with several: `fn(grad)` for output `nr` only."""
    __slots__ = ("fn", "nr")

    def __init__(self, nr, fn):
        self.nr, self.fn = nr, fn


def _outputs_arrived(node, gs, create_graph, capture):
    """For a node with several outputs, what a single-output node does with its gradient, output by
    output: hooks, retained gradients, autograd.grad's capture. `gs` is changed in place."""
    if gs is None:
        return
    for hook in list(node.hooks or ()):
        g = gs[hook.nr]
        if g is not None:
            replaced = hook.fn(g)
            if replaced is not None:
                gs[hook.nr] = replaced
    keep = node.keep_grad
    if keep:  # True: every output (retain_grads()); else the outputs whose retain_grad() was called
        kept = node.grad or [None] * len(gs)
        node.grad = [k if g is None or (keep is not True and nr not in keep) else _kept(k, g, create_graph)
                     for nr, (k, g) in enumerate(zip(kept, gs))]
    if capture is not None:
        for k, g in enumerate(gs):
            key = (id(node), k)
            if g is not None and key in capture:
                capture[key] = g if capture[key] is None else capture[key] + g


def _kept(kept, g, create_graph):
    """A retained gradient after `g` arrives."""
    return g if kept is None or create_graph else Tensor._make(kept.array + g.array, None)


def _add_grad(node, g, generic, nr=0):
    if node.multiple_outputs:  # one gradient per output
        if node.g is None:
            if node.freed:  # how many outputs it has went with the rest
                raise _freed(node)
            node.g = [None] * len(node.output_shapes)
        node.g[nr] = g if node.g[nr] is None else node.g[nr] + g
        return
    if node.g is None:
        node.g, node.g_owned = g, False
    elif generic:
        node.g = node.g + g
    elif node.g_owned:
        node.g.array += g.array
    else:
        node.g, node.g_owned = Tensor._make(node.g.array + g.array, None), True


def _freed(node):
    return RuntimeError(f"backward: trying to backward through the graph a second time (op {node.op}); its "
                        f"saved arrays were freed. Pass retain_graph=True to the first backward to keep them")


def _gradient_buffer(parent, shape, like):
    """A gradient array that belongs to `parent` alone, so it can be written in place.

    A gradient handed over by an op may be shared (Add sends the same array to both inputs);
    only arrays the engine made itself are marked owned.
    """
    if isinstance(parent, _Op):
        if parent.g is None:
            parent.g = Tensor._make(backend.xp_of(like).zeros(shape, dtype=like.dtype), None)
        elif not parent.g_owned:
            parent.g = Tensor._make(parent.g.array.copy(), None)
        parent.g_owned = True
        return parent.g.array
    if parent._grad is None:
        parent._grad = Tensor._make(parent.xp.zeros(shape, dtype=parent.dtype), None)
    elif parent._grad._ctx is not None:
        parent._grad = Tensor._make(parent._grad.array.copy(), None)
    return parent._grad.array


def _to_leaf(tensor, g, capture, only, create_graph):
    """Hand `g` to a leaf: its hooks, then autograd.grad's capture or the leaf's `.grad`."""
    if tensor._hooks:
        for hook in list(tensor._hooks):
            replaced = hook(g)
            if replaced is not None:
                g = replaced
    if g.dtype != tensor.dtype:
        g = g.to(dtype=tensor.dtype)
    if capture is not None:
        key = id(tensor)
        if key in capture:
            capture[key] = g if capture[key] is None else capture[key] + g
        return
    if only is not None and not any(t is tensor for t in only):
        return
    if tensor._grad is None:
        # a fresh array: backward may hand the same g to several inputs
        tensor._grad = g if create_graph else Tensor._make(g.array.copy(), None)
    elif create_graph or tensor._grad._ctx is not None:
        tensor._grad = tensor._grad + g
    else:
        tensor._grad.array += g.array


def _post_accumulate(tensor):
    for hook in list(tensor._post_hooks or ()):
        hook(tensor)


def node_hooks(node):
    """The hook list of a recorded node, made on first use."""
    if node.hooks is None:
        node.hooks = []
    return node.hooks



# torch.autograd.Function (ctx-style custom ops) and torch.autograd.functional
from . import autograd_forward_ad as forward_ad
from . import autograd_functional as functional
from .custom_function import Function, FunctionCtx, once_differentiable

# `import tinygrad_rnn.autograd.forward_ad as fwAD`, as torch code writes it, though this is a module
sys.modules[__name__ + ".forward_ad"], sys.modules[__name__ + ".functional"] = forward_ad, functional

__all__ = ["Function", "FunctionCtx", "backward", "detect_anomaly", "forward_ad", "functional", "grad", "is_anomaly_enabled",
           "once_differentiable", "set_detect_anomaly"]
