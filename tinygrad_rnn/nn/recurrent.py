"""Sequence layers: any cell run over time, in stacked layers, in one or both directions.

`Recurrent` is the generic driver: give it a cell type and it builds one cell per (layer,
direction), names their parameters as PyTorch does (`weight_ih_l0`, `weight_hh_l1_reverse`, ...),
handles batch_first, unbatched input, initial states, dropout between layers and variable
lengths without packing. `RNN`, `LSTM` and `GRU` are `Recurrent` with PyTorch's cells and
constructor arguments.

Each step is recorded inside the scopes of vocabulary.py, (layer, k), (direction, forward or
reverse), (t, t), so a drawing can cluster the unrolled graph and fold it back.

The op-by-op path multiplies each step's own input, so the recorded graph shows x(t) entering
every cell as the lecture draws it; the fused path (`fused.py`) projects all steps in one product.
"""
import contextlib
import inspect
import warnings

import numpy as np

from .. import vocabulary as V
from ..tensor import Tensor, cat, forward_mode_active, scope, stack, where
from . import functional as F
from . import init
from .cells import GRUCell, LSTMCell, RecurrentCell, RNNCell, step_states
from .checks import (
    InputError,
    check_flag,
    check_int,
    check_last_dim,
    check_lengths,
    check_matches_parameters,
    check_probability,
    check_sizes,
    check_states,
    check_tensor,
    padding_mask,
)
from .module import Module, Parameter
from .utils.parametrize import type_before_parametrizations
from .utils.rnn import PackedSequence, run_packed

# cell type -> (run, accepts); see register_fused
_FUSED = {}


def register_fused(cell_type, run, accepts=None):
    """Install a whole-sequence implementation of one (layer, direction) pass for `cell_type`.

    Layers built with fused=True hand each pass to `run(cell, x, state, lengths, reverse)`:
    x (T, B, F) Tensor in time order; state a tuple of (B, size) tensors in `cell.state_sizes`
    order; lengths a host int64 array (B,) or None; reverse whether to run from each sequence's
    last step to its first. It returns (output (T, B, state_sizes[0]) with zeros at padded steps,
    final state tuple), with gradients flowing to x, the state and the cell's parameters.
    `accepts(cell) -> bool` says which configurations it handles (all when None); a layer asked
    for fused=True with a cell it does not accept refuses at construction. A registration covers
    subclasses without one of their own (the step compiler registers for every Module).
    """
    _FUSED[cell_type] = (run, accepts or (lambda cell: True))


def _registered(cell_type):
    """(run, accepts) for cell_type or its nearest base class with a registration, or None."""
    return next((_FUSED[base] for base in cell_type.__mro__ if base in _FUSED), None)


def _step_function(cell):
    """(x_t, state tuple) -> state tuple for any cell; RecurrentCell steps skip the call's checks. A
    step that returns its one state as a tensor (or a list) is read as a tuple."""
    if isinstance(cell, RecurrentCell):
        call = cell.step
    else:
        def call(x, state):
            return cell(x, state[0] if len(state) == 1 else state)

    def step(x, state):
        return step_states(cell, call(x, state), len(state))
    return step


def run_cell(cell, seq, state, lengths=None, reverse=False):
    """One (layer, direction) pass, op by op. Returns (outputs: a list of T tensors, final state).

    seq: anything indexed by time step (a list of (B, F) tensors or a (T, B, F) tensor). With
    lengths, sequence b is read over its steps 0 .. lengths[b]-1 only: at a padded step the state
    is kept and the output is zero, so the forward pass ends at each sequence's last step and the
    reverse pass starts there. What the input holds at padded steps has no effect at all, NaN
    and Inf included: it is replaced (selected away, never multiplied by zero) before the step.
    """
    with getattr(cell, "unrolled", contextlib.nullcontext)():
        return run_steps(_step_function(cell), V.state_names(cell), seq, state, lengths, reverse)


def run_steps(step, names, seq, state, lengths=None, reverse=False):
    """run_cell for a step function `step(x_t, state tuple) -> state tuple` whose states are named
    `names`: each step recorded in its time scope, x(t) and the new states named."""
    steps = len(seq)
    inside = padding_mask(lengths, steps)
    masked_from = steps if inside is None else int(lengths.min())
    if inside is not None:
        keep_all = state[0].xp.asarray(inside)

    def kept(t, like):  # (B, 1, ...): which sequences still run at step t
        return keep_all[t].reshape(keep_all[t].shape + (1,) * (like.ndim - 1))

    outputs = [None] * steps
    for t in (reversed(range(steps)) if reverse else range(steps)):
        with scope(V.STEP, t):
            x_t = seq[t]
            if x_t.name is None:
                x_t.named(V.INPUT)
            if t >= masked_from:
                x_t = where(kept(t, x_t), x_t, 0.0)
            new = step(x_t, state)
            if t >= masked_from:  # some sequences have ended: they keep their state, output zero
                for s, name in zip(new, names):
                    if s.name == name:
                        s.named(f"{name}_candidate")
                new = tuple(where(kept(t, s), s, old).named(name) for s, old, name in zip(new, state, names))
                outputs[t] = where(kept(t, new[0]), new[0], 0.0)
            else:
                outputs[t] = new[0]
            state = new
    return outputs, state


def _as_tensor(seq, time_dim=0):
    """A sequence (list of steps or (T, B, F) tensor) as one tensor with time on time_dim."""
    if isinstance(seq, list):
        return stack(seq, dim=time_dim)
    return seq if time_dim == 0 else seq.transpose(0, time_dim)


def _per_step(seq, fn):
    """fn applied to each step of a list (in its own time scope), or once to a whole tensor."""
    if not isinstance(seq, list):
        return fn(seq)
    out = []
    for t, s in enumerate(seq):
        with scope(V.STEP, t):
            out.append(fn(s))
    return out


def _join_directions(outputs):
    """Forward and reverse outputs side by side on the feature axis, as the next layer reads them."""
    if len(outputs) == 1:
        return outputs[0]
    if all(isinstance(o, list) for o in outputs):
        return _per_step(list(zip(*outputs)), lambda pair: cat(list(pair), dim=-1))
    return cat([_as_tensor(o) for o in outputs], dim=-1)


def _takes(constructor, name):
    """Whether a constructor takes the keyword `name` (by name or through **kwargs)."""
    try:
        parameters = inspect.signature(constructor).parameters.values()
    except (TypeError, ValueError):   # no signature to read: pass it and let the call say
        return True
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _make_cell(cell_type, input_size, hidden_size, device, dtype, options):
    """cell_type(input_size, hidden_size, **options), made on `device` with `dtype`: passed to the
    constructor where it takes them (as the built-in cells do), else the cell is moved after, so a cell
    written as `__init__(self, input_size, hidden_size)` works too."""
    given = {name: value for name, value in (("device", device), ("dtype", dtype))
             if value is not None and _takes(cell_type, name)}
    cell = cell_type(input_size, hidden_size, **given, **options)
    for name, value in (("device", device), ("dtype", dtype)):
        if value is not None and name not in given:
            cell.to(**{name: value})
    return cell


class Recurrent(Module):
    """Any cell over a sequence: layers, directions, batch_first, initial states, lengths, dropout.

    `Recurrent(cell_type, input_size, hidden_size, num_layers=1, batch_first=False, dropout=0.0,
    bidirectional=False, fused=None, device=None, dtype=None, checkpoint_every=None, **cell_options)` builds
    `cell_type(input_size_of_layer, hidden_size, device=, dtype=, **cell_options)` per (layer,
    direction). A cell is any Module with `state_sizes` (feature size of each state tensor, the
    first being the step's output) and `forward(x_t, state) -> state` (one tensor, or a tuple when
    there are several states); `RecurrentCell` subclasses are the usual way.

    forward(input, hx=None, lengths=None) -> (output, h_n), as PyTorch's layers:
      input (T, B, I), or (B, T, I) with batch_first, or unbatched (T, I);
      hx: initial states (num_layers * directions, B, size) (a tuple when the cell has several);
      lengths: (B,) ints in [1, T]: sequence b ends after lengths[b] steps. Padded outputs are zero
        and h_n holds each sequence's state at its own last step (the reverse direction starts there);
      output: (T, B, directions * state_sizes[0]); h_n stacked (num_layers * directions, B, size).

    fused=True hands each (layer, direction) pass to the whole-sequence implementation installed
    with `register_fused` for the cell type (one node in the graph, hand-written BPTT: the training
    path); fused=False runs the op-by-op graph that shows every gate (the path for pictures and
    diagnostics). The default, None, takes the fused path wherever one accepts the configuration.
    checkpoint_every=k (fused path) keeps every k-th state and recomputes the rest in backward.
    """

    def __init__(self, cell_type, input_size, hidden_size, num_layers=1, batch_first=False, dropout=0.0,
                 bidirectional=False, fused=None, device=None, dtype=None, checkpoint_every=None,
                 **cell_options):
        super().__init__()
        input_size, hidden_size = check_sizes(input_size, hidden_size)
        num_layers = check_int("num_layers", num_layers)
        dropout = check_probability("dropout", dropout)
        batch_first = check_flag("batch_first", batch_first)
        bidirectional = check_flag("bidirectional", bidirectional)
        if fused is not None:
            fused = check_flag("fused", fused)
        if checkpoint_every is not None:
            checkpoint_every = check_int("checkpoint_every", checkpoint_every)
        if fused and _registered(cell_type) is None:
            raise ValueError(f"fused=True: no fused implementation is registered for {cell_type.__name__} "
                             f"(register one with tinygrad_rnn.nn.register_fused)")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero "
                          f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                          f"num_layers={num_layers}", stacklevel=2)
        self.cell_type, self.input_size, self.hidden_size = cell_type, input_size, hidden_size
        self.num_layers, self.batch_first, self.dropout = num_layers, batch_first, dropout
        self.bidirectional, self.checkpoint_every = bidirectional, checkpoint_every
        self.num_directions = 2 if bidirectional else 1
        # The layer owns the parameters under PyTorch's flat names; the cells that run the steps are
        # not submodules (state_dict has no cell keys) and see whatever Parameter a name holds now.
        cells, bindings = [], {}
        object.__setattr__(self, "_cells", cells)  # [layer][direction]
        object.__setattr__(self, "_bindings", bindings)  # flat name -> (module inside a cell, attribute)
        layer_input = input_size
        for layer in range(num_layers):
            row = []
            for direction in range(self.num_directions):
                cell = _make_cell(cell_type, layer_input, hidden_size, device, dtype, cell_options)
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                for name, p in list(cell.named_parameters()):
                    path, _, attribute = name.rpartition(".")
                    flat = name.replace(".", "_") + suffix
                    bindings[flat] = (cell.get_submodule(path), attribute)
                    setattr(self, flat, p)
                    p.name = flat
                row.append(cell)
            cells.append(row)
            layer_input = row[0].state_sizes[0] * self.num_directions
        if fused is None:
            fused = _registered(cell_type) is not None and _registered(cell_type)[1](self._cells[0][0])
        self.fused = fused
        if checkpoint_every is not None and not fused:
            raise ValueError("checkpoint_every needs the fused path (fused=True)")
        if fused and not _registered(cell_type)[1](self._cells[0][0]):
            raise ValueError(f"fused=True: the fused implementation for {cell_type.__name__} does not handle "
                             f"{self._cells[0][0]!r}; use fused=False")

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if value is not None and not isinstance(value, Parameter):  # parameters bind as they register
            self._bind(name, value)

    def register_parameter(self, name, param):
        super().register_parameter(name, param)
        self._bind(name, param)

    def _bind(self, name, value):
        """The cell behind flat name `name` runs with `value`: a new Parameter (weight tying, surgery,
        remove_parametrizations) or a tensor computed from others (weight_norm's hook, a parametrization)."""
        binding = self.__dict__.get("_bindings", {}).get(name)
        if binding is None:
            return
        module, attribute = binding
        if value is None or isinstance(value, Parameter):
            setattr(module, attribute, value)
        else:
            module.swap_tensor(attribute, value)

    def _bind_parametrized(self):
        """Each parametrized weight computed now and handed to its cell, as torch's layers read their
        weights afresh in every forward."""
        for name in self._modules["parametrizations"]._modules:
            self._bind(name, getattr(self, name))

    def swap_tensor(self, name, value):
        previous = super().swap_tensor(name, value)
        binding = self._bindings.get(name)
        if binding is not None:
            module, attribute = binding
            module.swap_tensor(attribute, value)
        return previous

    def train(self, mode=True):
        super().train(mode)
        for row in self._cells:
            for cell in row:
                cell.train(mode)
        return self

    def _apply(self, convert):
        super()._apply(convert)
        for row in self._cells:
            for cell in row:
                cell._apply(convert)  # buffers a cell may hold; the parameters are the layer's own
        return self

    @property
    def state_sizes(self):
        return tuple(self._cells[0][0].state_sizes)

    # --- the seam: one (layer, direction) pass
    def _run_direction(self, cell, seq, state, lengths, reverse):
        """One (layer, direction) pass over the whole sequence: (outputs, final state tuple).

        The op-by-op path works on a list of steps; a registered fused implementation gets the
        sequence as one (T, B, F) tensor and returns one.
        """
        if self.fused and not forward_mode_active():  # a fused pass has no tangent rule: jvp runs op by op
            run, _ = _registered(type(cell))
            extra = {"checkpoint_every": self.checkpoint_every} if self.checkpoint_every else {}
            return run(cell, _as_tensor(seq), state, lengths, reverse, **extra)
        return run_cell(cell, seq, state, lengths, reverse)

    def forward(self, input, hx=None, lengths=None):
        if "parametrizations" in self._modules:
            self._bind_parametrized()
        if isinstance(input, PackedSequence):  # PyTorch's packed input: its padded batch with its lengths
            return run_packed(self, input, hx, lengths)
        name = type(self).__name__
        check_tensor(name, "input", input)
        if input.ndim not in (2, 3):
            raise InputError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D tensor instead "
                             f"(shape {tuple(input.shape)})")
        check_matches_parameters(name, input, self._reference_parameter())
        check_last_dim(name, input, self.input_size, "input_size")
        batched = input.ndim == 3
        if not batched:
            x = input.unsqueeze(1)
        else:
            x = input.transpose(0, 1) if self.batch_first else input
        steps, batch = x.shape[0], x.shape[1]
        if steps == 0:
            raise InputError(f"{name}: input has no time steps (shape {tuple(input.shape)})")
        if not batched and lengths is not None:  # an unbatched sequence may give its length as a number
            values = lengths.array if isinstance(lengths, Tensor) else lengths
            lengths = values.reshape(1) if hasattr(values, "reshape") else np.reshape(values, 1)
        lengths = check_lengths(name, lengths, steps, batch)
        initial = self._check_hx(hx, batch, batched, input)

        seq, finals = x, []
        for layer, cells in enumerate(self._cells):
            with scope(V.LAYER, layer):
                if layer and self.dropout and self.training:
                    seq = _per_step(seq, lambda s: F.dropout(s, self.dropout, True).named(V.INPUT))
                outputs = []
                for direction, cell in enumerate(cells):
                    with scope(V.DIRECTION, V.DIRECTIONS[direction]):
                        state = self._initial_state(cell, initial, layer * self.num_directions + direction,
                                                    batch, x)
                        out, final = self._run_direction(cell, seq, state, lengths, reverse=direction == 1)
                    outputs.append(out)
                    finals.append(final)
                seq = _join_directions(outputs)

        output = _as_tensor(seq, time_dim=1 if self.batch_first and batched else 0)
        states = [stack([f[k] for f in finals]) for k in range(len(self.state_sizes))]
        if not batched:
            output = output.squeeze(1)
            states = [s.squeeze(1) for s in states]
        output.named(V.OUTPUT)
        states = tuple(s.named(V.final(n)) for s, n in zip(states, V.state_names(self._cells[0][0])))
        return output, states[0] if len(states) == 1 else states

    # --- argument checks
    def flatten_parameters(self):
        """Does nothing: torch packs cuDNN's weights into one buffer here; every pass reads the parameters."""

    @property
    def _all_weights(self):
        """The parameter names of each layer and direction, in torch's order ([layer 0 forward, layer 0
        reverse, layer 1 forward, ...])."""
        return [[flat for flat, (module, attribute) in self._bindings.items()
                 if flat.endswith(f"_l{layer}" + ("_reverse" if direction else ""))]
                for layer in range(self.num_layers) for direction in range(self.num_directions)]

    @property
    def all_weights(self):
        """The parameters of each layer and direction, as torch's all_weights."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def _reference_parameter(self):
        return next(self.parameters())

    def _check_hx(self, hx, batch, batched, input):
        """The given initial states as (L*D, B, size) tensors, or None."""
        sizes, names = self.state_sizes, V.state_names(self._cells[0][0])
        states = check_states(type(self).__name__, hx, [n + "0" for n in names])
        if states is None:
            return None
        stacked = self.num_layers * self.num_directions
        checked = []
        for k, (state, size) in enumerate(zip(states, sizes)):
            expected = (stacked, batch, size) if batched else (stacked, size)
            if tuple(state.shape) != expected:
                which = "" if len(sizes) == 1 else f"[{k}]"
                raise InputError(f"{type(self).__name__}: Expected hidden{which} size {expected}, got "
                                 f"{list(state.shape)} (input shape {tuple(input.shape)})")
            check_matches_parameters(type(self).__name__, state, self._reference_parameter())
            checked.append(state if batched else state.unsqueeze(1))
        return checked

    def _initial_state(self, cell, initial, index, batch, x):
        if initial is not None:
            return tuple(s[index] for s in initial)
        return tuple(init.zeros_like_state(batch, size, x).named(f"{n}0")
                     for n, size in zip(V.state_names(cell), cell.state_sizes))

    def extra_repr(self):
        """PyTorch's (arguments that differ from their defaults, in its order), then ours."""
        cell = self._cells[0][0]
        extra = [] if type_before_parametrizations(self) in (RNN, LSTM, GRU) else [self.cell_type.__name__]
        extra.append(f"{self.input_size}, {self.hidden_size}")
        if getattr(self, "proj_size", 0):
            extra.append(f"proj_size={self.proj_size}")
        for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False)):
            if getattr(self, name, default) != default:
                extra.append(f"{name}={getattr(self, name)}")
        default_fused = _registered(self.cell_type) is not None and _registered(self.cell_type)[1](cell)
        if self.fused != default_fused:
            extra.append(f"fused={self.fused}")
        for name, default in (("checkpoint_every", None),):
            if getattr(self, name) != default:
                extra.append(f"{name}={getattr(self, name)}")
        for name, default in (("reset_after", True), ("forget_bias", None), ("recurrent_init", "uniform")):
            if getattr(cell, name, default) != default:
                extra.append(f"{name}={getattr(cell, name)!r}")
        return ", ".join(extra)


def _no_proj_size(proj_size):
    if proj_size is not None:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")


class RNNBase(Module):
    """torch's base class of RNN, LSTM and GRU, here a marker only (the layers are built on Recurrent),
    so that isinstance checks of code written for torch hold."""


class RNN(Recurrent, RNNBase):
    """Elman RNN layers, torch.nn.RNN's arguments: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    Extras: recurrent_init ("uniform", "orthogonal", or "identity" = IRNN with nonlinearity="relu"),
    fused, and forward's lengths.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None, *,
                 recurrent_init="uniform", fused=None, checkpoint_every=None, proj_size=None):
        _no_proj_size(proj_size)
        super().__init__(RNNCell, input_size, hidden_size, num_layers, batch_first, dropout, bidirectional,
                         fused, device, dtype, checkpoint_every, bias=bias, nonlinearity=nonlinearity,
                         recurrent_init=recurrent_init)
        self.nonlinearity, self.bias = nonlinearity, bias


class LSTM(Recurrent, RNNBase):
    """LSTM layers, torch.nn.LSTM's arguments, proj_size included: forward(x, (h0, c0)) -> (output, (h_n, c_n)).

    Extras: forget_bias (a number: the forget gate's total bias starts there), recurrent_init
    ("uniform" or "orthogonal"), fused, and forward's lengths.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None, *, forget_bias=None,
                 recurrent_init="uniform", fused=None, checkpoint_every=None):
        super().__init__(LSTMCell, input_size, hidden_size, num_layers, batch_first, dropout, bidirectional,
                         fused, device, dtype, checkpoint_every, bias=bias, proj_size=proj_size, forget_bias=forget_bias,
                         recurrent_init=recurrent_init)
        self.bias, self.proj_size = bias, proj_size


class GRU(Recurrent, RNNBase):
    """GRU layers, torch.nn.GRU's arguments (gates r, z, n).

    Extras: reset_after=False (n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)), recurrent_init,
    fused, and forward's lengths.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, reset_after=True, recurrent_init="uniform",
                 fused=None, checkpoint_every=None, proj_size=None):
        _no_proj_size(proj_size)
        super().__init__(GRUCell, input_size, hidden_size, num_layers, batch_first, dropout, bidirectional,
                         fused, device, dtype, checkpoint_every, bias=bias, reset_after=reset_after, recurrent_init=recurrent_init)
        self.bias, self.reset_after = bias, reset_after


def _register_builtin_fused():
    from . import fused  # imports the cells lazily and never this module: no import cycle
    for cell_type in (RNNCell, LSTMCell, GRUCell):
        register_fused(cell_type, fused.fused_run, fused.accepts)
    from ..compile import drive  # every other cell: compiled from its composed step
    drive.register()


_register_builtin_fused()
