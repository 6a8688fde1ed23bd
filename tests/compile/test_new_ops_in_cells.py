"""Cells whose step uses the ops a port from PyTorch brings along (F.linear, unbind, gelu, softplus,
elu, silu, leaky_relu, hardtanh, logsigmoid, log1p, expm1, erf, cumsum, remainder), compiled: each pass
equals the op-by-op graph (fused=False) in float64, gradients and gradients of gradients included,
with no warning (a cell the compiler refused would run op by op and warn)."""
import pytest

import tinygrad_rnn as tr
from tests.compile.test_exact import OPTIONS, cuda_program_on_the_cpu, kernels_as_cpp  # noqa: F401
from tests.compile.test_user_cells import assert_same, fresh_compiler, make_layer, run  # noqa: F401
from tinygrad_rnn import nn
from tinygrad_rnn.nn import functional as F


def _weight(*shape, dtype=None, device=None, scale=0.4):
    return nn.Parameter(tr.randn(*shape, dtype=dtype, device=device) * scale)


class GeluUnbindCell(nn.RecurrentCell):
    """An LSTM-like cell written with F.linear, unbind over a (B, 4, H) view, gelu and softplus."""
    state_names = ("h", "c")

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.weight_ih = _weight(4 * hidden_size, input_size, dtype=dtype, device=device)
        self.weight_hh = _weight(4 * hidden_size, hidden_size, dtype=dtype, device=device)
        self.bias = _weight(4 * hidden_size, dtype=dtype, device=device)

    @property
    def state_sizes(self):
        return (self.hidden_size, self.hidden_size)

    def step(self, x, state):
        h, c = state
        gates = F.linear(x, self.weight_ih, self.bias) + F.linear(h, self.weight_hh)
        i, f, g, o = gates.view(x.shape[0], 4, self.hidden_size).unbind(1)
        c = f.sigmoid() * c + F.softplus(i) * F.gelu(g) * 0.5
        return (o.sigmoid() * F.gelu(c, approximate="tanh"), c)


class ActivationsCell(nn.RecurrentCell):
    """One state through elu, silu, leaky_relu, hardtanh, logsigmoid, log1p, expm1 and erf."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.lin = nn.Linear(input_size + hidden_size, 2 * hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        a, b = self.lin(tr.cat([x, h], 1)).chunk(2, 1)
        mixed = F.elu(a, 0.7) + F.silu(b) * 0.3 + F.leaky_relu(a - b, 0.1) + F.logsigmoid(b) * 0.2
        squashed = F.hardtanh(mixed, -0.8, 0.9) + (b * b).log1p() * 0.1 + (a * 0.3).expm1() * 0.2
        return ((squashed * 0.7).erf() * 0.9 + h * 0.1,)


class CumsumRemainderCell(nn.RecurrentCell):
    """Running sums over the features and a remainder: ops a step can hold without a lowering of their own."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.lin = nn.Linear(input_size + hidden_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        z = self.lin(tr.cat([x, h], 1))
        return ((z.cumsum(1) * 0.3).tanh() + (z % 0.75) * 0.2,)


CELLS = {cls.__name__: cls for cls in (GeluUnbindCell, ActivationsCell, CumsumRemainderCell)}


@pytest.mark.filterwarnings("error")   # a cell that fell back op by op would warn
@pytest.mark.parametrize("options", ["one_layer", "stacked_bidirectional_lengths_hx"])
@pytest.mark.parametrize("name", list(CELLS))
def test_compiled_pass_equals_op_by_op(name, options):
    opts = OPTIONS[options]
    expected, none = run(make_layer(CELLS[name], False, opts), opts)
    got, passes = run(make_layer(CELLS[name], True, opts), opts)
    assert none == 0 and passes >= 1
    assert_same(got, expected)


@pytest.mark.filterwarnings("error")
@pytest.mark.usefixtures("cuda_program_on_the_cpu")
@pytest.mark.parametrize("name", list(CELLS))
def test_generated_cuda_kernels_equal_op_by_op(name):
    options = OPTIONS["stacked_bidirectional_lengths_hx"]
    expected, _ = run(make_layer(CELLS[name], False, options), options)
    got, passes = run(make_layer(CELLS[name], True, options), options)
    assert passes == 4
    assert_same(got, expected)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", list(CELLS))
def test_gradients_of_gradients_equal_op_by_op(name):
    options = OPTIONS["checkpoint_reverse_lengths"]
    expected, _ = run(make_layer(CELLS[name], False, options), options, create_graph=True)
    got, passes = run(make_layer(CELLS[name], True, options), options, create_graph=True)
    assert passes == 2
    assert_same(got, expected, atol=1e-10, rtol=1e-12)
