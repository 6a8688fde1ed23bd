"""Per-step gradient norms ||dL/dh(t)|| and ||dL/dc(t)||: where the training signal fades.

The recurrent layers name each step's new state "h" (and "c" for an LSTM) inside its time-step
scope (the names and scopes of vocabulary.py). Recorded under `tr.retain_grads()`, those nodes keep dL/dh(t) after backward:
the whole gradient reaching step t, from its own output and from every later step. A default
layer records each (layer, direction) pass as one node instead (hand-written or compiled); under
`tr.retain_grads()` that node's backward keeps the same quantity for every step and state
(`step_grads`, see nn/unfuse.py). Reading them back is all this module does.
"""
import numpy as np

from .. import backend
from .. import vocabulary as V
from ..graph import walk
from ..nn import unfuse
from ..tensor import Function, Tensor, retain_grads
from ._model import as_input, frozen, input_tensor


def step_gradient_norms(root, name=V.HIDDEN, layer=None, direction=V.FORWARD):
    """||dL/d<name>(t)|| (Frobenius, over batch and units) for t = 0 .. T-1, from a recorded graph.

    `root` is the loss (or any tensor) that was backpropagated; the graph must have been recorded
    inside `tr.retain_grads()`. `layer` picks a layer of a stacked network (default: the top
    one), `direction` "forward" or "reverse". Steps with no such node are NaN.
    """
    return _norms_per_step(walk(root), name, layer, direction)


def _norms_per_step(nodes, name, layer, direction):
    steps = _step_nodes(nodes, name)
    if not steps:
        raise ValueError(f"no node named {name!r} inside tr.scope('t', t) lies above this tensor: the "
                         f"model does not record per-step states under that name")
    layer = max(key[0] for key in steps) if layer is None else layer
    chosen = {t: node for (lay, drc, t), node in steps.items() if lay == layer and drc == direction}
    if not chosen:
        found = sorted({key[:2] for key in steps})
        raise ValueError(f"no {name!r} nodes for layer {layer}, direction {direction!r}; the graph "
                         f"has (layer, direction) = {found}")
    norms = np.full(max(chosen) + 1, np.nan)
    for t, (grad, kept) in chosen.items():
        if grad is None and not kept:
            raise RuntimeError(f"the {name!r} node of step {t} kept no gradient: record the forward "
                               f"pass inside `with tr.retain_grads():` and call backward first")
        norms[t] = 0.0 if grad is None else _norm(grad)
    return norms


def state_gradient_norms(model, x, loss_fn, names=V.BUILT_IN_STATES, layer=None, direction=V.FORWARD):
    """Run `loss_fn(model(x))`, backpropagate it, and return {name: ||dL/d<name>(t)|| per step}.

    `x` is the input sequence (time-major unless the model is batch_first), `loss_fn` turns what
    the model returns into a scalar loss. The model's parameters get no `.grad` (tensors that
    `loss_fn` itself holds do, as in any backward). Names no step node carries are left out, so
    ("h", "c") gives both for an LSTM and "h" alone for an RNN or a GRU.
    """
    inputs = input_tensor(as_input(model, x), requires_grad=True)
    with frozen(model):  # through the backward too: it checks requires_grad when it reaches a leaf
        with retain_grads():
            loss = loss_fn(model(inputs))
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError(f"loss_fn must return a scalar Tensor; got "
                             f"{getattr(loss, 'shape', type(loss).__name__)}")
        loss.backward()
    nodes = walk(loss)
    found = [name for name in names if _step_nodes(nodes, name)]
    if not found:
        raise ValueError(f"none of the names {tuple(names)} is carried by a per-step node above the "
                         f"loss; does the model record its states inside tr.scope('t', t)?")
    return {name: _norms_per_step(nodes, name, layer, direction) for name in found}


def _step_nodes(nodes, name):
    """{(layer, direction, t): (gradient array or None, whether one was to be kept)} for the states
    named `name` of every step: nodes recorded inside a ("t", t) scope, and the steps of the
    whole-sequence passes (their gradients kept by the pass's backward)."""
    steps = {}

    def add(key, grad, kept):
        if key in steps:
            raise ValueError(f"two nodes named {name!r} at layer {key[0]}, direction {key[1]!r}, "
                             f"step {key[2]}: was the model run twice into one loss?")
        steps[key] = (grad, kept)

    for node in nodes:
        if not isinstance(node, Function):
            continue
        layer, direction, step = V.position(node)
        if unfuse.is_pass(node) and name in unfuse.state_names(node):
            kept = node.__dict__.get("step_grads")
            grads = dict.fromkeys(range(node.shape[0])) if kept is None else kept[name]
            for t, grad in grads.items():
                add((layer, direction, t), grad, node.keep_grad)
        elif node.name == name and step is not None:
            add((layer, direction, step), None if node.grad is None else node.grad.array, node.keep_grad)
    return steps


def _norm(g):
    return float(np.sqrt((backend.to_numpy(g).astype(np.float64) ** 2).sum()))
