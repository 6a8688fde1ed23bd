"""The op-by-op graph a recorded whole-sequence pass stands for, rebuilt for pictures and diagnostics.

A whole-sequence pass (a hand-written one of fused.py, or a compiled one of compile/drive.py) is
one graph node; `fused=False` would have recorded every gate of every step instead. `compose`
runs the same pass again op by op, from the values the node received, in the scope it was
recorded in: through the cells of cells.py for a hand-written pass, through the compiled step's
traced ops (drive.replay) for a compiled one. Either way the steps it records are the ones
`fused=False` records. The pass node, its results and its backward are left as they were.

`step_gradients` is what a pass recorded under `tr.retain_grads()` keeps in its backward: dL/ds(t)
for every state s and step t, the gradient the op-by-op graph's node named s in step t holds.
"""
import contextlib

from .. import backend
from .. import vocabulary as V
from ..tensor import Tensor, current_scope, enable_grad, retain_grads, scope
from .cells import GRUCell, LSTMCell, RNNCell
from .fused import TABLE, FusedPass
from .linear import Lookup
from .module import Module
from .recurrent import _join_directions, run_cell

CELL_TYPES = {"lstm": LSTMCell, "gru": GRUCell, "rnn_tanh": RNNCell, "rnn_relu": RNNCell}
PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")   # the order the cells register them


def is_pass(node):
    """Whether a recorded node is a whole (layer, direction) pass, hand-written or compiled."""
    return getattr(node, "whole_sequence", False)


def state_names(node):
    """The names of a pass's states, in order: h and c for an LSTM, the cell's own for a compiled one."""
    if isinstance(node, FusedPass):
        return V.BUILT_IN_STATES if node.cell.has_cell_state else V.BUILT_IN_STATES[:1]
    return tuple(node.compiled.state_names)


def can_compose(node):
    """Whether the values the pass received are still there (backward releases them unless the
    graph is retained or the forward was recorded under tr.retain_grads())."""
    return "inputs" in node.__dict__ or "arrays" in node.__dict__


def recorded_inputs(node):
    """{name: array} of what a pass received, in the order of its parents: x, h0, [c0], w_ih, w_hh,
    [b_ih, b_hh] for a hand-written pass (table, h0, [c0], w_hh, ... for one given a projected table
    and an index, which it keeps as node.index); x, the initial states (h0, ...) and the statics the step
    reads (static0, ...) for a compiled one."""
    if not can_compose(node):
        raise ValueError(f"{node.op}: the values this pass received are gone (backward releases them): "
                         f"draw before backward(), call backward(retain_graph=True), record the forward "
                         f"pass inside `with tr.retain_grads():`, or record the layer with fused=False")
    if isinstance(node, FusedPass):
        return node.inputs
    n = len(node.compiled.state_names)
    names = [V.INPUT] + [V.initial(name) for name in node.compiled.state_names] + \
        [f"static{k}" for k in range(len(node.arrays) - 1 - n)]
    return dict(zip(names, node.arrays))


def compose(node, inputs):
    """(outputs: a list of T step tensors, final state tuple) of the pass, recorded op by op.

    inputs: {name: Tensor} for every name of `recorded_inputs(node)`, standing for those values in
    the graph (usually the fused node's own parents); "x" may also be a list of step tensors, as
    the op-by-op layers hand one layer's steps to the next.
    """
    with recorded_in(node.scope):
        return _rebuild(node, inputs)


def _rebuild(node, inputs):
    """compose's steps, recorded in the current scope."""
    if isinstance(node, FusedPass):
        cell = _cell(node.cell.name, inputs)
        state = tuple(inputs[V.initial(name)] for name in state_names(node))
        x = inputs[V.INPUT] if TABLE not in inputs else Lookup.apply(inputs[TABLE], index=node.index)
        return run_cell(cell, x, state, node.lengths, node.reverse)
    from ..compile.drive import replay
    values = list(inputs.values())
    n = len(node.compiled.state_names)
    return replay(node.compiled, values[0], values[1:n + 1], values[n + 1:], node.lengths, node.reverse)


def step_gradients(node, g, final_grads):
    """{state name: {t: array, or None where no gradient reached it}}: dL/ds(t) for every step t
    whose state s lies above what backward started from. dL/ds(t) is the whole gradient reaching
    the state s that step t makes, from the step's output, from the ops of the step itself that
    read it (h = o * tanh(c) reads c) and from every later step: the gradient the node named s in
    step t keeps in the graph fused=False records.

    The pass is rebuilt op by op from the values it received, on leaves of its own, and `g` (the
    output's gradient) and `final_grads` (h_n's, c_n's, ...; None for none) run back through it: the
    same ops in the same order as the op-by-op layer, so the same numbers. Nothing outside is touched.
    """
    from ..autograd import _run
    arrays = recorded_inputs(node)
    with enable_grad(), retain_grads():
        inputs = {}
        for name, array in arrays.items():
            leaf = Tensor._make(array, None)
            leaf.requires_grad = True
            inputs[name] = leaf
        steps, finals = _rebuild(node, inputs)
    roots = [(s, g[t]) for t, s in enumerate(steps)]
    roots += [(s, d) for s, d in zip(finals, final_grads) if d is not None]
    _run([s for s, _ in roots], [Tensor._make(d, None) for _, d in roots], retain_graph=False,
         create_graph=False, capture={}, only=())
    kept = {name: {} for name in state_names(node)}
    for t, s in step_states([s for s, _ in roots], current_scope(), kept):
        kept[s.name][t] = None if s.grad is None else s.grad.array
    return kept


def keep_step_gradients(node, g, final_grads):
    """Add this backward's `step_gradients` to what the pass node keeps (`node.step_grads`)."""
    xp = backend.xp_of(g)
    grads = step_gradients(node, g, [None if d is None else xp.asarray(d) for d in final_grads])
    kept = node.__dict__.get("step_grads")
    if kept is not None:
        for name, steps in grads.items():
            for t, b in kept[name].items():
                a = steps.get(t)
                steps[t] = a if b is None else b if a is None else a + b
    node.step_grads = grads


KEPT_FOR_DRAWING = ("inputs", "arrays", "compiled", "reverse", "lengths", "index", "step_grads")


def kept_for_drawing(node):
    """What a pass recorded under tr.retain_grads() keeps after backward, for a drawing of its steps
    and the per-step gradients (any other pass keeps nothing)."""
    if not node.keep_grad:
        return None
    return {key: node.__dict__[key] for key in KEPT_FOR_DRAWING if key in node.__dict__}


def step_states(roots, outer, names):
    """(t, node) for every node named in `names` recorded in a time-step scope right inside `outer`."""
    from ..graph import walk
    found = []
    for item in walk(roots):
        if not isinstance(item, Tensor) and item.name in names:
            where = item.scope
            if where[:len(outer)] == outer and len(where) > len(outer) and where[len(outer)][0] == V.STEP:
                found.append((where[len(outer)][1], item))
    return found


def join_directions(node, step_lists):
    """Both directions' steps joined step by step, as the op-by-op layers join them, in `node`'s scope
    (`node` is the whole-sequence concatenation the fused layers recorded instead)."""
    with recorded_in(node.scope):
        return _join_directions(step_lists)


def dropout_steps(node, steps, keep):
    """Dropout between layers applied step by step, as the op-by-op layers apply it, with the mask
    (T, B, F) of `node`, the whole-sequence product x * keep the fused layers recorded instead."""
    dropped = []
    with recorded_in(node.scope):
        for t, step in enumerate(steps):
            with scope(V.STEP, t):
                dropped.append((step * Tensor._make(keep[t], None)).named(node.name))
    return dropped


@contextlib.contextmanager
def recorded_in(path):
    """Record inside exactly the scope `path` (the one a node was recorded in), whatever is current,
    and record even under no_grad (a picture may be drawn there)."""
    outer = current_scope()
    if path[:len(outer)] != outer:
        raise ValueError(f"cannot record in scope {path} from inside scope {outer}: draw outside tr.scope blocks")
    with contextlib.ExitStack() as stack:
        stack.enter_context(enable_grad())
        for name, index in path[len(outer):]:
            stack.enter_context(scope(name, index))
        yield


def _cell(mode, inputs):
    """A cell of the pass's type around the given tensors. It is not constructed: a constructor
    draws random initial weights, and a picture must not move the random stream."""
    cell_type = CELL_TYPES[mode]
    cell = cell_type.__new__(cell_type)
    Module.__init__(cell)
    x = inputs.get(V.INPUT, inputs.get(TABLE))  # a projected table's rows are the steps' inputs
    x_width = (x[0] if isinstance(x, list) else x).shape[-1]
    hidden = inputs["w_hh"].shape[1]
    settings = {"input_size": x_width, "hidden_size": hidden, "bias": "b_ih" in inputs, "recurrent_init": "uniform"}
    settings.update({"lstm": {"proj_size": 0, "forget_bias": None, "weight_hr": None},
                     "gru": {"reset_after": True}}.get(mode, {"nonlinearity": mode[len("rnn_"):]}))
    for key, value in settings.items():
        object.__setattr__(cell, key, value)
    if "w_ih" not in inputs:  # the input is already x @ W_ih^T (fused.projected_input): it passes through
        inputs = dict(inputs, w_ih=Tensor._make(x.xp.eye(x_width, dtype=x.dtype), None).named("identity"))
    for name in PARAMETERS:  # registered as they are, Parameters or not, and never renamed
        tensor = inputs.get(name.replace("weight", "w").replace("bias", "b"))
        object.__setattr__(cell, name, tensor)
        if isinstance(tensor, Tensor):
            cell._parameters[name] = tensor
    return cell
