"""torch.autograd.functional: jacobian, hessian, vjp, jvp, hvp and vhp of a function of tensors.

Each takes `inputs` as one Tensor or a tuple of them and returns in torch's structure (a tuple where the
inputs or outputs are tuples). They are tr.func's transforms with torch's older conventions: `v` may be
left out where the output (vjp) or the input (jvp) has one element, and the results carry no graph
unless create_graph=True.
"""
from . import func as _func
from .tensor import Tensor, enable_grad


def _as_tuple(name, what, value):
    """(values as a tuple, whether a single Tensor was given)."""
    if isinstance(value, Tensor):
        return (value,), True
    if isinstance(value, (tuple, list)) and all(isinstance(v, Tensor) for v in value):
        return tuple(value), False
    raise TypeError(f"{name}: {what} must be a Tensor or a tuple of Tensors; got {type(value).__name__}")


def _ones_for(name, what, values):
    for v in values:
        if v.numel() != 1:
            raise RuntimeError(f"{name}: the {what} has {v.numel()} elements (shape {v.shape}), so v must be given "
                               f"(it may be left out only for one element)")
    return tuple(Tensor._make(v.xp.ones(v.shape, dtype=v.dtype), None) for v in values)


def _vectors(name, v, like, what):
    if v is None:
        return _ones_for(name, what, like)
    vs, _ = _as_tuple(name, "v", v)
    if len(vs) != len(like) or any(a.shape != b.shape for a, b in zip(vs, like)):
        raise RuntimeError(f"{name}: v has shapes {[tuple(a.shape) for a in vs]}; the {what} has "
                           f"{[tuple(b.shape) for b in like]}")
    return vs


def _graph_free(tree, create_graph):
    if create_graph:
        return tree
    if isinstance(tree, Tensor):
        return tree.detach()
    return type(tree)(_graph_free(t, False) for t in tree)


def _inputs(name, inputs, create_graph):
    xs, single = _as_tuple(name, "inputs", inputs)
    return (xs if create_graph else tuple(x.detach() for x in xs)), single


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """d func / d inputs: for each output, a block of shape output.shape + input.shape per input."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    xs, single = _inputs("jacobian", inputs, create_graph)
    transform = _func.jacrev if strategy == "reverse-mode" else _func.jacfwd
    result = transform(func, 0 if single else tuple(range(len(xs))))(*xs)
    return _graph_free(result, create_graph)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """The second derivatives of a function with one element of output: input.shape + input.shape blocks
    (a tuple of tuples for a tuple of inputs)."""
    xs, single = _inputs("hessian", inputs, create_graph)
    result = _func.hessian(func, 0 if single else tuple(range(len(xs))))(*xs)
    return _graph_free(result, create_graph)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J), the second shaped as the inputs."""
    xs, single = _inputs("vjp", inputs, create_graph)
    out, vjp_fn = _func.vjp(func, *xs)
    outs, single_out = _as_tuple("vjp", "the output of func", out)
    grads = vjp_fn(_vectors("vjp", v, outs, "output")[0] if single_out else _vectors("vjp", v, outs, "output"))
    return _graph_free(out, create_graph), _graph_free(grads[0] if single else tuple(grads), create_graph)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v), the second shaped as the outputs."""
    xs, _ = _inputs("jvp", inputs, create_graph)
    out, tangent = _func.jvp(func, xs, _vectors("jvp", v, xs, "input"))
    return _graph_free(out, create_graph), _graph_free(tangent, create_graph)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H) for a function with one element of output, the second shaped as the inputs."""
    xs, single = _as_tuple("vhp", "inputs", inputs)
    vs = _vectors("vhp", v, xs, "input")
    leaves = [x.detach().requires_grad_() for x in xs]
    with enable_grad():
        out = func(*leaves)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError(f"vhp: the function must return a Tensor with a single element; got "
                               f"{getattr(out, 'shape', type(out).__name__)}")
        from .autograd import grad
        gs = grad(out, leaves, create_graph=True, materialize_grads=True)
        dot = sum((g * w).sum() for g, w in zip(gs, vs))
        products = grad(dot, leaves, create_graph=create_graph, materialize_grads=True, allow_unused=True)
    products = _graph_free(tuple(products), create_graph)
    return _graph_free(out, create_graph), (products[0] if single else products)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v): H is symmetric for a twice differentiable function, so this is vhp's."""
    return vhp(func, inputs, v, create_graph, strict)
