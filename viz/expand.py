"""Whole-sequence passes drawn as the op-by-op graph they stand for (the `expand_fused` option, on
by default).

A default layer records each (layer, direction) pass as one node: a hand-written fused pass for
RNN, LSTM and GRU, a compiled one for any other cell. For a picture, each one is rebuilt op by op
from the values it received (tinygrad_rnn.nn.unfuse) and spliced in where it was: the nodes
downstream of a pass are copied with their parents redirected, so the picture's graph is a new
one and the recorded graph, its results and its backward stay as they were. A pass recorded under
`tr.retain_grads()` kept, in its backward, the gradient of every step's states: the rebuilt state
nodes hold them, so the gradient view colours them as it colours `fused=False`'s.

The op-by-op layers hand a layer's steps to the next one as a list, joining the two directions
step by step, and stack the steps into one tensor only where something outside the layer reads
the whole sequence. The splice follows them, so the picture equals the one `fused=False` draws.
"""
from tinygrad_rnn import vocabulary as V
from tinygrad_rnn.graph import walk
from tinygrad_rnn.nn import unfuse
from tinygrad_rnn.ops import Cat, Mul, Permute
from tinygrad_rnn.tensor import Function, Tensor, stack

from .structure import flatten_roots

LAYER_SCOPES = frozenset(V.LAYER_SCOPES)


class _Steps:
    """A composed pass's (or a join's) step outputs, standing for the fused graph's `node`."""

    def __init__(self, steps, node, finals=()):
        self.steps, self.node, self.finals = steps, node, finals
        self._stacked = {}

    def stacked(self, dim=0, name=None):
        """The steps as one tensor named `name`, stacked as the op-by-op layer stacks its output: in
        the scope the layer was called in."""
        if dim not in self._stacked:
            outer = self.node.scope
            for k, (entry, _) in enumerate(outer):
                if entry in LAYER_SCOPES:
                    outer = outer[:k]
                    break
            with unfuse.recorded_in(outer):
                self._stacked[dim] = stack(self.steps, dim=dim).named(name)
        return self._stacked[dim]


def expand_fused(root, strict=True):
    """The picture's roots: `root` (a tensor or a list of tensors; a list comes back flat) with every
    whole-sequence pass above it drawn op by op; `root` itself when there is none.

    The graph above the result is the one `fused=False` records, for any reader of graphs (it
    never runs backward: its new steps are for reading; the state nodes of a pass recorded under
    `tr.retain_grads()` hold the gradients that pass kept). A pass whose values backward released
    raises a ValueError that says what to do; with strict=False it stays one node instead.
    """
    roots = flatten_roots(root)
    items = walk(roots)
    if not any(unfuse.is_pass(item) and (strict or unfuse.can_compose(item)) for item in items):
        return root
    new = {}   # id(original item) -> Tensor or _Steps that replaces it in the picture
    for item in items:
        if isinstance(item, Function):
            replaced = _replace(item, new, strict)
            if replaced is not None:
                new[id(item)] = replaced
    expanded = [r if id(r._ctx) not in new else _tensor_for(r._ctx, r.array, new, r.name, r._output_nr)
                for r in roots]
    return expanded[0] if isinstance(root, Tensor) else expanded


def _replace(node, new, strict=True):
    """What stands for `node` in the picture, or None when it stays as recorded."""
    outputs = node.slots or (0,) * len(node.parents)   # which output of each parent the node reads
    parents = [_output_of(new.get(id(p)), nr) for p, nr in zip(node.parents, outputs)]
    if unfuse.is_pass(node) and (strict or unfuse.can_compose(node)):
        arrays = unfuse.recorded_inputs(node)
        inputs = {}
        for (name, array), parent, replaced, nr in zip(arrays.items(), node.parents, parents, outputs):
            if name == V.INPUT and isinstance(replaced, _Steps):
                inputs[name] = replaced.steps   # the previous layer's steps, read step by step
            else:
                inputs[name] = _tensor_for(parent, array, new, output_nr=nr)
        steps, finals = unfuse.compose(node, inputs)
        _hold_step_gradients(node, steps + list(finals))
        return _Steps(steps, node, finals)
    if all(p is None for p in parents):
        return None
    if isinstance(node, Cat) and _joins_directions(node, parents):
        return _Steps(unfuse.join_directions(node, [p.steps for p in parents]), node)
    if isinstance(node, Mul) and isinstance(parents[0], _Steps) and _is_dropout_between_layers(node):
        return _Steps(unfuse.dropout_steps(node, parents[0].steps, node.parents[1].array), node)
    if isinstance(node, Permute) and isinstance(parents[0], _Steps) and _is_batch_first_output(node):
        return parents[0].stacked(dim=1, name=node.name)
    slots = tuple(nr if r is None else r._output_nr if isinstance(r, Tensor) else 0
                  for r, nr in zip(parents, outputs))
    return _copy(node, [_item_for(p, r, node) for p, r in zip(node.parents, parents)], slots)


def _output_of(replaced, nr):
    """What stands for output `nr` of a replaced node: a pass's final state k is output k + 1."""
    return replaced.finals[nr - 1] if nr and isinstance(replaced, _Steps) else replaced


def _hold_step_gradients(node, roots):
    """The rebuilt state nodes of a pass take the gradients the pass kept (recorded under retain_grads)."""
    kept = node.__dict__.get("step_grads")
    if kept is None:
        return
    for t, state in unfuse.step_states(roots, node.scope, kept):
        grad = kept[state.name].get(t)
        state.grad = None if grad is None else Tensor._make(grad, None)


def _joins_directions(node, parents):
    """Whether a concatenation is a layer's forward and reverse outputs side by side on the features."""
    return (len(parents) == 2 and all(isinstance(p, _Steps) for p in parents)
            and _changed_axes(node.shapes[0], node.shape) == [len(node.shape) - 1])


def _changed_axes(before, after):
    """The axes on which two shapes of one rank differ (a concatenation's or a transpose's, read
    from the shapes: backward releases the axis a node was given)."""
    return [k for k, (a, b) in enumerate(zip(before, after)) if a != b] if len(before) == len(after) else None


def _is_dropout_between_layers(node):
    """Whether a product is the dropout a layer applies to the previous layer's output: x * mask,
    the mask a constant of the whole sequence's shape, the product named "x" by the layer."""
    mask = node.parents[1]
    return (node.name == V.INPUT and isinstance(mask, Tensor) and not mask.requires_grad
            and tuple(mask.shape) == tuple(node.shape))


def _is_batch_first_output(node):
    """Whether a transpose is a batch_first layer's output (T, B, H) -> (B, T, H), which the op-by-op
    layer makes by stacking its steps on dim 1. The layer names it "output"; a transpose of the
    user's own stays a transpose."""
    axes = node.__dict__.get("axes")
    if axes is None:  # released by backward: a swap of the first two axes, as the shapes tell
        before = node.shapes[0]
        return node.name == V.OUTPUT and tuple(node.shape) == (before[1], before[0]) + tuple(before[2:])
    return node.name == V.OUTPUT and axes == (1, 0) + tuple(range(2, len(axes)))


def _item_for(original, replaced, consumer):
    """The graph item (node or leaf) a copied node takes as its parent."""
    if replaced is None:
        return original
    if isinstance(replaced, _Steps):
        # fused_pass names its result "output"; the op-by-op layer names only the tensor it returns,
        # which is the consumer when that already has the name (the squeeze of an unbatched input)
        name = replaced.node.name
        replaced = replaced.stacked(name=None if consumer.name == name else name)
    return replaced._ctx if isinstance(replaced, Tensor) and replaced._ctx is not None else replaced


def _tensor_for(original, array, new, name=None, output_nr=0):
    """A tensor holding `array` whose graph item is what stands for output `output_nr` of `original`
    in the picture."""
    replaced = _output_of(new.get(id(original)), output_nr)
    if isinstance(replaced, _Steps):
        return replaced.stacked(name=replaced.node.name)
    if isinstance(replaced, Tensor):
        return replaced
    item = replaced if replaced is not None else original
    if isinstance(item, Tensor):
        return item   # a leaf: the tensor itself
    tensor = Tensor._make(array, item)
    tensor._name, tensor._output_nr = name, output_nr
    return tensor


def _copy(node, parents, slots):
    """A copy of `node` with other parents (reading output `slots[i]` of parent i); its saved arrays
    are shared, never used by a picture."""
    twin = object.__new__(type(node))
    for slot in Function.__slots__:
        if slot != "__dict__" and hasattr(node, slot):
            object.__setattr__(twin, slot, getattr(node, slot))
    twin.__dict__.update(node.__dict__)
    twin.parents = tuple(parents)
    twin.slots = slots if any(slots) else None
    return twin
