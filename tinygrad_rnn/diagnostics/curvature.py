"""How sharply the loss bends: Hessian-vector products and the Hessian's dominant eigenvalue.

On a loss cliff (Pascanu et al. 2013) the gradient jumps because the loss bends sharply: the
curvature, the Hessian's largest eigenvalue, explodes on the wall and is small on either side.
The Hessian itself (n x n for n weights) is never formed: power iteration needs only products
H v, and one costs about two gradients.

Two ways to get H v, with the same result:

- "forward-over-reverse" (default): push the tangent v forward (tr.func.jvp) through the
  computation of the gradient (tr.func.grad). One pass forward, one backward that carries tangents.
- "reverse-over-reverse": record the gradient's graph (autograd.grad(create_graph=True)) and
  backpropagate v through it. The second backward walks a graph about twice as large; slower here.

The functions take the loss as a function of tensors, as torch.autograd.functional.hvp does:
`func(*inputs)` returns a scalar Tensor. `parameter_function(module, loss_fn)` makes one from a
module and a `loss_fn()` of no arguments (the landscape functions' kind).
"""
import warnings

import numpy as np

from .. import autograd, backend
from ..func import functional_call, grad_and_value, jvp
from ..nn.module import Module
from ..tensor import Tensor, enable_grad
from .progress import progress

METHODS = ("forward-over-reverse", "reverse-over-reverse")


def hvp(func, inputs, v, method="forward-over-reverse"):
    """(func(*inputs), H v) with H the Hessian of the scalar `func` at `inputs`, as
    torch.autograd.functional.hvp: `inputs` and `v` are a Tensor or tuples of Tensors of the same
    shapes; the product has their structure. Neither result keeps a graph.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    single = isinstance(inputs, Tensor)
    inputs, v = _tensors("inputs", inputs), _tensors("v", v)
    if len(v) != len(inputs) or any(a.shape != b.shape for a, b in zip(inputs, v)):
        raise ValueError(f"v must match inputs in number and shapes: inputs {[a.shape for a in inputs]}, "
                         f"v {[b.shape for b in v]}")
    primals = tuple(p.detach() for p in inputs)
    v = tuple(Tensor._make(t.array.astype(p.dtype, copy=False), None) for p, t in zip(primals, v))
    run = _forward_over_reverse if method == "forward-over-reverse" else _reverse_over_reverse
    value, product = run(func, primals, v)
    product = tuple(t.detach() for t in product)
    return value.detach(), (product[0] if single else product)


def top_eigenvalue(func, inputs, *, max_iter=500, tol=1e-10, start=None, rng=0, method="forward-over-reverse"):
    """(eigenvalue, eigenvector): the Hessian's eigenvalue of largest magnitude, with its sign, at
    `inputs`, by power iteration on Hessian-vector products.

    `start` is a first vector (host arrays, one per input; default random from `rng`); the
    eigenvector comes back in that form, with norm 1. The iteration stops once
    ||H v - lambda v|| <= tol * |lambda| and warns (RuntimeWarning) if `max_iter` products do not
    get there: two eigenvalues of nearly the same magnitude (a saddle with lambda and -lambda).
    """
    inputs = _tensors("inputs", inputs)
    shapes = [p.shape for p in inputs]
    v = _flat(start) if start is not None else np.random.default_rng(rng).standard_normal(sum(map(_size, shapes)))
    if v.shape != (sum(map(_size, shapes)),):
        raise ValueError(f"start must hold one array per input, of shapes {shapes}; got {v.size} numbers")
    v = v / np.linalg.norm(v)
    eigenvalue, residual = 0.0, np.inf
    for _ in range(max_iter):
        _, product = hvp(func, tuple(inputs), _as_tensors(v, inputs), method=method)
        w = _flat(product)
        eigenvalue = float(v @ w)
        residual = float(np.linalg.norm(w - eigenvalue * v))
        norm = np.linalg.norm(w)
        if norm == 0 or residual <= tol * abs(eigenvalue):
            break
        v = w / norm
    else:
        warnings.warn(f"top_eigenvalue: power iteration stopped after {max_iter} products with a residual "
                      f"||Hv - lambda v|| = {residual:.2e} for lambda = {eigenvalue:.6g}; two eigenvalues of "
                      f"nearly equal magnitude converge slowly", RuntimeWarning, stacklevel=2)
    return eigenvalue, _split(v, shapes)


def curvature_along(func, points, **options):
    """The dominant Hessian eigenvalue at each point (a list of host arrays, one per argument of
    `func`: a training run's "weights"), as an array. Each point's power iteration starts from the
    eigenvector of the one before, so nearby points take few products. Options as `top_eigenvalue`.
    """
    points = list(points)
    values, start = [], options.pop("start", None)
    with progress(len(points), "curvature") as bar:
        for point in points:
            value, start = top_eigenvalue(func, [Tensor(np.asarray(w), dtype=np.asarray(w).dtype) for w in point],
                                          start=start, **options)
            values.append(value)
            bar.update(1)
    return np.array(values)


def parameter_function(module, loss_fn, params=None):
    """f(*tensors): `loss_fn()` computed with `params` (default: all of `module`'s parameters) replaced
    by the tensors, so that the loss is a function of them (tr.func.functional_call underneath).

    A parameter held under several names (tied weights) is replaced under all of them, as
    torch.func.functional_call does by default.
    """
    params = list(module.parameters()) if params is None else list(params)
    aliases = _aliases(module, params)
    caller = _Call(module, loss_fn)

    def f(*tensors):
        if len(tensors) != len(params):
            raise ValueError(f"expected {len(params)} tensors, one per parameter; got {len(tensors)}")
        swap = {"module." + name: t for names, t in zip(aliases, tensors) for name in names}
        return functional_call(caller, swap)
    return f


# --------------------------------------------------------------------------- helpers

class _Call(Module):
    """A module whose forward is loss_fn(): functional_call swaps parameters inside `module` for it."""

    def __init__(self, module, loss_fn):
        super().__init__()
        self.module = module
        object.__setattr__(self, "loss_fn", loss_fn)

    def forward(self):
        return self.loss_fn()


def _aliases(module, params):
    """For each parameter, every dotted name under which a module inside `module` holds it."""
    names = {id(p): [] for p in params}
    for prefix, owner in module.named_modules():
        for attr, value in owner._parameters.items():
            if id(value) in names:
                names[id(value)].append(f"{prefix}.{attr}" if prefix else attr)
    missing = [p.shape for p in params if not names[id(p)]]
    if missing:
        raise ValueError(f"parameters of shapes {missing} are not held by the {type(module).__name__} given")
    return [names[id(p)] for p in params]


def _forward_over_reverse(func, primals, v):
    gradient = grad_and_value(func, argnums=tuple(range(len(primals))))

    def gradient_then_value(*inputs):
        g, value = gradient(*inputs)
        return (*g, value)
    outputs, tangents = jvp(gradient_then_value, primals, v)
    return outputs[-1], tangents[:-1]


def _reverse_over_reverse(func, primals, v):
    inputs = [p.detach().requires_grad_(True) for p in primals]
    with enable_grad():
        value = func(*inputs)
        _check_scalar(value)
        grads = autograd.grad(value, inputs, create_graph=True, materialize_grads=True)
    pairs = [(g, t) for g, t in zip(grads, v) if g.requires_grad]  # a gradient free of inputs bends nowhere
    if not pairs:
        return value, [Tensor._make(p.xp.zeros(p.shape, dtype=p.dtype), None) for p in primals]
    return value, autograd.grad([g for g, _ in pairs], inputs, [t for _, t in pairs], materialize_grads=True)


def _check_scalar(value):
    if not isinstance(value, Tensor) or value.numel() != 1:
        raise RuntimeError(f"func must return a scalar Tensor; got {getattr(value, 'shape', type(value).__name__)}")


def _tensors(what, values):
    values = (values,) if isinstance(values, Tensor) else tuple(values)
    for k, t in enumerate(values):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}[{k}] must be a Tensor; got {type(t).__name__}")
        if t.dtype.kind != "f":
            raise TypeError(f"{what}[{k}] must be floating point; got {t.dtype}")
    if not values:
        raise ValueError(f"{what} must hold at least one tensor")
    return values


def _size(shape):
    return int(np.prod(shape, dtype=np.int64))


def _flat(arrays):
    return np.concatenate([np.asarray(backend.to_numpy(a.array if isinstance(a, Tensor) else a),
                                      dtype=np.float64).reshape(-1) for a in arrays])


def _split(flat, shapes):
    pieces, first = [], 0
    for shape in shapes:
        pieces.append(flat[first:first + _size(shape)].reshape(shape))
        first += _size(shape)
    return pieces


def _as_tensors(flat, like):
    return tuple(Tensor._make(backend.to_device(piece.astype(p.dtype), p.device), None)
                 for piece, p in zip(_split(flat, [p.shape for p in like]), like))
