"""The words a recorded graph is written in: the scopes a recurrent layer opens and the names it gives
the tensors of its steps. The layers record with them, the drawings and the diagnostics read them;
this is the one place they are spelled.

A step's nodes are recorded inside the scopes (LAYER, k), (DIRECTION, FORWARD or REVERSE),
(STEP, t), outermost first. Inside a step the input is named INPUT and the new states by the cell's
`state_names` (HIDDEN and CELL for the built-in cells); the layer names its whole output OUTPUT,
its initial states `initial(name)` and its final states `final(name)`.
"""

LAYER, DIRECTION, STEP = "layer", "direction", "t"
LAYER_SCOPES = (LAYER, DIRECTION, STEP)     # the scope entries a sequence layer adds, outermost first
FORWARD, REVERSE = "forward", "reverse"
DIRECTIONS = (FORWARD, REVERSE)

INPUT = "x"               # x(t), a step's input
OUTPUT = "output"         # a layer's output sequence
LOSS = "loss"
HIDDEN, CELL = "h", "c"   # the built-in cells' states
BUILT_IN_STATES = (HIDDEN, CELL)


def initial(state):
    """The name of a state's initial value: "h" -> "h0"."""
    return f"{state}0"


def final(state):
    """The name of a state's final value, as the layers return it: "h" -> "h_n"."""
    return f"{state}_n"


def position(node):
    """(layer, direction, t) where `node` was recorded: t is None outside a step (a whole-sequence
    pass), layer 0 and FORWARD outside a layer (a cell run by hand inside its own time scopes)."""
    where = dict(node.scope)
    return where.get(LAYER, 0), where.get(DIRECTION, FORWARD), where.get(STEP)


def state_names(cell):
    """The names of a cell's states, in `state_sizes` order: its `state_names` (HIDDEN alone when it
    has none), then s1, s2, ... for states it leaves unnamed."""
    names = tuple(getattr(cell, "state_names", (HIDDEN,)))
    return names + tuple(f"s{k}" for k in range(len(names), len(cell.state_sizes)))
