"""Function transforms with torch.func's semantics: vjp, jvp, grad, jacrev, jacfwd, hessian, vmap.

Reverse mode records `f` on fresh inputs and runs the engine's backward; forward mode pushes tangents
through each primitive's JVP rule as `f` runs (one pass, no backward). The transforms compose: a
gradient is recorded whenever an outer transform (or an outer graph) will differentiate it again, so
`hessian = jacfwd(jacrev(f))` is forward-over-reverse. Nested forward mode (jacfwd of jacfwd) is not
supported; use hessian or jacrev over jacfwd.
"""
import contextlib

import numpy as np

from . import autograd
from .tensor import Tensor, _state, enable_grad, stack

__all__ = ["functional_call", "grad", "grad_and_value", "hessian", "jacfwd", "jacrev", "jvp", "linearize",
           "stack_module_state", "vjp", "vmap"]


# ----------------------------------------------------------------------------- helpers


def _flatten(tree):
    """(the Tensors of a tree of tuples, lists and dicts, in order; its structure), as torch's pytrees:
    grad(loss)(params, x) with params a dict of tensors gives a dict of gradients."""
    if isinstance(tree, (tuple, list, dict)):
        keys = list(tree) if isinstance(tree, dict) else None
        leaves, specs = [], []
        for item in (tree.values() if keys is not None else tree):
            sub, spec = _flatten(item)
            leaves += sub
            specs.append(spec)
        return leaves, (type(tree), keys, specs)
    return [tree], None


def _unflatten(spec, leaves):
    """The tree of structure `spec` (from _flatten) holding `leaves` in order."""
    items = iter(leaves)

    def build(spec):
        if spec is None:
            return next(items)
        kind, keys, specs = spec
        values = [build(s) for s in specs]
        if keys is not None:
            return kind(zip(keys, values))
        return kind(*values) if hasattr(kind, "_fields") else kind(values)  # a namedtuple takes fields
    return build(spec)


def _check_tensors(caller, values, what):
    for k, v in enumerate(values):
        if not isinstance(v, Tensor):
            raise TypeError(f"{caller}: {what}[{k}] must be a Tensor; got {type(v).__name__}")
        if v.dtype.kind != "f":
            raise TypeError(f"{caller}: {what}[{k}] must be floating point to be differentiated; got {v.dtype}")


def _fresh(p):
    """A new tensor for `p` to differentiate against: a node on p's graph when p has one, else a leaf.

    Either way it keeps p's forward-mode tangent, so forward over reverse sees it.
    """
    if p.requires_grad:
        with enable_grad():
            x = p.reshape(p.shape)
    else:
        x = Tensor._make(p.array, None).requires_grad_(True)
    x._tangent = p._tangent
    return x


def _outer_needs_graph(primals):
    """Whether an outer transform or graph differentiates what this one computes by reverse mode.

    (An outer forward mode needs no recording: tangents ride along the unrecorded backward ops.)
    """
    return any(p.requires_grad for p in primals)


def _argnums(caller, argnums, count):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for n in nums:
        if not -count <= n < count:
            raise ValueError(f"{caller}: argnums {argnums} out of range for {count} positional arguments")
    return tuple(n % count for n in nums), single


def _of_chosen(func, args, nums, kwargs=None):
    """func as a function of args[n] for n in nums alone, the other arguments held fixed."""
    def partial(*chosen):
        full = list(args)
        for n, t in zip(nums, chosen):
            full[n] = t
        return func(*full, **(kwargs or {}))
    return partial


def _flat_outputs(out):
    return (list(out), True) if isinstance(out, (tuple, list)) else ([out], False)


def _split_aux(caller, out, has_aux):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ValueError(f"{caller}(has_aux=True): the function must return a (output, aux) pair")
    return out


def _unit(shape, k, like):
    e = like.xp.zeros(int(np.prod(shape)), dtype=like.dtype)
    e[k] = 1
    return Tensor._make(e.reshape(shape), None)


def _stack_rows(rows, out_shape, in_shape):
    return stack(rows, 0).reshape(tuple(out_shape) + tuple(in_shape))


# ----------------------------------------------------------------------------- reverse mode


def vjp(func, *primals, has_aux=False):
    """(func(*primals), vjp_fn[, aux]); vjp_fn(cotangents) returns one gradient per primal. Primals,
    outputs and cotangents may be trees (tuples, lists, dicts) of tensors, as torch.func's pytrees."""
    flat, spec = _flatten(primals)
    _check_tensors("vjp", flat, "primals")
    create = _outer_needs_graph(flat)
    inputs = [_fresh(p) for p in flat]
    with enable_grad():
        out, aux = _split_aux("vjp", func(*_unflatten(spec, inputs)), has_aux)
    outs, out_spec = _flatten(out)
    _check_tensors("vjp", outs, "outputs")

    def vjp_fn(cotangents):
        cots, _ = _flatten(cotangents)
        if len(cots) != len(outs):
            raise ValueError(f"vjp_fn: got {len(cots)} cotangents for {len(outs)} outputs")
        for k, (c, o) in enumerate(zip(cots, outs)):
            if not isinstance(c, Tensor) or c.shape != o.shape:
                raise ValueError(f"vjp_fn: cotangent {k} must be a Tensor of shape {o.shape}; got "
                                 f"{getattr(c, 'shape', type(c).__name__)}")
        pairs = [(o, c) for o, c in zip(outs, cots) if o.requires_grad]
        if not pairs:
            grads = [Tensor._make(p.xp.zeros(p.shape, dtype=p.dtype), None) for p in flat]
        else:
            grads = autograd.grad([o for o, _ in pairs], inputs, [c for _, c in pairs], retain_graph=True,
                                  create_graph=create, materialize_grads=True)
        return _unflatten(spec, grads)

    result = (out if create else _unflatten(out_spec, [o.detach() for o in outs]),)
    return result + (vjp_fn,) + ((aux,) if has_aux else ())


def grad_and_value(func, argnums=0, has_aux=False):
    """A function returning (gradient of the scalar func w.r.t. argnums, value[, aux])."""
    def wrapper(*args, **kwargs):
        nums, single = _argnums("grad", argnums, len(args))
        _check_tensors("grad", _flatten([args[n] for n in nums])[0], "args")
        value, vjp_fn, *aux = vjp(_of_chosen(func, args, nums, kwargs), *[args[n] for n in nums], has_aux=has_aux)
        if not isinstance(value, Tensor) or value.numel() != 1:
            raise RuntimeError(f"grad: the function must return a scalar tensor; got "
                               f"{getattr(value, 'shape', type(value).__name__)}")
        grads = vjp_fn(Tensor._make(value.xp.ones(value.shape, dtype=value.dtype), None))
        g = grads[0] if single else grads
        return ((g, (value, aux[0])) if has_aux else (g, value))
    return wrapper


def grad(func, argnums=0, has_aux=False):
    """A function returning the gradient of the scalar `func` w.r.t. its argnums (and aux)."""
    inner = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        g, value = inner(*args, **kwargs)
        return (g, value[1]) if has_aux else g
    return wrapper


def jacrev(func, argnums=0, has_aux=False):
    """The Jacobian by reverse mode: one VJP per output element; shape out.shape + in.shape (trees of
    outputs and of inputs give a tree of such blocks, as torch.func.jacrev)."""
    def wrapper(*args):
        nums, single = _argnums("jacrev", argnums, len(args))
        chosen = [args[n] for n in nums]
        flat, spec = _flatten(chosen)
        out, vjp_fn, *aux = vjp(_of_chosen(func, args, nums), *chosen, has_aux=has_aux)
        outs, out_spec = _flatten(out)
        per_output = []
        for k, o in enumerate(outs):
            rows = []
            for i in range(o.numel()):
                cots = [_unit(o.shape, i, o) if j == k else Tensor._make(x.xp.zeros(x.shape, dtype=x.dtype), None)
                        for j, x in enumerate(outs)]
                rows.append(_flatten(vjp_fn(_unflatten(out_spec, cots)))[0])
            blocks = [_stack_rows([r[m] for r in rows], o.shape, x.shape) if rows else
                      Tensor._make(o.xp.zeros(o.shape + x.shape, dtype=o.dtype), None) for m, x in enumerate(flat)]
            jac = _unflatten(spec, blocks)
            per_output.append(jac[0] if single else tuple(jac))
        result = _unflatten(out_spec, per_output)
        return (result, aux[0]) if has_aux else result
    return wrapper


# ----------------------------------------------------------------------------- forward mode


@contextlib.contextmanager
def _forward_mode():
    if _state.forward_ad:
        raise NotImplementedError("jvp inside jvp (nested forward mode) is not supported; for second "
                                  "derivatives use hessian (forward over reverse) or jacrev(jacfwd(f))")
    _state.forward_ad = True
    try:
        yield
    finally:
        _state.forward_ad = False


def jvp(func, primals, tangents, has_aux=False):
    """(func(*primals), the directional derivative along tangents), by one forward-mode pass. Primals
    and tangents may be trees (tuples, lists, dicts) of tensors of one structure."""
    flat, spec = _flatten(tuple(primals))
    flat_tangents, _ = _flatten(tuple(tangents))
    _check_tensors("jvp", flat, "primals")
    if len(flat_tangents) != len(flat):
        raise ValueError(f"jvp: got {len(flat_tangents)} tangents for {len(flat)} primals")
    for k, (p, t) in enumerate(zip(flat, flat_tangents)):
        if not isinstance(t, Tensor) or t.shape != p.shape or t.dtype != p.dtype:
            raise ValueError(f"jvp: tangents[{k}] must be a Tensor of shape {p.shape} and dtype {p.dtype}; got "
                             f"{getattr(t, 'shape', type(t).__name__)} {getattr(t, 'dtype', '')}")
    inputs = []
    for p, t in zip(flat, flat_tangents):
        x = p.reshape(p.shape) if p.requires_grad else Tensor._make(p.array, None)
        x._tangent = t
        inputs.append(x)
    with _forward_mode():
        out, aux = _split_aux("jvp", func(*_unflatten(spec, inputs)), has_aux)
    outs, out_spec = _flatten(out)
    _check_tensors("jvp", outs, "outputs")
    tangents_out = []
    for o in outs:
        t = o._tangent
        o._tangent = None
        tangents_out.append(t if t is not None else Tensor._make(o.xp.zeros(o.shape, dtype=o.dtype), None))
    result = (_unflatten(out_spec, outs), _unflatten(out_spec, tangents_out))
    return result + ((aux,) if has_aux else ())


def linearize(func, *primals):
    """(func(*primals), jvp_fn), as torch.func.linearize: jvp_fn(*tangents) is the JVP of func at
    `primals` along `tangents`, the primals fixed (each call is one forward-mode pass)."""
    _check_tensors("linearize", _flatten(primals)[0], "primals")
    output = func(*primals)

    def jvp_fn(*tangents):
        return jvp(func, primals, tangents)[1]
    return output, jvp_fn


def jacfwd(func, argnums=0, has_aux=False):
    """The Jacobian by forward mode: one JVP per input element; shape out.shape + in.shape."""
    def wrapper(*args):
        nums, single = _argnums("jacfwd", argnums, len(args))
        columns = {n: [] for n in nums}
        out = aux = None
        partial = _of_chosen(func, args, nums)
        for n in nums:
            x = args[n]
            for i in range(x.numel()):
                tangents = [_unit(x.shape, i, x) if m == n else Tensor._make(args[m].xp.zeros(
                    args[m].shape, dtype=args[m].dtype), None) for m in nums]
                out, tangent, *rest = jvp(partial, [args[m] for m in nums], tangents, has_aux=has_aux)
                aux = rest[0] if rest else None
                columns[n].append(tangent)
        outs, is_tuple = _flat_outputs(out)
        per_output = []
        for k, o in enumerate(outs):
            jac = []
            for n in nums:
                cols = [c[k] if is_tuple else c for c in columns[n]]
                jac.append(stack(cols, -1).reshape(o.shape + args[n].shape) if cols else
                           Tensor._make(o.xp.zeros(o.shape + args[n].shape, dtype=o.dtype), None))
            per_output.append(jac[0] if single else tuple(jac))
        result = tuple(per_output) if is_tuple else per_output[0]
        return (result, aux) if has_aux else result
    return wrapper


def hessian(func, argnums=0):
    """The Hessian of a scalar function: jacfwd(jacrev(func)), forward over reverse."""
    return jacfwd(jacrev(func, argnums), argnums)


# ----------------------------------------------------------------------------- batching


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """func mapped over a batch dim of its inputs, as torch.func.vmap: in_dims says, per argument (a tree
    of them, or one int for all; None: not mapped), which dim is the batch; out_dims where it goes in the
    outputs. Each batch element runs func on its own and the results are stacked, so gradients (and
    transforms such as vmap(grad(f))) flow through; the speed is that of a loop."""
    def wrapper(*args, **kwargs):
        flat, spec = _flatten(args)
        dims = _dims_per_leaf(in_dims, args)
        sizes = set()
        for k, (x, d) in enumerate(zip(flat, dims)):
            if d is None:
                continue
            if not isinstance(x, Tensor):
                raise TypeError(f"vmap: input {k} is a {type(x).__name__}, but in_dims maps it over dim {d}; "
                                 f"give None for inputs that are not tensors")
            if not -x.ndim <= d < x.ndim:
                raise ValueError(f"vmap: in_dim {d} is out of range for input {k} of shape {x.shape}")
            sizes.add(x.shape[d])
        if len(sizes) != 1:
            raise ValueError(f"vmap: the mapped inputs must have one batch size; got {sorted(sizes) or 'no mapped input'}")
        size = sizes.pop()
        results = []
        for i in range(size):
            picked = [x if d is None else x[(slice(None),) * (d % x.ndim) + (i,)] for x, d in zip(flat, dims)]
            results.append(_flatten(func(*_unflatten(spec, picked), **kwargs)))
        if not results:
            raise ValueError("vmap: a batch of size 0 has no results to stack")
        out_spec = results[0][1]
        leaves = list(zip(*[leaves for leaves, _ in results]))
        outs = [out_dims] * len(leaves) if isinstance(out_dims, int) else _flatten(tuple(out_dims))[0]
        stacked = [stack(list(column), dim=d) for column, d in zip(leaves, outs)]
        return _unflatten(out_spec, stacked)
    return wrapper


def _dims_per_leaf(dims, tree):
    """One in_dim per tensor of `tree`: `dims` is a prefix of its structure (an int or None stands for
    every tensor under it), as torch.func.vmap reads in_dims=(0, None) for (a dict of params, x)."""
    if dims is None or isinstance(dims, int):
        return [dims] * len(_flatten(tree)[0])
    if (not isinstance(tree, (tuple, list, dict)) or len(dims) != len(tree)
            or isinstance(tree, dict) != isinstance(dims, dict) or (isinstance(tree, dict) and set(dims) != set(tree))):
        raise ValueError(f"vmap: in_dims {dims!r} does not match the structure of the inputs it maps")
    if isinstance(tree, dict):
        return [d for k in tree for d in _dims_per_leaf(dims[k], tree[k])]
    return [d for sub_dims, sub in zip(dims, tree) for d in _dims_per_leaf(sub_dims, sub)]


# ----------------------------------------------------------------------------- modules as functions


def stack_module_state(models):
    """(params, buffers): each model's parameters and buffers stacked along a new dim 0, by name, as
    torch.func.stack_module_state; the stacked parameters are new leaves that require grad. With vmap
    and functional_call they run an ensemble of models in one call."""
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if len({m.training for m in models}) != 1:
        raise RuntimeError("stack_module_state: Expected all models to have the same training/eval mode.")
    if len({type(m) for m in models}) != 1:
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")
    return tuple({name: _stacked_leaf([dict(getter(m))[name] for m in models], name) for name, _ in getter(models[0])}
                 for getter in (lambda m: m.named_parameters(), lambda m: m.named_buffers()))


def _stacked_leaf(tensors, name):
    needs = {t.requires_grad for t in tensors}
    if len(needs) != 1:
        raise RuntimeError(f"Expected {name} from each model to have the same .requires_grad")
    with enable_grad():
        result = stack(tensors)
    return result.detach().requires_grad_() if needs.pop() else result


def functional_call(module, parameters_and_buffers, args=(), kwargs=None, *, strict=False):
    """Run `module(*args)` with some of its parameters (dotted names) replaced by the given tensors."""
    args = args if isinstance(args, tuple) else (args,)
    if isinstance(parameters_and_buffers, (tuple, list)):
        merged = {}
        for d in parameters_and_buffers:
            merged.update(d)
        parameters_and_buffers = merged
    known = dict(module.named_parameters())
    if strict:
        missing = sorted(set(known) - set(parameters_and_buffers))
        if missing:
            raise RuntimeError(f"functional_call: missing key(s) {missing} with strict=True")
    swapped = []
    try:
        for name, value in parameters_and_buffers.items():
            owner, attr = _owner(module, name)
            swapped.append((owner, attr, owner.swap_tensor(attr, value)))
        return module(*args, **(kwargs or {}))
    finally:
        for owner, attr, previous in reversed(swapped):
            owner.swap_tensor(attr, previous)


def _owner(module, dotted):
    *path, attr = dotted.split(".")
    owner = module
    for part in path:
        owner = getattr(owner, part, None)
        if owner is None:
            raise KeyError(f"functional_call: {dotted!r} names no submodule of {type(module).__name__}")
    if attr not in owner._parameters and attr not in owner._buffers:
        raise KeyError(f"functional_call: {dotted!r} names no parameter or buffer of {type(module).__name__}")
    return owner, attr
