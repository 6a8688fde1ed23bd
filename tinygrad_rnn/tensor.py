"""Tensor, graph recording and the iterative backward pass.

A recorded graph is made of `Function` nodes. Each node keeps its parents (the node that made each
input, or the input tensor itself when it is a leaf), the shapes of its inputs, what its backward
needs, its op name, the scope it was recorded in and the name of the tensor it produced. That is
enough to backpropagate and, for `viz`, to draw the graph without holding the forward activations.
"""
import contextlib
import numbers
import threading
import weakref

import numpy as np

from . import backend, dtypes, printing
from .methods import TensorMethods, check_dim, check_dims, numpy_aliases, reduction_dims, sizes_argument
from .methods_elementwise import ElementwiseMethods
from .sampling import SamplingMethods
from .shape_extras import ShapeMethods

FLOAT_DTYPES = (np.float16, np.float32, np.float64)
_constants = {}  # (value, dtype, array type) -> constant Tensor: scalars in expressions cost nothing


# ----------------------------------------------------------------------------- recording state

class _State(threading.local):
    """The recording mode of the running thread, as torch's grad mode is: each thread starts from
    these defaults (set per thread, where reading them is quicker than from the class), and no_grad
    in one thread never changes what another records."""

    def __init__(self):
        self.grad_enabled = True
        self.keep_grads = False
        self.forward_ad = False  # inside tr.func.jvp: ops push tangents forward
        self.scope = ()
        self.tape = None  # an OpTape (op_tape below) listening to this thread's ops
        self.detect_anomaly = False  # backward checks each op's gradients for NaN (autograd.set_detect_anomaly)
        self.watch = None  # called with the inputs of each op run unrecorded (utils.checkpoint's forward)
        self.duals = None  # inside a forward_ad dual level: weak references to the tensors given a tangent


_state = _State()


@contextlib.contextmanager
def using_config(name, value):
    """Set one recording setting inside a `with` block (or a decorated function), then restore it."""
    before = getattr(_state, name)
    setattr(_state, name, value)
    try:
        yield
    finally:
        setattr(_state, name, before)


def no_grad():
    """Run without recording a graph (evaluation, optimizer updates); also a decorator."""
    return using_config("grad_enabled", False)


def enable_grad():
    """Record a graph again inside a `no_grad` block."""
    return using_config("grad_enabled", True)


class set_grad_enabled:
    """Turn recording on or off: called alone, from now on; as a `with` block, until its end (as torch)."""

    def __init__(self, mode):
        self.before = _state.grad_enabled
        _state.grad_enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _state.grad_enabled = self.before


def inference_mode(mode=True):
    """As torch.inference_mode: no graph is recorded inside (here the same as no_grad)."""
    return using_config("grad_enabled", not mode)


def is_grad_enabled():
    return _state.grad_enabled


def is_inference_mode_enabled():
    return not _state.grad_enabled


def forward_mode_active():
    """Whether ops are pushing tangents forward (inside tr.func.jvp / jacfwd)."""
    return _state.forward_ad


def scope(name, index=None):
    """Tag every node recorded inside with a (name, index) pair, nestable.

    Layers use it for ("layer", 0), ("direction", "reverse"), ("t", 3), so a drawing can cluster the
    unrolled graph by time step and fold it back into the recurrent picture.
    """
    return using_config("scope", _state.scope + ((name, index),))


def current_scope():
    return _state.scope


def retain_grads():
    """Every node recorded inside keeps the gradient of its output after backward (as `.grad`)."""
    return using_config("keep_grads", True)


class DataDependent(RuntimeError):
    """A tensor's value was read into Python under an op tape that forbids it (`op_tape(reads=False)`)."""

    def __init__(self, what):
        super().__init__(f"a tensor's value is read into Python ({what}()), so what is recorded may "
                         f"depend on the data")
        self.what = what


class ChangedInPlace(RuntimeError):
    """A tensor that no op on an op tape made (an input of the traced code, a tensor from outside) is
    changed in place while the tape listens: the tape cannot say which value each use of it reads."""


class IndexFromValues(RuntimeError):
    """An index or mask computed under an op tape (from the traced values) is used to select elements:
    the ops on the tape would take the elements of one call's index at every replay."""

    def __init__(self, what):
        super().__init__(f"{what} uses an index computed from the step's values")
        self.what = what


class OpTape:
    """The ops applied in the thread that opened the tape, in order: (op class, input tensors, apply's
    keyword options, output) each. An op that runs other ops (a rule, a nested apply) is one entry.

    `outside`: id -> (tensor, what) of tensors computed from traced values by NumPy, not by an op on
    the tape (an argmax's indices, a nonzero): a replay of the tape would reuse their values."""

    def __init__(self, reads):
        self.ops = []
        self.reads = reads
        self.paused = False
        self.outside = {}
        self._made = set()   # ids of the tensors ops on the tape made

    def listening(self):
        return not self.paused

    def apply(self, cls, inputs, options):
        self.paused = True
        try:
            out = cls.apply(*inputs, **options)
        finally:
            self.paused = False
        self.ops.append((cls, inputs, options, out))
        self._made.add(id(out))
        return out

    def computed_outside(self, tensor, what):
        if self.listening():
            self.outside[id(tensor)] = (tensor, what)

    def index_used(self, tensor, what):
        """`tensor` is taken as an index: refused where the traced values made it."""
        if self.listening() and (id(tensor) in self._made or id(tensor) in self.outside):
            raise IndexFromValues(what)

    def read(self, what):
        """A tensor's value is read into Python (item(), bool(), numpy(), ...)."""
        if not self.reads and self.listening():
            raise DataDependent(what)

    def changed_in_place(self, tensor, old, new):
        """`tensor` now holds `new`, the output of an op on the tape (rebase_in_place): the ops so far
        that name `tensor` name `old`, its value before, and the op that made `new` names `tensor`, so
        that on the tape each tensor is still one value and later ops read the new one."""
        ops = self.ops
        if not any(out is tensor for _, _, _, out in ops) or not any(out is new for _, _, _, out in ops):
            raise ChangedInPlace("an in-place change of a tensor that no op of it made (an input, a state, or a "
                                 "tensor made by a factory such as zeros); .clone() it first")
        for k, (cls, inputs, options, out) in enumerate(ops):
            if out is tensor or out is new or any(t is tensor for t in inputs):
                ops[k] = (cls, tuple(old if t is tensor else t for t in inputs), options,
                          tensor if out is new else old if out is tensor else out)


@contextlib.contextmanager
def op_tape(reads=True):
    """Record every op this thread applies inside the block on the yielded OpTape (other threads run
    as always). With reads=False, reading a tensor's value into Python raises DataDependent: what the
    tape holds is then the same computation for any data (the step compiler traces cells so)."""
    tape, outer = OpTape(reads), _state.tape   # the recording state is the thread's own
    _state.tape = tape
    try:
        yield tape
    finally:
        _state.tape = outer


def computed_outside(tensor, what):
    """`tensor` was computed by NumPy from other tensors' values (not by an op): an op tape notes it."""
    tape = _state.tape
    if tape is not None:
        tape.computed_outside(tensor, what)
    return tensor


def index_used(tensor, what):
    tape = _state.tape
    if tape is not None:
        tape.index_used(tensor, what)
    return tensor


def _value_read(what):
    tape = _state.tape
    if tape is not None:
        tape.read(what)
    backend.raise_failed_checks()


# ----------------------------------------------------------------------------- graph nodes

class Function:
    """A recorded op. Subclasses define `forward(*arrays, **options)`, `backward(g)` and `jvp`.

    `forward` works on raw arrays. `backward(g)` is the VJP: it takes the output's gradient as a
    Tensor and returns one Tensor per input (None where the input needs none), written with Tensor
    ops so that gradients of gradients work; gradients may have the broadcast shape, which the
    engine sums back to each input's shape. `jvp(inputs, tangents)` pushes tangents forward.

    `saves` lists the inputs whose values backward needs; `self.input(i)` returns them (checked
    against in-place changes since the forward). An op whose backward works on raw arrays sets
    `array_backward = True`: its `backward(g)` takes and returns arrays, and it is differentiated
    once only, unless it also defines `differentiable_backward(g)`.

    An op with several outputs sets `multiple_outputs = True`: its forward returns a tuple of
    arrays (None for an output it does not give), `apply` a tuple of Tensors made by the one node,
    and its backward takes one gradient per output (None for an output no gradient reached).
    """
    __slots__ = (
        "__dict__",
        "freed",
        "g",
        "g_owned",
        "grad",
        "hooks",
        "keep_grad",
        "name",
        "needs",
        "parents",
        "pending",
        "saved",
        "scope",
        "shape",
        "shapes",
        "slots",
        "tangents",
        "versions",
    )
    saves = None  # inputs backward reads through input(i): indices, or "all"; None: it keeps its own arrays
    # a view op defines write_back(base, view_value, **options): the base's value once its view holds
    # view_value, out of place (what an in-place change of the view records; see _record_through_base)
    write_back = None
    array_backward = False
    backward_into = None  # ops whose gradient is a scatter define backward_into(g, input_grad_buffer)
    kept_for_drawing = None  # ops define it to return the small attributes a drawing reads after backward
    whole_sequence = False  # True for a node that stands for a whole recurrent pass (drawn as one node)
    multiple_outputs = False

    @classmethod
    def apply(cls, *inputs, **options):
        tape = _state.tape
        if tape is not None and tape.listening():
            return tape.apply(cls, inputs, options)
        if len(inputs) > 1:
            _check_same_device(cls.__name__.lower(), inputs)
        node = cls.__new__(cls)
        arrays = [t.array for t in inputs]
        try:
            out = node.forward(*arrays, **options)
        except (ValueError, TypeError, IndexError) as e:
            described = ", ".join(f"{t.shape} {t.dtype}" for t in inputs)
            # re-raised as the base type: NumPy's own subclasses take other constructor arguments
            kind = next(k for k in (IndexError, TypeError, ValueError) if isinstance(e, k))
            raise kind(f"{cls.__name__.lower()}: {e} (inputs: {described})") from e
        state = _state
        if state.watch is not None and not state.grad_enabled:
            state.watch(inputs)
        if cls.multiple_outputs:
            return node._outputs(inputs, arrays, out)
        if state.forward_ad:
            for t in inputs:
                if t._shared is not None:
                    current_view(t)  # its tangent too
            tangent = _forward_tangent(node, inputs, out)
        elif not state.grad_enabled:  # the common unrecorded case: no_grad code, a plain backward's VJPs
            result = Tensor._make(out, None)
            if out.base is not None:  # a view made under no_grad still shares its base's version counter
                base = _viewed(out, inputs)
                if base is not None:
                    result._shared = _view_of(base)
                    result._view = (None, None, None, None, result._shared.epoch, 0)  # see regenerate_view
            return result
        else:
            tangent = None
        # a view whose base changed in place since it was taken gets its graph again first (current_view)
        needs = tuple([t.requires_grad if t._shared is None else current_view(t) for t in inputs])
        if not state.grad_enabled or True not in needs:
            result = Tensor._make(out, None)
        else:
            node._link(inputs, arrays, needs, tangent is not None)
            node.shape = out.shape
            result = Tensor._make(out, node)
        base = _viewed(out, inputs)
        if base is not None:
            result._shared = _view_of(base)
            result._view = (cls, inputs, options, base, result._shared.epoch, 0)
        if tangent is not None:
            result._tangent = tangent
            if state.duals is not None:
                note_dual(result)
            if result._ctx is not None:
                result._ctx.out_tangent = tangent
        return result

    def _link(self, inputs, arrays, needs, tangents):
        """Record this node: its parents and what its backward reads."""
        cls = type(self)
        self.parents = tuple([t._ctx or t for t in inputs])
        self.slots = None  # which output of each parent the edge reads, where one reads another than 0
        for t in inputs:  # a plain loop is the cheapest test, and almost every edge reads output 0
            if t._output_nr:
                self.slots = tuple([u._output_nr for u in inputs])
                break
        self.needs = needs
        self.shapes = tuple([a.shape for a in arrays])
        saves = range(len(inputs)) if cls.saves is None or cls.saves == "all" else cls.saves
        self.saved = {i: arrays[i] for i in saves} if cls.saves else None
        # (input, its version) for each input backward reads: a later in-place change of it, or of any
        # tensor sharing its memory (its views, its base), is refused in backward
        self.versions = {i: (inputs[i], inputs[i]._version) for i in saves}
        self.tangents = {i: inputs[i]._tangent for i in saves} if tangents else None
        self.scope = _state.scope
        self.keep_grad = _state.keep_grads
        self.name = self.grad = self.g = self.hooks = None
        self.freed = False

    def _outputs(self, inputs, arrays, outs):
        """apply for an op with several outputs: a Tensor per output array (None stays None), all
        made by this node; tensor k knows it is output k, and so does every edge that reads it."""
        state = _state
        tangents = None
        needs = tuple([t.requires_grad if t._shared is None else current_view(t) for t in inputs])
        if state.forward_ad and any(t._tangent is not None for t in inputs):
            state.forward_ad = False  # a rule's own ops carry no tangents: one level of forward mode
            try:
                tangents = self.jvp(inputs, [t._tangent for t in inputs])
            finally:
                state.forward_ad = True
        recorded = state.grad_enabled and True in needs
        if recorded:
            self._link(inputs, arrays, needs, tangents is not None)
            self.shape = outs[0].shape
            self.output_shapes = tuple(None if a is None else a.shape for a in outs)
            self.names = [None] * len(outs)
        results = []
        for k, out in enumerate(outs):
            if out is None:
                results.append(None)
                continue
            t = Tensor._make(out, self if recorded else None)
            t._output_nr = k
            base = _viewed(out, inputs)
            if base is not None:  # a view among several outputs: kept, never regenerated nor written through
                t._shared = _view_of(base)
                t._view = (type(self), inputs, None, base, t._shared.epoch, k)
            if tangents is not None:
                t._tangent = tangents[k]
                if state.duals is not None:
                    note_dual(t)
            results.append(t)
        return tuple(results)

    @property
    def op(self):
        return type(self).__name__.lower()

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def backward(self, g):
        raise NotImplementedError

    def jvp(self, inputs, tangents):
        raise NotImplementedError(f"{self.op}: no forward-mode rule (jvp); use reverse mode "
                                  f"(tr.func.vjp / jacrev) for this op")

    # --- what backward reads, as tensors that stay connected to the graph
    def input(self, i):
        """Input i as a Tensor: the leaf itself, or its value attached to the node that made it."""
        parent = self.parents[i]
        saved, recorded = self.versions.get(i, (None, None))
        if saved is not None and saved._version != recorded:
            _raise_modified(self, i, saved, recorded)
        if isinstance(parent, Tensor):
            return parent
        t = self.attached(i, self.saved[i])
        if self.tangents is not None:
            t._tangent = self.tangents.get(i)
        return t

    def attached(self, i, array):
        """`array`, the value of input i, as a Tensor attached to the node that made that input (the
        leaf itself for a leaf), so that gradients reaching it flow on into the graph."""
        parent = self.parents[i]
        if isinstance(parent, Tensor):
            return parent
        t = Tensor._make(array, parent if _state.grad_enabled else None)
        if self.slots is not None:
            t._output_nr = self.slots[i]
        return t

    def output(self, array, k=0):
        """This node's own output k (saved in forward) as a Tensor attached to this node."""
        changed = self.__dict__.get("changed_outputs")
        if changed is not None and k in changed:
            counter, recorded, what = changed[k]
            if counter.count != recorded:
                raise RuntimeError(f"one of the variables needed for gradient computation has been modified by an "
                                   f"inplace operation: {what}, output {k} of {self.op}, is at version "
                                   f"{counter.count}; expected version {recorded} instead")
        t = Tensor._make(array, self if _state.grad_enabled else None)
        t._output_nr = k
        t._tangent = self.__dict__.get("out_tangent")
        return t

    def check_versions(self):
        for i, (saved, recorded) in self.versions.items():
            if saved._version != recorded:
                _raise_modified(self, i, saved, recorded)

    def __repr__(self):
        if not hasattr(self, "parents"):  # not recorded (yet): only the op is known
            return f"<{self.op}>"
        return f"<{self.op} -> {self.name or ''}{self.shape} scope={self.scope}>"


def _raise_modified(node, i, saved, recorded):
    """The error for input i of `node`, `saved`, whose memory changed in place since the forward."""
    what = _described(saved)
    origin = saved._shared.origin() if saved._shared is not None else None
    if origin is not None and origin is not saved:
        what += f" (which shares memory with {_described(origin)})"
    raise RuntimeError(f"one of the variables needed for gradient computation has been modified by an "
                       f"inplace operation: {what}, input {i} of {node.op}, is at version {saved._version}; "
                       f"expected version {recorded} instead (an optimizer step or an in-place change between "
                       f"forward and backward?)")


def note_in_place(tensor):
    """Before an in-place change of `tensor`: the node that made it, or the tensor whose memory it shares,
    keeps that output's version counter, so a backward that reads the output (a sigmoid's, a tanh's)
    refuses once it changed. Costs nothing until something changes in place."""
    shared = tensor._shared
    for t in (tensor, shared.origin() if shared is not None else None):
        node = None if t is None else t._ctx
        if node is not None and not node.freed:
            changed = node.__dict__.setdefault("changed_outputs", {})
            if t._output_nr not in changed:
                changed[t._output_nr] = (t._shared_counter(), t._version, _described(t))


def records_in_place(tensor, operand=None):
    """Whether an in-place change of `tensor` (by `operand`, a Tensor or a number) is recorded as an op:
    gradients are recorded and one of them requires grad, tangents ride along (forward mode), or an op
    tape listens (a step being traced). Otherwise the caller writes the array alone, as under no_grad."""
    state = _state
    tape = state.tape
    if tape is not None and tape.listening():
        return True
    if tensor.array.dtype.kind != "f":  # no gradient can flow into it
        return False
    other = operand if isinstance(operand, Tensor) else None
    for t in (tensor, other):
        if t is not None and t._shared is not None:
            current_view(t)  # a view taken before its base changed requires grad from then on
    if state.grad_enabled and (tensor.requires_grad or (other is not None and other.requires_grad)):
        return True
    return state.forward_ad and (tensor._tangent is not None or (other is not None and other._tangent is not None))


def old_value(tensor, copy=False):
    """A tensor standing for `tensor`'s value before an in-place change, made by the same node (or the
    same leaf): what the change is computed from, out of place. It shares the memory and the version
    counter, so a node that keeps it for backward refuses once the memory changes, unless `copy` (for
    an op whose backward reads it: torch's original_self). Under an op tape the memory keeps the old
    value (rebase_in_place), so it is neither copied nor counted as changed."""
    tape = _state.tape
    traced = tape is not None and tape.listening()
    old = Tensor._make(tensor.array.copy() if copy and not traced else tensor.array, tensor._ctx)
    old.requires_grad, old._output_nr, old._name, old._tangent = (tensor.requires_grad, tensor._output_nr,
                                                                  tensor._name, tensor._tangent)
    if old.array is tensor.array and not traced:
        old._shared, old._view = tensor._shared_counter(), None
    return old


def rebase_in_place(tensor, old, new):
    """Finish an in-place change recorded as `new` = an op on `old` (old_value): `tensor` takes new's
    value in its own memory (whatever else holds that array sees it) and, where gradients are
    recorded, new's place in the graph, as torch rebases grad_fn. Its version moves on, so nodes that
    kept its old value refuse to backward."""
    state = _state
    tape = state.tape
    traced = tape is not None and tape.listening()
    if traced:
        tape.changed_in_place(tensor, old, new)
    note_in_place(tensor)
    tensor._version += 1
    if tensor._shared is not None:
        tensor._shared.epoch += 1  # the views of this memory now hold an old graph: see current_view
    if traced:
        tensor.array = new.array  # the old array stays the old value's: the tape names values by identity
    else:
        tensor.array[...] = new.array
    if state.grad_enabled:
        retained = tensor.retains_grad
        tensor._ctx, tensor.requires_grad, tensor._output_nr = new._ctx, new.requires_grad, new._output_nr
        if retained:  # as torch moves the retains_grad hook: .grad is the new value's gradient
            tensor.retain_grad()
        if tensor._name is not None:
            tensor.name = tensor._name  # the new node shows the name
    if state.forward_ad:
        tensor._tangent = new._tangent
        if state.duals is not None:
            note_dual(tensor)
    return tensor


def note_dual(tensor):
    """`tensor` got a tangent inside a forward_ad dual level: it loses it when the level exits."""
    _state.duals.append(weakref.ref(tensor))


def _described(tensor):
    return f"{f'tensor {tensor.name!r}' if tensor.name else 'a tensor'} of shape {tuple(tensor.shape)}"


class SharedVersion:
    """The version counter of tensors that share memory (views, detached copies), as torch's: an in-place
    change through any of them is seen by all. It holds no tensor, so a detached copy never keeps the
    graph it was cut from alive; `origin` (a weak reference) names the first tensor in errors."""
    __slots__ = ("count", "epoch", "origin", "viewed")

    def __init__(self, tensor):
        self.count = tensor._version_count
        self.epoch = 0  # how many recorded in-place changes rebased a tensor of this memory (rebase_in_place)
        self.origin = weakref.ref(tensor)
        self.viewed = False  # whether a view or a detached copy shares the memory: see _record


def _view_of(tensor):
    """The version counter of `tensor`, whose memory an op's output views."""
    counter = tensor._shared_counter()
    counter.viewed = True
    return counter


def _viewed(out, inputs):
    """The input whose memory an op's output array views (a reshape, a transpose, a slice, the array
    itself), as torch's views: the output shares its version counter; else None (a counter of its own)."""
    if out.base is None:  # a new array (most ops), or an input's own array handed through
        for t in inputs:
            if t.array is out:
                return t
        return None
    root = _memory_owner(out)
    for t in inputs:
        if _memory_owner(t.array) is root:
            return t
    return None


# A view made by an op remembers, in `_view`, (op class, inputs, options, base, epoch, output): the op that
# made it, how, from which of its inputs (the base), the base's epoch (SharedVersion.epoch) then, and
# which output it is. A view made under no_grad keeps only the epoch (op None). Tensors that share memory
# otherwise (a base, a detached copy) hold None; tensors that share none leave the slot unset.

def current_view(tensor):
    """`tensor` (a view, a base or a detached copy) with the graph it has now, returning whether it
    requires grad: a view whose base changed in place since it was taken (a stale epoch) gets its graph
    again from the base's current node, by the op that made it (as torch regenerates a view's grad_fn).
    Its value needs nothing: it shares the memory. Only the recording paths call it."""
    view = tensor._view
    if view is not None and view[4] != tensor._shared.epoch:
        state = _state
        if state.grad_enabled or state.forward_ad:
            regenerate_view(tensor, view)
    return tensor.requires_grad


def regenerate_view(tensor, view):
    op, inputs, options, base, _, output = view
    if op is None:
        raise RuntimeError(f"a view (shape {tensor.shape}) was created in no_grad mode and its base or another "
                           f"view of its base has been modified in place with grad mode enabled: take the view "
                           f"and make the change both inside the no_grad block or both outside")
    if op.multiple_outputs:
        raise RuntimeError(f"a view (shape {tensor.shape}) made by {op.__name__.lower()} among several outputs "
                           f"is used after its base changed in place: its graph cannot be made again; take it "
                           f"after the change")
    fresh = op.apply(*[made_again(t) for t in inputs], **options)
    retained = tensor.retains_grad
    tensor._ctx, tensor.requires_grad, tensor._output_nr = fresh._ctx, fresh.requires_grad, fresh._output_nr
    if retained and tensor.requires_grad:  # as torch moves the retains_grad hook onto the view's new grad_fn
        tensor.retain_grad()
    if _state.forward_ad:
        tensor._tangent = fresh._tangent
        if _state.duals is not None:
            note_dual(tensor)
    tensor._view = (op, inputs, options, base, tensor._shared.epoch, output)


def made_again(tensor):
    """A view's value as a new tensor made again from the current graph of the tensor at the root of its views
    (torch makes a view from its root): the views in between keep their nodes (their hooks, their retained
    gradients) for the uses made of them. Other tensors are themselves."""
    view = tensor._view if tensor._shared is not None else None
    if view is None or view[0] is None or view[0].multiple_outputs:
        return tensor  # not a view an op made (a stale one is refused by current_view when it is used)
    return view[0].apply(*[made_again(t) for t in view[1]], **view[2])


def _memory_owner(array):
    """The object at the end of an array's chain of bases (an array, or a buffer such as a memoryview)."""
    while True:
        base = getattr(array, "base", None)
        if base is None:
            return array
        array = base


def _forward_tangent(node, inputs, out):
    """The output tangent of an op whose inputs carry tangents (forward mode), or None."""
    tangents = [t._tangent for t in inputs]
    if all(t is None for t in tangents):
        return None
    _state.forward_ad = False  # a rule's own ops carry no tangents: one level of forward mode
    try:
        tangent = node.jvp(inputs, tangents)
    finally:
        _state.forward_ad = True
    if tangent is None:
        return None
    if tangent.shape != out.shape:
        tangent = tangent.expand(out.shape)
    return tangent


def _check_same_device(op, inputs):
    first = inputs[0].array.__class__
    for t in inputs:
        if t.array.__class__ is not first:
            break
    else:
        return
    if len({backend.device_of(t.array) for t in inputs}) > 1:
        devices = ", ".join(f"{t.shape} on {t.device}" for t in inputs)
        raise backend.DeviceError(f"{op}: inputs are on different devices "
                                  f"({devices}); move them with .to(device) first")


# ----------------------------------------------------------------------------- Tensor

def _native(data, op="Tensor", wanted_kind=None):
    """`data` as a NumPy or CuPy array, refusing what has no numbers; foreign arrays (torch, JAX, ...)
    through `__array__` or, on the GPU, `__cuda_array_interface__`."""
    if isinstance(data, Tensor):
        return data.array
    if isinstance(data, (np.ndarray, np.generic)) or backend.is_cupy_array(data):
        array = np.asarray(data) if isinstance(data, np.generic) else data
    elif data is None or isinstance(data, (str, bytes)):
        raise TypeError(f"{op}: data must be a number, a (nested) sequence of numbers or an array; got "
                        f"{type(data).__name__}")
    else:
        if hasattr(data, "detach") and hasattr(data, "requires_grad"):
            data = data.detach()  # a torch tensor that requires grad refuses NumPy otherwise
        if hasattr(data, "__cuda_array_interface__"):  # a GPU array of another library: shared, not copied
            return backend.xp_for("cuda").asarray(data)
        try:
            array = np.asarray(data)
        except (ValueError, TypeError, OverflowError, RuntimeError) as e:
            raise ValueError(f"{op}: data must be a number or a rectangular nested sequence of numbers; "
                             f"{e}") from None
    if (array.dtype == object and array.size and not isinstance(data, np.ndarray)
            and all(isinstance(v, numbers.Integral) for v in array.reshape(-1))):
        if wanted_kind in ("f", "b"):   # a Python int past int64 still fits a float or a bool, as in torch
            return array.astype(np.float64 if wanted_kind == "f" else np.bool_)
        too_big = next(v for v in array.reshape(-1) if not -2**63 <= v < 2**63)
        raise ValueError(f"{op}: the integer {too_big} cannot be converted to int64 without overflow")
    if array.dtype.kind not in "biufc":
        raise TypeError(f"{op}: cannot make a tensor from a {type(data).__name__} of dtype {array.dtype}: data "
                        f"must hold numbers (or booleans)")
    return array


def _python_data(data):
    """Numbers and (nested) sequences, as opposed to arrays and tensors that carry their own dtype."""
    return not (isinstance(data, (Tensor, np.ndarray, np.generic)) or backend.is_cupy_array(data)
                or hasattr(data, "__array__") or hasattr(data, "__array_interface__")
                or hasattr(data, "__cuda_array_interface__"))


def _as_array(data, dtype, device):
    xp = backend.xp_for(device)
    python_data = _python_data(data)
    if isinstance(data, Tensor):
        dtype = dtype or data.dtype  # a tensor keeps its dtype
    dtype = None if dtype is None else dtypes.check(dtype, "Tensor")
    data = _native(data, wanted_kind=None if dtype is None else dtype.kind)
    if data.dtype.kind == "c":
        raise TypeError(f"Tensor: complex data is not supported; got dtype {data.dtype}")
    if dtype is not None:
        if python_data:
            dtypes.check_fits(data, dtype, "Tensor")
        return xp.asarray(backend.to_device(data, device), dtype=dtype)
    array = xp.asarray(backend.to_device(data, device))
    if array.dtype.kind == "f":
        default = dtypes.get_default_dtype()
        array = array.astype(default) if array.dtype != default else array
    elif array.dtype.kind in "iu" and python_data:
        array = array.astype(np.int64)
    return array


class Tensor(TensorMethods, ElementwiseMethods, ShapeMethods, SamplingMethods):
    """An n-dimensional array that records the ops applied to it.

    `Tensor(data, requires_grad=False, dtype=None, device=None)`: floating data becomes the default float
    unless `dtype` says otherwise; integer and boolean arrays keep their type (indices, masks).
    """
    # _view is set where _shared is (see current_view); unset on the many tensors that share no memory
    __slots__ = ("__weakref__", "_ctx", "_grad", "_hooks", "_name", "_output_nr", "_post_hooks", "_shared", "_tangent",
                 "_version_count", "_view", "array", "requires_grad")
    __array_ufunc__ = None  # make NumPy hand `array * tensor` over to Tensor.__rmul__

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        if not isinstance(requires_grad, (bool, np.bool_)):  # torch.Tensor(2, 3), the legacy size form
            raise TypeError(f"Tensor(data, requires_grad=False, dtype=None, device=None): requires_grad must be a "
                            f"bool, got {requires_grad!r}; Tensor takes data, not sizes: for a tensor of a given "
                            f"size use tr.empty, tr.zeros or tr.randn")
        if device is None and isinstance(data, Tensor):
            device = data.device
        elif device is None and (backend.is_cupy_array(data) or hasattr(data, "__cuda_array_interface__")):
            device = "cuda"
        self.array = _as_array(data, dtype, backend.check_device(device))
        self._ctx = self._grad = self._name = self._tangent = self._hooks = self._post_hooks = self._shared = None
        self._version_count = self._output_nr = 0
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, ctx):
        t = object.__new__(Tensor)
        if data.__class__ is not np.ndarray and isinstance(data, np.generic):
            data = np.asarray(data)  # NumPy reductions return scalars; keep arrays throughout
        t.array = data
        t._ctx = ctx
        t.requires_grad = ctx is not None
        t._grad = t._name = t._tangent = t._hooks = t._post_hooks = t._shared = None
        t._version_count = t._output_nr = 0
        return t

    # --- storage: `array` is the raw NumPy or CuPy array; `data` is PyTorch's detached view of it
    @property
    def data(self):
        """A tensor sharing this one's storage, cut from the graph, with requires_grad False."""
        return self._cut()

    @data.setter
    def data(self, value):
        """Take `value`'s memory, with its shape, dtype and device, as torch's set_data (p.data = p.data.half());
        the version counter stays this tensor's."""
        if not isinstance(value, Tensor):
            raise TypeError(f"data: must be set to a Tensor, not {type(value).__name__}")
        if self.requires_grad and value.dtype.kind != "f":
            raise RuntimeError(f"data: a tensor that requires grad can only be set to floating point data; got "
                               f"{value.dtype}")
        self.array = value.array

    @property
    def _version(self):
        """How many in-place changes this tensor's memory has seen: one count shared with the tensors
        whose memory it shares (its views, its detached copies), as torch's version counter."""
        shared = self._shared
        return self._version_count if shared is None else shared.count

    @_version.setter
    def _version(self, value):
        if self._shared is None:
            self._version_count = value
        else:
            self._shared.count = value

    def _shared_counter(self):
        """This tensor's version counter as an object another tensor sharing its memory can hold."""
        if self._shared is None:
            self._shared, self._view = SharedVersion(self), None
        return self._shared

    # --- metadata
    @property
    def shape(self):
        return self.array.shape

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def ndim(self):
        return self.array.ndim

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.array)

    def __iter__(self):
        """The tensor's rows, as torch iterates; a 0-d tensor has none to give (not an empty sequence)."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    @property
    def device(self):
        return backend.device_of(self.array)

    @property
    def xp(self):
        return backend.xp_of(self.array)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        if self._shared is not None:
            current_view(self)
        return self._ctx

    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, value):
        self._name = value
        ctx = self._ctx
        if ctx is not None:
            if ctx.multiple_outputs and "names" in ctx.__dict__:  # (a freed node has forgotten them)
                ctx.names[self._output_nr] = value
            if self._output_nr == 0:
                ctx.name = value

    def named(self, name):
        """Set the name shown in graph drawings and return self (for use inside expressions)."""
        self.name = name
        return self

    # --- gradients
    @property
    def grad(self):
        """The gradient, a Tensor: accumulated for leaves; for other tensors only when retained."""
        ctx = self._ctx
        if ctx is not None:
            return ctx.grad[self._output_nr] if ctx.multiple_outputs and ctx.grad is not None else ctx.grad
        return self._grad

    @grad.setter
    def grad(self, value):
        if self._ctx is not None:
            if value is not None:
                raise RuntimeError("grad: only leaf tensors have a settable .grad")
            self._ctx.grad = None
            return
        if value is not None:
            if not isinstance(value, Tensor):
                value = Tensor._make(self.xp.asarray(_numeric(value, "grad")), None)
            if value.shape != self.shape:
                raise ValueError(f"grad: assigned gradient has shape {value.shape}, tensor has {self.shape}")
            if value.device != self.device:
                raise backend.DeviceError(f"grad: assigned gradient is on {value.device}, tensor on {self.device}")
        self._grad = value

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.dtype.type not in FLOAT_DTYPES:
            raise TypeError(f"only floating point tensors can require gradients; got dtype {self.dtype}")
        if self._ctx is not None and not requires_grad:
            raise RuntimeError("requires_grad_: cannot turn off gradients of a non-leaf tensor; "
                               "use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient after backward (in `.grad`); returns None, as torch."""
        if self._shared is not None:
            current_view(self)  # a view whose base changed since: its current node keeps the gradient
        if not self.requires_grad:
            raise RuntimeError("retain_grad: can't retain_grad on a tensor that has requires_grad=False")
        ctx = self._ctx
        if ctx is None or ctx.keep_grad is True:
            return
        if ctx.multiple_outputs:  # this output only: a node's other outputs keep no gradient, as in torch
            ctx.keep_grad = (ctx.keep_grad or frozenset()) | {self._output_nr}
        else:
            ctx.keep_grad = True

    @property
    def retains_grad(self):
        ctx = self._ctx
        if ctx is None or not ctx.keep_grad:
            return False
        return ctx.keep_grad is True or self._output_nr in ctx.keep_grad

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (PyTorch's arguments)."""
        from . import autograd
        autograd.backward(self, gradient, retain_graph, create_graph, inputs)

    def register_hook(self, hook):
        """Call `hook(grad)` when this tensor's gradient is computed; a returned tensor replaces it."""
        from . import autograd
        if not callable(hook):
            raise TypeError(f"register_hook: hook must be callable, as hook(grad); got {type(hook).__name__}")
        if self._shared is not None:
            current_view(self)  # a view whose base changed since: the hook goes on its current node
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that doesn't require gradient")
        if self._ctx is not None:
            hooks = autograd.node_hooks(self._ctx)
            if self._ctx.multiple_outputs:  # the node's hooks say which of its outputs they watch
                hook = autograd.OutputHook(self._output_nr, hook)
        else:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        hooks.append(hook)
        return autograd.RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call `hook(tensor)` once this leaf's `.grad` is final for the running backward (as torch)."""
        from . import autograd
        if self._ctx is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors accumulate a .grad")
        if not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: the tensor does not require grad")
        if self._post_hooks is None:
            self._post_hooks = []
        self._post_hooks.append(hook)
        return autograd.RemovableHandle(self._post_hooks, hook)

    def zero_grad(self):
        self._grad = None

    # --- conversion
    def _cut(self):
        """The same data, cut from the graph; under an op tape (a step being traced) an op on this
        value, so that the tape does not take it for a constant."""
        tape = _state.tape
        if tape is not None and tape.listening():
            return ops.StopGradient.apply(self)
        return Tensor._make(self.array, None)

    def detach(self):
        """The same data as a new leaf, cut from the graph."""
        t = self._cut()
        t._name = self._name
        t._shared = _view_of(self)  # the same memory: an in-place change of either is seen by both
        t._view = None
        return t

    def detach_(self):
        """Cut this tensor from its graph in place: it becomes a leaf that does not require grad."""
        if getattr(self, "_view", None) is not None:
            raise RuntimeError(f"detach_: can't detach a view (shape {self.shape}) in place; use detach() instead")
        self._ctx, self._tangent, self._output_nr, self.requires_grad = None, None, 0, False
        return self

    def numpy(self):
        _value_read("numpy")
        return backend.to_numpy(self.array).copy()

    def __array__(self, dtype=None, copy=None):
        """NumPy interop: np.asarray(tensor) is a host array (a copy for CuPy data)."""
        _value_read("array")
        array = backend.to_numpy(self.array)
        return array if dtype is None else array.astype(dtype, copy=False)

    def __dlpack__(self, *args, **kwargs):
        """DLPack interop: torch.tensor(t) and torch.from_dlpack(t) read the array (no copy for the second)."""
        _value_read("dlpack")
        return self.array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()

    def item(self):
        _value_read("item")
        if self.array.size != 1:
            raise ValueError(f"item: only one-element tensors convert to a Python number; got shape {self.shape}")
        return self.array.reshape(()).item()

    def tolist(self):
        _value_read("tolist")
        return backend.to_numpy(self.array).tolist()

    def to(self, *args, device=None, dtype=None, non_blocking=False, copy=False):
        """A copy on another device and/or with another dtype, as torch: to(device), to(dtype),
        to(device, dtype), to(other tensor), or by keyword. Gradients flow back through it."""
        from . import ops
        for arg in args:
            if isinstance(arg, Tensor):
                device, dtype = arg.device, arg.dtype
            elif isinstance(arg, bool) or arg is None:
                continue  # non_blocking or copy, given by position
            elif isinstance(arg, str) and arg.split(":")[0] in backend.DEVICES:
                device = arg
            else:
                try:
                    dtype = np.dtype(arg)
                except TypeError:
                    raise TypeError(f"to: {arg!r} is neither a device nor a dtype") from None
        out = self
        if device is not None and backend.check_device(device) != self.device:
            out = ops.ToDevice.apply(out, device=backend.check_device(device))
        if dtype is not None and dtypes.check(dtype, "to") != out.dtype:  # complex and object refused
            out = ops.Cast.apply(out, dtype=np.dtype(dtype))
        return out.clone() if copy and out is self else out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def __repr__(self):
        _value_read("repr")
        extra = ""
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        if self.dtype not in (dtypes.get_default_dtype(), np.int64, np.bool_):  # the ones torch leaves unnamed
            extra += f", dtype={self.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn={self._ctx.op}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        if self._name:
            extra += f", name={self._name!r}"
        body = printing.array_text(backend.to_numpy(self.array))  # tr.set_printoptions
        return f"tensor({body}{extra})"


    # --- arithmetic (the ops module defines each primitive once; these only route to it)
    def _lift(self, other, op=None):
        """A Python number or array as a constant tensor on this tensor's device; of this tensor's
        dtype when it is floating (a NumPy array or list given as an operand is data of this tensor).
        A number beside an integer or bool tensor is weak, as in torch: a float one is the default float, so
        that `1.5 // int_tensor` is float32 like `int_tensor // 1.5`, not float64."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (int, float, np.integer, np.floating)) and not isinstance(other, (bool, np.bool_)):
            if self.array.dtype.kind == "f":
                return _scalar(other, self.array.dtype, self.array)
            weak = dtypes.get_default_dtype() if isinstance(other, (float, np.floating)) else np.dtype(np.int64)
            return _scalar(other, weak, self.array)
        array = _numeric(other, op)
        array = self.xp.asarray(backend.to_device(array, self.device) if hasattr(array, "dtype") else array,
                                dtype=self.dtype if self.dtype.kind == "f" else None)
        return Tensor._make(array, None)

    def _binary(self, op, other, reverse=False, **options):
        """op(self, other), or op(other, self), with both operands in the dtype torch promotes them to
        (the op's `options` passed on)."""
        cls, dtype = other.__class__, self.array.dtype
        if dtype.kind == "f":  # the hot paths: x * y of one floating dtype, x * 0.5
            if cls is Tensor and other.array.dtype is dtype:
                return op.apply(other, self, **options) if reverse else op.apply(self, other, **options)
            if cls is float or cls is int:
                other = _scalar(other, dtype, self.array)
                return op.apply(other, self, **options) if reverse else op.apply(self, other, **options)
        name = op.__name__.lower()
        number = isinstance(other, (bool, int, float)) or (isinstance(other, np.generic) and other.ndim == 0)
        if not number:
            other = self._lift(other, name)
        dtype = dtypes.result_type(self.array, other if number else other.array)
        kinds = (self.dtype.kind, "b" if isinstance(other, (bool, np.bool_)) else "n" if number else other.dtype.kind)
        if op is ops.Sub and "b" in kinds:
            raise TypeError("sub: subtraction, the `-` operator, with a bool tensor is not supported; "
                            "use ~ or logical_xor to invert or compare masks")
        if op is ops.Pow and dtype.kind == "b":
            raise TypeError("pow: not implemented for bool tensors")
        if op is ops.Pow and dtype.kind in "iu" and number and not reverse and other < 0:
            raise ValueError("pow: Integers to negative integer powers are not allowed")
        if op is ops.Matmul and dtype.kind == "b":
            raise TypeError("matmul: not implemented for bool tensors")
        if op in (ops.Div, ops.Atan2, ops.XLogY, ops.CopySign):
            dtype = dtypes.floating(dtype)  # as torch: integers divide (atan2, xlogy...) to the default float
        elif op is ops.Matmul and not number and self.dtype != other.dtype:
            raise TypeError(f"matmul: expected both operands to have the same dtype, but found {self.dtype} and "
                            f"{other.dtype}")
        other = _scalar(other, dtype, self.array) if number else other._as_dtype(dtype)
        me = self._as_dtype(dtype)
        return op.apply(other, me, **options) if reverse else op.apply(me, other, **options)

    def _as_dtype(self, dtype):
        """This tensor in `dtype`: itself, a differentiable cast, or a converted constant."""
        if self.array.dtype == dtype:
            return self
        if self.requires_grad:
            return ops.Cast.apply(self, dtype=dtype)
        return ops.Convert.apply(self, dtype=dtype)   # an op, so that a traced step converts each step's value

    def _floating(self):
        """This tensor as floating point: integer and bool tensors compute exp, log ... in the
        default float."""
        return self if self.array.dtype.kind == "f" else self._as_dtype(dtypes.get_default_dtype())

    def __add__(self, other): return self._binary(ops.Add, other)
    def __radd__(self, other): return self._binary(ops.Add, other, reverse=True)
    def __sub__(self, other): return self._binary(ops.Sub, other)
    def __rsub__(self, other): return self._binary(ops.Sub, other, reverse=True)
    def __mul__(self, other): return self._binary(ops.Mul, other)
    def __rmul__(self, other): return self._binary(ops.Mul, other, reverse=True)
    def __truediv__(self, other): return self._binary(ops.Div, other)
    def __rtruediv__(self, other): return self._binary(ops.Div, other, reverse=True)
    def __pow__(self, other): return self._binary(ops.Pow, other)
    def __rpow__(self, other): return self._binary(ops.Pow, other, reverse=True)
    def __matmul__(self, other): return self._binary(ops.Matmul, other)
    def __rmatmul__(self, other): return self._binary(ops.Matmul, other, reverse=True)
    def __mod__(self, other): return self.remainder(other)
    def __rmod__(self, other): return self._lift(other, "remainder").remainder(self)
    def __getitem__(self, index):
        index = _raw_index(index)
        ints_first = _integers_first(index)
        if ints_first is not None:  # torch's order: integers select first, then the index arrays
            return ops.Getitem.apply(ops.Getitem.apply(self, index=ints_first[0]), index=ints_first[1])
        return ops.Getitem.apply(self, index=index)

    def __neg__(self):
        if self.dtype.kind == "b":
            raise TypeError("neg: negation, the `-` operator, on a bool tensor is not supported; use ~ to invert a mask")
        return ops.Neg.apply(self)

    neg = negative = __neg__

    def exp(self): return ops.Exp.apply(self._floating())
    def log(self): return ops.Log.apply(self._floating())
    def tanh(self): return ops.Tanh.apply(self._floating())
    def sigmoid(self): return ops.Sigmoid.apply(self._floating())
    def sqrt(self): return ops.Sqrt.apply(self._floating())
    def log1p(self): return ops.Log1p.apply(self._floating())
    def expm1(self): return ops.Expm1.apply(self._floating())
    def erf(self): return ops.Erf.apply(self._floating())
    def sin(self): return ops.Sin.apply(self._floating())
    def cos(self): return ops.Cos.apply(self._floating())
    def erfc(self): return ops.Erfc.apply(self._floating())
    def sinc(self): return ops.Sinc.apply(self._floating())
    def asin(self): return ops.Asin.apply(self._floating())
    def acos(self): return ops.Acos.apply(self._floating())
    def atan(self): return ops.Atan.apply(self._floating())
    def asinh(self): return ops.Asinh.apply(self._floating())
    def acosh(self): return ops.Acosh.apply(self._floating())
    def atanh(self): return ops.Atanh.apply(self._floating())
    def atan2(self, other): return self._binary(ops.Atan2, other)

    def arctan2(self, other): return self._binary(ops.Atan2, other)  # its own name in errors

    arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh

    def relu(self):
        if self.dtype.kind == "b":
            raise TypeError("relu: boolean inputs are not supported")
        return ops.Relu.apply(self)

    def clip(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clip: give at least one of min and max")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            return _clip_by_tensors(self, min, max)
        bounds = {}
        for name, bound in (("min", min), ("max", max)):
            bound = _as_number(bound)
            if bound is not None:
                bounds[name] = bound if isinstance(bound, (bool, int, float)) else _numeric(bound, "clip")
        dtype = dtypes.result_type(self.array, *bounds.values())
        if dtype.kind == "b":
            raise TypeError("clip (clamp): not implemented for bool tensors and bounds")
        for bound in bounds.values():
            dtypes.check_fits(np.asarray(bound), dtype, "clamp")
        # numbers stay Python numbers (weak in NumPy's promotion; the step compiler writes them as code)
        # an array bound moves to this tensor's device: CuPy's clip and comparisons refuse NumPy arrays
        low, high = (b if b is None or isinstance(b, (bool, int, float)) else
                     backend.to_device(b, self.device).astype(dtype)
                     for b in (bounds.get("min"), bounds.get("max")))
        return ops.Clip.apply(self._as_dtype(dtype), low=low, high=high)

    clamp = clip

    def clamp_min(self, min):
        return self.clamp(min=min)

    def clamp_max(self, max):
        return self.clamp(max=max)

    # --- reductions: NumPy's axis/keepdims, PyTorch's dim/keepdim accepted too
    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None):
        """The sum over dims; dtype=: cast to it first, as torch (sum(dtype=tr.float64) of float32)."""
        if dtype is not None:
            # an integer dtype given stays (integers otherwise sum in int64)
            return self.to(dtype=dtype).sum(axis, keepdims, dim=dim, keepdim=keepdim).to(dtype=dtype)
        return ops.Sum.apply(self, **_reduce_args("sum", self, axis, keepdims, dim, keepdim))

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None):
        if dtype is not None:
            return self.to(dtype=dtype).mean(axis, keepdims, dim=dim, keepdim=keepdim)
        if self.dtype.kind != "f":
            raise TypeError(f"mean: could not infer output dtype; the input must be floating point (use "
                            f".float()); got {self.dtype}")
        return ops.Mean.apply(self, **_reduce_args("mean", self, axis, keepdims, dim, keepdim))

    # --- shapes
    def reshape(self, *shape):
        shape = sizes_argument("reshape", shape, "shape")
        if shape and min(shape) < -1:
            raise ValueError(f"reshape: invalid shape dimension in {shape} (sizes are >= 0, or -1 for one "
                             f"inferred dim)")
        return ops.Reshape.apply(self, shape=shape)

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        """Dims start_dim to end_dim (inclusive) merged into one, as torch."""
        start, end = check_dim("flatten", start_dim, self.ndim), check_dim("flatten", end_dim, self.ndim)
        if self.ndim == 0:
            return self.reshape(1)
        if start > end:
            raise ValueError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
        merged = int(np.prod(self.shape[start:end + 1]))
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1:])

    def unflatten(self, dim, sizes):
        """Dim `dim` split into `sizes` (one of them may be -1), as torch: flatten's inverse."""
        d = check_dim("unflatten", dim, self.ndim)
        sizes = tuple(int(n) for n in sizes)
        if not sizes:
            raise ValueError("unflatten: sizes must be non-empty")
        known = int(np.prod([n for n in sizes if n != -1]))
        if sizes.count(-1) > 1 or (-1 not in sizes and known != self.shape[d]) or \
                (-1 in sizes and (known == 0 or self.shape[d] % known)):
            raise ValueError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim "
                             f"{dim} ({self.shape[d]}) in the input tensor of shape {self.shape}")
        return self.reshape(self.shape[:d] + sizes + self.shape[d + 1:])

    def permute(self, *dims):
        dims = sizes_argument("permute", dims, "dims")
        if len(dims) != self.ndim:
            raise ValueError(f"permute: {dims} is not a permutation of the {self.ndim} dims of {self.shape}")
        return ops.Permute.apply(self, axes=tuple(check_dims("permute", dims, self.ndim)) if self.ndim else ())

    def transpose(self, dim0=-2, dim1=-1):
        """Swap two dims (PyTorch's transpose); `.T` reverses all of them."""
        axes = list(range(self.ndim))
        dim0, dim1 = check_dim("transpose", dim0, self.ndim), check_dim("transpose", dim1, self.ndim)
        if self.ndim < 2:
            return self
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return ops.Permute.apply(self, axes=tuple(axes))

    swapaxes = transpose

    @property
    def T(self):
        return ops.Permute.apply(self, axes=tuple(reversed(range(self.ndim))))

    @property
    def mT(self):
        if self.ndim == 1:
            raise ValueError("mT: only supported on matrices or batches of matrices; got a 1-D tensor")
        return self.transpose(-2, -1) if self.ndim else self  # a 0-d tensor is its own transpose, as in torch

    def expand(self, *sizes):
        """A broadcast view with size-1 dims (and new leading dims) repeated; -1 keeps a dim."""
        sizes = sizes_argument("expand", sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: {sizes} has fewer dims than the tensor's shape {self.shape}")
        shape = tuple(self.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
        for i, n in enumerate(self.shape):
            if n != 1 and n != shape[lead + i]:
                raise ValueError(f"expand: the size of dim {i} ({n}) must match {shape[lead + i]} "
                                 f"(or be 1) to expand {self.shape} to {sizes}")
        return self if shape == self.shape else ops.Expand.apply(self, shape=shape)

    def expand_as(self, other):
        return self.expand(_tensor_argument("expand_as", "other", other).shape)

    @numpy_aliases
    def unsqueeze(self, dim):
        dim = check_dim("unsqueeze", dim, self.ndim, new_axis=True)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    @numpy_aliases
    def squeeze(self, dim=None):
        """Drop size-1 dims: all of them, or `dim` when it has size 1 (else unchanged), as torch."""
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        dims = set(check_dims("squeeze", dim if isinstance(dim, (tuple, list)) else (dim,), self.ndim))
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1)))

    @numpy_aliases
    def split(self, split_size_or_sections, dim=0):
        """Pieces of `split_size` along `dim` (an int), or of the given sizes (a list), like PyTorch."""
        if self.ndim == 0:
            raise RuntimeError("split: expects at least a 1-dimensional tensor")
        dim = check_dim("split", dim, self.ndim)
        n = self.shape[dim]
        sections = split_size_or_sections
        if isinstance(sections, numbers.Integral) and not isinstance(sections, bool):
            size = int(sections)
            if size < 0 or (size == 0 and n):
                raise ValueError(f"split: split_size must be a positive int (0 only for a dim of size 0); got "
                                 f"{size} for dim {dim} of {self.shape}")
            sizes = ([size] * (n // size) + ([n % size] if n % size else [])) if n else [0]
        elif isinstance(sections, (tuple, list)):
            sizes = list(sizes_argument("split", (sections,), "split_size_or_sections")) if sections else []
            if any(s < 0 for s in sizes) or sum(sizes) != n:
                raise ValueError(f"split: sizes {sizes} must be non-negative and add up to {n}, dim {dim} of "
                                 f"{self.shape}")
        else:
            raise TypeError(f"split: split_size_or_sections must be an int or a list of ints; got "
                            f"{type(sections).__name__} {sections!r}")
        pieces, start = [], 0
        lead = (slice(None),) * dim
        for size in sizes:
            pieces.append(self[lead + (slice(start, start + size),)])
            start += size
        return tuple(pieces)

    @numpy_aliases
    def chunk(self, chunks, dim=0):
        """`chunks` pieces of equal size along dim (the last smaller; fewer when they run out), as torch."""
        if isinstance(chunks, bool) or not isinstance(chunks, numbers.Integral) or chunks <= 0:
            raise ValueError(f"chunk: chunks must be a positive int; got {chunks!r}")
        if self.ndim == 0:
            raise RuntimeError("chunk: expects at least a 1-dimensional tensor")
        n = self.shape[check_dim("chunk", dim, self.ndim)]
        if n == 0:
            return self.split([0] * int(chunks), dim)
        return self.split(-(-n // int(chunks)), dim)

    def __bool__(self):
        _value_read("bool")
        if self.array.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.item())

    __hash__ = object.__hash__


def _scalar(value, dtype, like):
    """A Python number as a constant 0-d tensor of `dtype` (NumPy's own for None) beside `like`, cached:
    numbers in expressions cost nothing."""
    key = (value, value.__class__, dtype, like.__class__)
    constant = _constants.get(key)
    if constant is None:
        if len(_constants) > 4096:
            _constants.clear()
        xp = backend.xp_of(like)
        if value.__class__ is int and dtype is not None and np.dtype(dtype).kind in "iu":
            array = xp.asarray(value).astype(dtype)  # wraps around, as torch's uint8 + 300 (NumPy would refuse)
        else:
            array = xp.asarray(value, dtype=dtype)
        constant = _constants[key] = Tensor._make(array, None)
    return constant


def _as_number(value):
    """A NumPy scalar (np.float64(0.5)) as the Python number torch takes it for, weak in promotion."""
    return value.item() if isinstance(value, (np.integer, np.floating)) else value


def _clip_by_tensors(x, low, high):
    """clamp with a tensor bound, as torch: the value min(max(x, low), high) (NaN wins); the gradient goes
    to x where low <= x <= high, to low where x < low < high, to high where x > high or high < low, and
    nowhere where none holds (x < low == high). Made of ops, so the bounds get gradients and a traced
    step computes its masks from each step's values."""
    given = [b for b in (low, high) if b is not None]
    dtype = dtypes.result_type(x.array, *[b.array if isinstance(b, Tensor) else b for b in given])
    if dtype.kind == "b":
        raise TypeError("clip (clamp): not implemented for bool tensors and bounds")
    low, high = (b if b is None else x._lift(b, "clip")._as_dtype(dtype) if isinstance(b, Tensor) else
                 _scalar(b, dtype, x.array) for b in (low, high))
    x = x._as_dtype(dtype)
    value = x
    if low is not None:
        value = value.maximum(low)
    if high is not None:
        value = value.minimum(high)
    out = where(_all_of([x >= low if low is not None else None, x <= high if high is not None else None]),
                x, value.detach())
    if low is not None:
        out = where(x < low if high is None else (x < low) & (low < high), low, out)
    if high is not None:
        out = where(x > high if low is None else (x > high) | (high < low), high, out)
    return out


def _all_of(masks):
    masks = [m for m in masks if m is not None]
    return masks[0] if len(masks) == 1 else masks[0] & masks[1]


def _numeric(value, op=None):
    """`value` (a number, sequence, NumPy, CuPy or foreign array) as an array of numbers, or TypeError."""
    if isinstance(value, Tensor):
        return value.array
    if hasattr(value, "dtype") and (isinstance(value, np.ndarray) or backend.is_cupy_array(value)):
        array = value
    elif value is None or isinstance(value, (str, bytes)):
        array = None
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError, RuntimeError):
            array = None
    if array is None or array.dtype.kind not in "biuf":
        raise TypeError(f"{op or 'operand'}: unsupported operand of type {type(value).__name__}; expected a "
                        f"Tensor, a number or an array of numbers")
    return array


def _tensor_argument(op, name, value):
    """`value`, which must be a Tensor (TypeError naming the argument otherwise)."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: argument '{name}' must be a Tensor, not {type(value).__name__}")
    return value


def _raw_index(index):
    """Integer tensors used as indices become their arrays; a 0-d integer tensor or array an int, as torch
    takes it (its dim dropped, and x[i] a view that writes reach)."""
    if isinstance(index, tuple):
        return tuple(_raw_item(i) for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return _raw_item(index)


def _raw_item(item):
    array = index_used(item, "indexing").array if isinstance(item, Tensor) else item
    if hasattr(array, "dtype") and array.ndim == 0 and array.dtype.kind in "iu" and not isinstance(array, np.generic):
        return int(array)
    return array


def _integers_first(index):
    """(the integers alone, the rest) of an index that mixes integers with integer arrays, else None.

    NumPy counts an integer as an index array there, and moves the broadcast dims of separated index
    arrays to the front: x[0, :, [0]] of a (1, 2, 1) tensor is (1, 2) in NumPy, (2, 1) in torch,
    which applies the integers first. Two steps give torch's answer.
    """
    if not isinstance(index, tuple):
        return None
    integers = arrays = False
    for item in index:
        if isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            integers = True
        elif isinstance(item, list) or hasattr(item, "dtype") and getattr(item, "ndim", 0):
            if np.asarray(item).dtype.kind == "b" if isinstance(item, list) else item.dtype.kind == "b":
                return None  # a mask takes as many dims as it has: left to NumPy
            arrays = True
    if not (integers and arrays):
        return None
    is_int = [isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)) for i in index]
    first = tuple(i if k or i is None or i is Ellipsis else slice(None) for i, k in zip(index, is_int))
    rest = tuple(slice(None) if i is None else i for i, k in zip(index, is_int) if not k)
    return first, rest


def _numpy_order(index, ndim):
    """For x[index] = v with integers mixed with index arrays: the axes that lay a value out in torch's
    order (integers applied first, _integers_first) out as NumPy writes it (the broadcast dims of the index
    arrays, integers counted among them, moved to the front when a slice or None separates them), as
    value.permute(axes); None where both lay it out alike."""
    items = index if isinstance(index, tuple) else (index,)
    kinds = []
    for item in items:
        if isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            kinds.append("int")
        elif isinstance(item, list) or (hasattr(item, "dtype") and not isinstance(item, np.generic)):
            if np.asarray(item).dtype.kind == "b" if isinstance(item, list) else item.dtype.kind == "b":
                return None  # a mask takes as many dims as it has: left to NumPy
            kinds.append("array")
        else:
            kinds.append("..." if item is Ellipsis else "none" if item is None else "slice")
    if "int" not in kinds or "array" not in kinds:
        return None
    arrays = [np.shape(item) for item, kind in zip(items, kinds) if kind == "array"]
    block = len(np.broadcast_shapes(*arrays))
    consumed = sum(1 for kind in kinds if kind in ("int", "array", "slice"))
    width = {"...": ndim - consumed, "none": 1, "slice": 1, "int": 0, "array": 0}  # output dims besides the block

    def block_place(advanced):
        """Where the block of the `advanced` kinds lands: in place when they stand together, else first."""
        at = [k for k, kind in enumerate(kinds) if kind in advanced]
        together = all(kinds[k] in ("int", "array") for k in range(at[0], at[-1] + 1))
        return sum(width[kind] for kind in kinds[:at[0]]) if together else 0

    ours, numpys = block_place(("array",)), block_place(("int", "array"))
    if ours == numpys:
        return None
    unnamed = 0 if "..." in kinds else ndim - consumed  # the trailing dims no item names
    others = sum(width[kind] for kind in kinds) + unnamed
    dims = list(range(others + block))
    rest = dims[:ours] + dims[ours + block:]
    return tuple(rest[:numpys] + dims[ours:ours + block] + rest[numpys:])


def _assigned(op, tensor, index, value):
    """`value` (a Tensor or an array) as x[index] = value writes it into `tensor` on NumPy's rules: leading
    size-1 dims past the indexed shape dropped (as torch drops them), and laid out in NumPy's order where
    torch's differs (_numpy_order). A value that does not fit is refused naming both shapes."""
    order = _numpy_order(index, tensor.ndim)
    if order is None and (value.ndim == 0 or (value.ndim <= tensor.ndim and value.shape[0] != 1)):
        return value  # fits as it is, or NumPy says which shapes do not
    from .ops import _device_index
    xp = tensor.xp
    try:  # the indexed shape: a view of a broadcast scalar costs nothing (an index array: a small copy)
        shape = xp.broadcast_to(xp.empty((), dtype=bool), tensor.shape)[_device_index(tensor.array, index)].shape
    except IndexError as e:
        raise IndexError(f"{op}: {e} (tensor of shape {tensor.shape})") from None
    if order is not None:
        shape = tuple(shape[order.index(k)] for k in range(len(shape)))  # in torch's order
    value_shape = tuple(value.shape)
    ones = 0
    while value.ndim - ones > len(shape) and value.shape[ones] == 1:
        ones += 1
    fits = value.ndim - ones <= len(shape) and all(
        a in (1, b) for a, b in zip(reversed(value.shape), reversed(shape)))
    if not fits:
        raise RuntimeError(f"{op}: a value of shape {value_shape} does not fit x[index] of shape {shape} (tensor "
                           f"of shape {tensor.shape})")
    if isinstance(value, Tensor):
        value = value.reshape(value.shape[ones:]) if ones else value
        return value.expand(shape).permute(order) if order is not None else value
    value = value.reshape(value.shape[ones:])
    return xp.broadcast_to(value, shape).transpose(order) if order is not None else value


def _reduce_args(op, tensor, axis, keepdims, dim, keepdim):
    """PyTorch's dim/keepdim, with NumPy's axis/keepdims accepted as aliases."""
    if dim is not None and axis is not None:
        raise TypeError(f"{op}: give dim= or axis=, not both")
    axis = reduction_dims(op, tensor, dim if dim is not None else axis)
    return {"axis": axis, "keepdims": bool(keepdim if keepdim is not None else keepdims)}


def _tensor_list(op, tensors):
    """A non-empty list of tensors on one device, in the dtype torch promotes them to."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, (tuple, list)):
        raise TypeError(f"{op}: expected a sequence of tensors, got {type(tensors).__name__}")
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of tensors")
    for k, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: element {k} is a {type(t).__name__}, not a Tensor")
    if len(tensors) > 1:
        _check_same_device(op, tensors)
        dtype = dtypes.result_type(*[t.array.reshape(-1) for t in tensors])  # every one counts, 0-d or not
        tensors = [t._as_dtype(dtype) for t in tensors]
    return tensors


def cat(tensors, dim=0, *, axis=None):
    """Concatenate along an existing dim."""
    tensors = _tensor_list("cat", tensors)
    for position, t in enumerate(tensors):
        if not t.ndim:
            raise RuntimeError(f"cat: zero-dimensional tensor (at position {position}) cannot be concatenated; "
                               f"stack them, or reshape them to (1,)")
    dim = check_dim("cat", dim if axis is None else axis, tensors[0].ndim)
    shapes = [t.shape for t in tensors]
    for shape in shapes:
        if len(shape) != len(shapes[0]) or any(a != b for i, (a, b) in enumerate(zip(shape, shapes[0])) if i != dim):
            raise ValueError(f"cat: shapes {shapes} differ outside dim {dim}")
    return ops.Cat.apply(*tensors, axis=dim)


concat = concatenate = cat


def stack(tensors, dim=0, *, axis=None):
    """Stack along a new dim; all shapes must match."""
    tensors = _tensor_list("stack", tensors)
    if len({t.shape for t in tensors}) > 1:
        raise ValueError(f"stack: all tensors must have the same shape; got {[t.shape for t in tensors]}")
    dim = check_dim("stack", dim if axis is None else axis, tensors[0].ndim, new_axis=True)
    return ops.Stack.apply(*tensors, axis=dim)


def where(condition, x, y):
    """Elements of x where condition holds, else of y (condition gets no gradient); x and y are tensors
    or numbers, promoted to one dtype as torch does."""
    if not isinstance(condition, Tensor):
        if not (isinstance(condition, np.ndarray) or backend.is_cupy_array(condition)):
            raise TypeError(f"where: condition must be a bool Tensor; got {type(condition).__name__}")
        condition = Tensor._make(condition, None)
    if condition.dtype != np.bool_:
        raise TypeError(f"where: condition must be a bool tensor; got {condition.dtype}")
    branches = [value if isinstance(value, (Tensor, bool, int, float))
                else _as_number(value) if isinstance(value, (np.integer, np.floating))
                else Tensor._make(condition.xp.asarray(_numeric(value, "where")), None) for value in (x, y)]
    dtype = dtypes.result_type(*[b.array if isinstance(b, Tensor) else b for b in branches])
    for b in branches:
        if not isinstance(b, Tensor):
            dtypes.check_fits(np.asarray(b), dtype, "where")
    x, y = (b._as_dtype(dtype) if isinstance(b, Tensor) else _scalar(b, dtype, condition.array) for b in branches)
    _check_same_device("where", (condition, x, y))
    return ops.Where.apply(x, y, condition=condition.array)


from . import ops  # last: ops subclasses Function, defined above
