"""The op-by-op graph a recorded fused pass stands for, rebuilt for pictures.

A fused pass (fused.py) is one graph node; `fused=False` would have recorded every gate of every
step instead. `compose` runs the same pass again through the cells of cells.py, from the values
the fused node received, in the scope it was recorded in, so the steps it records are the ones
`fused=False` records. The fused node, its results and its backward are left as they were.
"""
import contextlib

from ..tensor import Tensor, current_scope, enable_grad, scope
from .cells import GRUCell, LSTMCell, RNNCell
from .fused import FusedPass
from .module import Module
from .recurrent import _join_directions, run_cell

CELL_TYPES = {"lstm": LSTMCell, "gru": GRUCell, "rnn_tanh": RNNCell, "rnn_relu": RNNCell}
PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")   # the order the cells register them


def is_pass(node):
    """Whether a recorded node is a whole fused (layer, direction) pass."""
    return isinstance(node, FusedPass)


def recorded_inputs(node):
    """{name: array} of what a fused pass received (x, h0, [c0], w_ih, w_hh, [b_ih, b_hh])."""
    inputs = node.__dict__.get("inputs")
    if inputs is None:
        raise ValueError(f"{node.op}: the values this fused pass received are gone (backward releases "
                         f"them): draw before backward(), call backward(retain_graph=True), or record "
                         f"the layer with fused=False")
    return inputs


def compose(node, inputs):
    """(outputs: a list of T step tensors, final state tuple) of the pass, recorded op by op.

    inputs: {name: Tensor} for every name of `recorded_inputs(node)`, standing for those values in
    the graph (usually the fused node's own parents); "x" may also be a list of step tensors, as
    the op-by-op layers hand one layer's steps to the next.
    """
    cell = _cell(node.cell.name, inputs)
    state = (inputs["h0"], inputs["c0"]) if "c0" in inputs else (inputs["h0"],)
    with recorded_in(node.scope):
        return run_cell(cell, inputs["x"], state, node.lengths, node.reverse)


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
            with scope("t", t):
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
    x = inputs["x"]
    x_width = (x[0] if isinstance(x, list) else x).shape[-1]
    hidden = inputs["w_hh"].shape[1]
    settings = {"input_size": x_width, "hidden_size": hidden, "bias": "b_ih" in inputs, "recurrent_init": "uniform"}
    settings.update({"lstm": {"proj_size": 0, "forget_bias": None, "weight_hr": None},
                     "gru": {"reset_after": True}}.get(mode, {"nonlinearity": mode[len("rnn_"):]}))
    for key, value in settings.items():
        object.__setattr__(cell, key, value)
    for name in PARAMETERS:  # registered as they are, Parameters or not, and never renamed
        tensor = inputs.get(name.replace("weight", "w").replace("bias", "b"))
        object.__setattr__(cell, name, tensor)
        if isinstance(tensor, Tensor):
            cell._parameters[name] = tensor
    return cell
