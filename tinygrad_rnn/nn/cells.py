"""Recurrent cells composed from primitives, so the graph of a step shows each gate as its ops.

PyTorch's parameter names, shapes, gate order (LSTM i,f,g,o; GRU r,z,n), equations and
initialisation U(-1/sqrt(H), 1/sqrt(H)). A cell maps (x_t, state) -> state; the sequence layers in
`recurrent.py` run any such cell over time, layers and directions.
"""
import contextlib
import math

from .. import vocabulary as V
from ..tensor import Tensor
from . import init
from .checks import (
    InputError,
    check_flag,
    check_last_dim,
    check_matches_parameters,
    check_proj_size,
    check_sizes,
    check_states,
    check_tensor,
)
from .module import Module
from .normalization import LayerNorm

RECURRENT_INITS = ("uniform", "orthogonal", "identity")
NONLINEARITIES = {"tanh": Tensor.tanh, "relu": Tensor.relu}


def _affine(x, weight_t, bias):
    y = x @ weight_t
    return y if bias is None else y + bias


def _activated_gates(pre, names, activations):
    """Split stacked pre-activations into gates, activate each and name it (i, f, g, o, ...)."""
    return [act(part).named(name) for part, name, act in zip(pre.chunk(len(names), 1), names, activations)]


def step_states(cell, new, count):
    """What a cell's step returned, as a tuple of its `count` states: one tensor is read as a tuple of one;
    another number of states, or anything not a tensor, is refused naming the cell and its states."""
    returned = new
    new = (new,) if isinstance(new, Tensor) else tuple(new) if isinstance(new, (tuple, list)) else None
    if new is not None and len(new) == count and all(isinstance(s, Tensor) for s in new):
        return new
    names = V.state_names(cell)
    what = (f"a {type(returned).__name__}" if new is None else
            f"{len(new)}: " + ", ".join(f"shape {tuple(s.shape)}" if isinstance(s, Tensor) else type(s).__name__
                                        for s in new))
    raise InputError(f"{type(cell).__name__}: its step must return {count} state(s) ({', '.join(names)}) as "
                     f"tensors, in state_sizes order; it returned {what}")


class RecurrentCell(Module):
    """Base of the cells: one step `(x_t, state) -> state`, called like PyTorch's cells.

    A subclass sets `state_sizes` (the feature size of each state tensor; the first state is the
    step's output) and `state_names`, and defines `step(x, state)` on a batched x (B, input_size)
    and a tuple of states (B, size). Calling the cell accepts what PyTorch's cells accept:
    unbatched input (input_size,), and the state as one tensor or a tuple (LSTM's (h, c)), zeros
    when omitted.
    """
    state_names = (V.HIDDEN,)
    _constants = None

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = check_sizes(input_size, hidden_size)

    @property
    def state_sizes(self):
        return (self.hidden_size,)

    def step(self, x, state):
        raise NotImplementedError(f"{type(self).__name__} does not define step(x, state)")

    def step_constants(self):
        """Tensors every step uses that depend on the parameters alone, by name: each 2-D
        parameter transposed, {"weight_ih": weight_ih.T, ...}; subclasses may add to it."""
        return {name: p.T for name, p in self._parameters.items() if p is not None and p.ndim == 2}

    def constants(self):
        """`step_constants()`, recorded once per pass inside `unrolled()`, else now."""
        return self._constants if self._constants is not None else self.step_constants()

    @contextlib.contextmanager
    def unrolled(self):
        """Steps run inside share one recording of `step_constants()` (the sequence layers use it).

        A step multiplies by W.T. With W.T recorded in every step, each step's weight gradient is
        added into W through a transposed view, a strided add many times slower than a contiguous
        one; recorded once, the steps' gradients add up in W.T's layout and turn around once.
        """
        self._constants = self.step_constants()
        try:
            yield
        finally:
            self._constants = None

    def forward(self, input, hx=None):
        name = type(self).__name__
        check_tensor(name, "input", input)
        if input.ndim not in (1, 2):
            raise InputError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead "
                             f"(shape {tuple(input.shape)})")
        check_matches_parameters(name, input, next(self.parameters()))
        check_last_dim(name, input, self.input_size, "input_size")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        state = self._check_state(hx, x, batched)
        new = step_states(self, self.step(x, state), len(state))
        if not batched:
            new = tuple(s.squeeze(0) for s in new)
        return new[0] if len(new) == 1 else new

    def _check_state(self, hx, x, batched):
        """The state as a tuple of (B, size) tensors: zeros when hx is None, else hx checked."""
        batch, sizes = x.shape[0], self.state_sizes
        if hx is None:
            return tuple(init.zeros_like_state(batch, size, x).named(f"{n}0")
                         for n, size in zip(self.state_names, sizes))
        states = check_states(type(self).__name__, hx, self.state_names)
        expected = [(batch, size) if batched else (size,) for size in sizes]
        for k, (state, shape) in enumerate(zip(states, expected)):
            if tuple(state.shape) != shape:
                raise InputError(f"{type(self).__name__}: Expected hx[{k}] ({self.state_names[k]}) of "
                                 f"shape {shape} for input of shape {tuple(x.shape if batched else x.shape[1:])},"
                                 f" got {tuple(state.shape)}")
            check_matches_parameters(type(self).__name__, state, next(self.parameters()))
        return states if batched else tuple(s.unsqueeze(0) for s in states)


class RNNCellBase(Module):
    """torch's base class of RNNCell, LSTMCell and GRUCell, here a marker only (the cells are built on
    RecurrentCell), so that isinstance checks of code written for torch hold."""


class GatedCell(RecurrentCell):
    """Cells with PyTorch's weight_ih (G*H, I), weight_hh (G*H, R), bias_ih and bias_hh (G*H,).

    recurrent_init: "uniform" (PyTorch's), "orthogonal" (each gate's block of weight_hh
    orthogonal, Saxe et al. 2014) or "identity" (each gate's block the identity and all biases
    zero: the IRNN of Le et al. 2015 when used with nonlinearity="relu").
    """
    n_gates = 1

    def __init__(self, input_size, hidden_size, bias=True, recurrent_size=None, recurrent_init="uniform",
                 device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        bias = check_flag("bias", bias)
        if recurrent_init not in RECURRENT_INITS:
            raise ValueError(f"recurrent_init must be one of {RECURRENT_INITS}; got {recurrent_init!r}")
        self.bias, self.recurrent_init = bias, recurrent_init
        rows = self.n_gates * self.hidden_size
        self.weight_ih = init.parameter(rows, self.input_size, dtype=dtype, device=device)
        self.weight_hh = init.parameter(rows, recurrent_size or self.hidden_size, dtype=dtype, device=device)
        for name in ("bias_ih", "bias_hh"):
            self.register_parameter(name, init.parameter(rows, dtype=dtype, device=device) if bias else None)

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self._parameters.values():
            if p is not None:
                init.uniform_(p, -bound, bound)
        if self.recurrent_init == "orthogonal":
            init.per_gate(init.orthogonal_, self.weight_hh, self.n_gates)
        elif self.recurrent_init == "identity":
            init.per_gate(init.eye_, self.weight_hh, self.n_gates)
            for b in (self.bias_ih, self.bias_hh):
                if b is not None:
                    init.zeros_(b)

    def extra_repr(self):
        """PyTorch's text ("2, 3, bias=False, nonlinearity=relu"), then the options PyTorch lacks."""
        parts = [f"{self.input_size}, {self.hidden_size}"] + ([] if self.bias else ["bias=False"])
        parts += self._options_repr()
        if self.recurrent_init != "uniform":
            parts.append(f"recurrent_init={self.recurrent_init!r}")
        return ", ".join(parts)

    def _options_repr(self):
        """The subclass's own arguments that differ from their defaults, as "name=value" strings."""
        return []


class RNNCell(GatedCell, RNNCellBase):
    """Elman cell: h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None, *,
                 recurrent_init="uniform"):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(input_size, hidden_size, bias, recurrent_init=recurrent_init, device=device,
                         dtype=dtype)
        self.nonlinearity = nonlinearity
        self.reset_parameters()

    def step(self, x, state):
        h, = state
        w = self.constants()
        pre = _affine(x, w["weight_ih"], self.bias_ih) + _affine(h, w["weight_hh"], self.bias_hh)
        return (NONLINEARITIES[self.nonlinearity](pre).named(V.HIDDEN),)

    def _options_repr(self):
        return [] if self.nonlinearity == "tanh" else [f"nonlinearity={self.nonlinearity}"]


def _set_forget_bias(bias, hidden_size, value, other=None):
    """Forget-gate block (the second of i,f,g,o) of `bias` set to value, of `other` to zero."""
    forget = slice(hidden_size, 2 * hidden_size)
    init.constant_(Tensor._make(bias.array[forget], None), value)
    if other is not None:
        init.zeros_(Tensor._make(other.array[forget], None))


class LSTMCell(GatedCell, RNNCellBase):
    """LSTM cell, gates i, f, g, o:  c' = f*c + i*g,  h' = o*tanh(c')  (then W_hr h' if proj_size).

    Beyond PyTorch's LSTMCell: proj_size (as in torch.nn.LSTM, weight_hr (proj_size, H), and h of
    size proj_size), forget_bias (a number: the forget gate's total bias starts there, Jozefowicz
    et al. 2015), recurrent_init (see GatedCell).
    """
    n_gates = 4
    state_names = V.BUILT_IN_STATES
    gate_names = ("i", "f", "g", "o")
    gate_activations = (Tensor.sigmoid, Tensor.sigmoid, Tensor.tanh, Tensor.sigmoid)

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, *, proj_size=0,
                 forget_bias=None, recurrent_init="uniform"):
        input_size, hidden_size = check_sizes(input_size, hidden_size)
        proj_size = check_proj_size(proj_size, hidden_size)
        if forget_bias is not None and not bias:
            raise ValueError("forget_bias needs bias=True")
        super().__init__(input_size, hidden_size, bias, recurrent_size=proj_size or hidden_size,
                         recurrent_init=recurrent_init, device=device, dtype=dtype)
        self.proj_size, self.forget_bias = proj_size, forget_bias
        self.register_parameter("weight_hr", init.parameter(proj_size, hidden_size, dtype=dtype, device=device)
                                if proj_size else None)
        self.reset_parameters()

    @property
    def state_sizes(self):
        return (self.proj_size or self.hidden_size, self.hidden_size)

    def reset_parameters(self):
        super().reset_parameters()
        if self.forget_bias is not None:
            _set_forget_bias(self.bias_ih, self.hidden_size, self.forget_bias, other=self.bias_hh)

    def step(self, x, state):
        h, c = state
        w = self.constants()
        pre = _affine(x, w["weight_ih"], self.bias_ih) + _affine(h, w["weight_hh"], self.bias_hh)
        i, f, g, o = _activated_gates(pre, self.gate_names, self.gate_activations)
        c = (f * c + i * g).named(V.CELL)
        h = o * c.tanh()
        if self.weight_hr is not None:
            h = h @ w["weight_hr"]
        return h.named(V.HIDDEN), c

    def _options_repr(self):
        return [f"proj_size={self.proj_size}"] * bool(self.proj_size) + \
            [f"forget_bias={self.forget_bias}"] * (self.forget_bias is not None)


class GRUCell(GatedCell, RNNCellBase):
    """GRU cell, gates r, z, n:  h' = (1 - z) * n + z * h.

    reset_after=True (PyTorch's, and cuDNN's):  n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
    reset_after=False (the reset applied before the product):  n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).
    """
    n_gates = 3

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, *, reset_after=True,
                 recurrent_init="uniform"):
        super().__init__(input_size, hidden_size, bias, recurrent_init=recurrent_init, device=device,
                         dtype=dtype)
        self.reset_after = reset_after
        self.reset_parameters()

    def step_constants(self):
        constants = super().step_constants()
        if not self.reset_after:  # the reset gate acts on h before the W_hn product: split that block off
            two = 2 * self.hidden_size
            weight_t = constants["weight_hh"]
            constants["weight_hh_rz"], constants["weight_hh_n"] = weight_t[:, :two], weight_t[:, two:]
            bias = self.bias_hh
            constants["bias_hh_rz"], constants["bias_hh_n"] = (None, None) if bias is None else (bias[:two],
                                                                                                 bias[two:])
        return constants

    def step(self, x, state):
        h, = state
        w = self.constants()
        x_r, x_z, x_n = _affine(x, w["weight_ih"], self.bias_ih).chunk(3, 1)
        if self.reset_after:
            h_r, h_z, h_n = _affine(h, w["weight_hh"], self.bias_hh).chunk(3, 1)
        else:
            h_r, h_z = _affine(h, w["weight_hh_rz"], w["bias_hh_rz"]).chunk(2, 1)
        r = (x_r + h_r).sigmoid().named("r")
        z = (x_z + h_z).sigmoid().named("z")
        recurrent_n = r * h_n if self.reset_after else _affine(r * h, w["weight_hh_n"], w["bias_hh_n"])
        n = (x_n + recurrent_n).tanh().named("n")
        return (((1 - z) * n + z * h).named(V.HIDDEN),)

    def _options_repr(self):
        return [] if self.reset_after else ["reset_after=False"]


class LayerNormLSTMCell(GatedCell):
    """LSTM with layer normalisation (Ba et al. 2016) on the gate pre-activations and the cell state.

        i, f, g, o = act(LN_gates(W_ih x + W_hh h))      (LN_gates' shift is the gate bias)
        c' = f*c + i*g,   h' = o * tanh(LN_cell(c'))

    Parameters weight_ih (4H, I), weight_hh (4H, H), norm_gates (LayerNorm(4H)) and norm_cell
    (LayerNorm(H)); forget_bias and recurrent_init as in LSTMCell.
    """
    n_gates = 4
    state_names = LSTMCell.state_names

    def __init__(self, input_size, hidden_size, device=None, dtype=None, *, forget_bias=None,
                 recurrent_init="uniform", eps=1e-5):
        super().__init__(input_size, hidden_size, bias=False, recurrent_init=recurrent_init, device=device,
                         dtype=dtype)
        self.norm_gates = LayerNorm(4 * hidden_size, eps=eps, device=device, dtype=dtype)
        self.norm_cell = LayerNorm(hidden_size, eps=eps, device=device, dtype=dtype)
        self.forget_bias = forget_bias
        self.reset_parameters()

    @property
    def state_sizes(self):
        return (self.hidden_size, self.hidden_size)

    def reset_parameters(self):
        super().reset_parameters()
        self.norm_gates.reset_parameters()
        self.norm_cell.reset_parameters()
        if self.forget_bias is not None:
            _set_forget_bias(self.norm_gates.bias, self.hidden_size, self.forget_bias)

    def extra_repr(self):
        """Its submodules norm_gates and norm_cell follow on their own lines."""
        parts = [f"{self.input_size}, {self.hidden_size}"] + \
            [f"forget_bias={self.forget_bias}"] * (self.forget_bias is not None)
        if self.recurrent_init != "uniform":
            parts.append(f"recurrent_init={self.recurrent_init!r}")
        return ", ".join(parts)

    def step(self, x, state):
        h, c = state
        w = self.constants()
        pre = self.norm_gates(x @ w["weight_ih"] + h @ w["weight_hh"])
        i, f, g, o = _activated_gates(pre, LSTMCell.gate_names, LSTMCell.gate_activations)
        c = (f * c + i * g).named(V.CELL)
        h = o * self.norm_cell(c).tanh()
        return h.named(V.HIDDEN), c
