"""Cells compiled by the step compiler beside the built-in layers and PyTorch, in one run.

float32, one layer over a full sequence, loss = sum(output * dy), backward to every parameter and
the input; medians of runs taken round-robin, printed with ratios measured in the same run:

  custom cells   a cell written from primitives in a few lines (the lecture's LSTM, LayerNormLSTMCell)
                 compiled, beside the built-in LSTM (its hand-written pass), torch.nn.LSTM and the
                 same cell in PyTorch eager (a Python loop over torch ops)
  built-ins      RNN, LSTM and GRU compiled from their composed cells beside their hand-written passes
  compile time   the seconds each structure took to trace, plan and generate (cached afterwards)

    python bench/bench_compiled.py               # one thread for OpenBLAS and torch (the default)
    python bench/bench_compiled.py --threads 0   # every thread
    python bench/bench_compiled.py --quick       # the smaller config only
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIGS = [(32, 128, 128, 50), (64, 256, 256, 100)]
BUILT_INS = {"lstm": ("LSTM", "LSTMCell"), "gru": ("GRU", "GRUCell"), "rnn": ("RNN", "RNNCell")}


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for OpenBLAS and torch (0: as-is)")
    parser.add_argument("--quick", action="store_true", help="the smaller config only")
    parser.add_argument("--repeats", type=int, default=7)
    return parser.parse_args()


def reexec_if_needed(args):
    """Thread counts must be in the environment before NumPy loads."""
    if args.threads and os.environ.get("OPENBLAS_NUM_THREADS") != str(args.threads):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


# ----------------------------------------------------------------------------- the custom cell


def lecture_lstm_cell():
    """The README's cell: the lecture's LSTM (a sigmoid candidate, h = tanh(s) q), from primitives."""
    import tinygrad_rnn as tr

    class LectureLSTM(tr.nn.RecurrentCell):
        state_names = ("h", "s")

        def __init__(self, input_size, hidden_size, device=None, dtype=None):
            super().__init__(input_size, hidden_size)
            self.U = tr.nn.Parameter(tr.randn(input_size, 4 * hidden_size, dtype=dtype) * 0.1)
            self.W = tr.nn.Parameter(tr.randn(hidden_size, 4 * hidden_size, dtype=dtype) * 0.1)
            self.b = tr.nn.Parameter(tr.zeros(4 * hidden_size, dtype=dtype))

        @property
        def state_sizes(self):
            return (self.hidden_size, self.hidden_size)

        def step(self, x, state):
            h, s = state
            f, g, i, q = (x @ self.U + h @ self.W + self.b).sigmoid().chunk(4, 1)
            s = f * s + g * i
            return s.tanh() * q, s

    return LectureLSTM


# ----------------------------------------------------------------------------- contenders


def ours(layer, x, dy):
    import tinygrad_rnn as tr
    x, dy = tr.Tensor(x, requires_grad=True), tr.Tensor(dy)

    def run():
        layer.zero_grad()
        x.grad = None
        output, _ = layer(x)
        (output * dy).sum().backward()
    return run


def compiled_built_in(name, I, H):
    """The built-in layer with its cell's pass compiled instead of hand-written."""
    import tinygrad_rnn as tr
    from tinygrad_rnn.compile import drive
    layer = getattr(tr.nn, BUILT_INS[name][0])(I, H)
    cell = layer._cells[0][0]

    class Compiled:
        def zero_grad(self):
            layer.zero_grad()

        def __call__(self, x):
            zeros = tuple(tr.zeros(x.shape[1], size) for size in cell.state_sizes)
            return drive.compiled_run(cell, x, zeros)
    return Compiled()


def torch_layer(x, dy):
    import torch
    layer = torch.nn.LSTM(x.shape[2], dy.shape[2])
    x, dy = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dy)

    def run():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        output, _ = layer(x)
        (output * dy).sum().backward()
    return run


def torch_cell(kind, x, dy):
    """The same custom cell in PyTorch eager: a Python loop over torch ops."""
    import torch
    T, B, I = x.shape
    H = dy.shape[2]
    U = (torch.randn(I, 4 * H) * 0.1).requires_grad_()
    W = (torch.randn(H, 4 * H) * 0.1).requires_grad_()
    b = torch.zeros(4 * H, requires_grad=True)
    norms = [torch.ones(4 * H, requires_grad=True), torch.zeros(4 * H, requires_grad=True),
             torch.ones(H, requires_grad=True), torch.zeros(H, requires_grad=True)]
    params = [U, W, b] + norms
    x, dy = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dy)
    layer_norm = torch.nn.functional.layer_norm

    def step(x_t, h, s):
        if kind == "lecture":
            f, g, i, q = (x_t @ U + h @ W + b).sigmoid().chunk(4, 1)
            s = f * s + g * i
            return s.tanh() * q, s
        pre = layer_norm(x_t @ U + h @ W, (4 * H,), norms[0], norms[1])
        i, f, g, o = pre.chunk(4, 1)
        s = f.sigmoid() * s + i.sigmoid() * g.tanh()
        return o.sigmoid() * layer_norm(s, (H,), norms[2], norms[3]).tanh(), s

    def run():
        for p in params:
            p.grad = None
        x.grad = None
        h = s = torch.zeros(B, H)
        outputs = []
        for t in range(T):
            h, s = step(x[t], h, s)
            outputs.append(h)
        (torch.stack(outputs) * dy).sum().backward()
    return run


# ----------------------------------------------------------------------------- tables


def custom_rows(configs, repeats):
    import tinygrad_rnn as tr
    from bench.common import format_ms, interleaved_medians
    LectureLSTM = lecture_lstm_cell()
    rows = []
    for B, I, H, T in configs:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((T, B, I), dtype=np.float32)
        dy = rng.standard_normal((T, B, H), dtype=np.float32)
        runs = {"built-in LSTM": ours(tr.nn.LSTM(I, H), x, dy),
                "lecture LSTM": ours(tr.nn.Recurrent(LectureLSTM, I, H), x, dy),
                "LayerNormLSTM": ours(tr.nn.Recurrent(tr.nn.LayerNormLSTMCell, I, H), x, dy),
                "torch.nn.LSTM": torch_layer(x, dy),
                "torch lecture LSTM": torch_cell("lecture", x, dy),
                "torch LayerNormLSTM": torch_cell("layer_norm", x, dy)}
        ms = interleaved_medians(runs, warmup=1, repeats=repeats)
        print(f"  custom {B},{I},{H},{T}: " + ", ".join(f"{k} {format_ms(v)} ms" for k, v in ms.items()),
              file=sys.stderr)
        lstm, torch_lstm = ms["built-in LSTM"], ms["torch.nn.LSTM"]
        rows.append([f"{B},{I},{H},{T}", format_ms(lstm), format_ms(ms["lecture LSTM"]),
                     format_ms(ms["LayerNormLSTM"]), format_ms(torch_lstm), format_ms(ms["torch lecture LSTM"]),
                     format_ms(ms["torch LayerNormLSTM"]),
                     f"{ms['lecture LSTM'] / lstm:.2f}x", f"{ms['LayerNormLSTM'] / lstm:.2f}x",
                     f"{ms['lecture LSTM'] / ms['torch lecture LSTM']:.2f}x",
                     f"{ms['LayerNormLSTM'] / ms['torch LayerNormLSTM']:.2f}x",
                     f"{lstm / torch_lstm:.2f}x"])
    return rows


def built_in_rows(configs, repeats):
    import tinygrad_rnn as tr
    from bench.common import format_ms, interleaved_medians
    rows = []
    for name, (layer_name, _) in BUILT_INS.items():
        for B, I, H, T in configs:
            rng = np.random.default_rng(0)
            x = rng.standard_normal((T, B, I), dtype=np.float32)
            dy = rng.standard_normal((T, B, H), dtype=np.float32)
            runs = {"hand-written": ours(getattr(tr.nn, layer_name)(I, H), x, dy),
                    "compiled": ours(compiled_built_in(name, I, H), x, dy)}
            ms = interleaved_medians(runs, warmup=1, repeats=repeats)
            print(f"  {name} {B},{I},{H},{T}: " + ", ".join(f"{k} {format_ms(v)} ms" for k, v in ms.items()),
                  file=sys.stderr)
            rows.append([layer_name, f"{B},{I},{H},{T}", format_ms(ms["hand-written"]), format_ms(ms["compiled"]),
                         f"{ms['compiled'] / ms['hand-written']:.2f}x"])
    return rows


def compile_rows():
    from tinygrad_rnn.compile import cache_info
    return [[name, len(seconds), f"{1e3 * min(seconds):.0f}", f"{1e3 * max(seconds):.0f}"]
            for name, seconds in sorted(cache_info().items())]


def main():
    args = parse()
    reexec_if_needed(args)
    import torch

    from bench.common import machine, table
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = CONFIGS[:1] if args.quick else CONFIGS
    print("# Compiled cells, float32, forward + backward (cpu)\n")
    print(f"{machine()}\n")
    print("## A custom cell beside the built-in LSTM and PyTorch: time, ms (median)\n")
    print(table(["B,I,H,T", "built-in LSTM", "lecture LSTM", "LayerNormLSTM", "torch.nn.LSTM",
                 "torch lecture LSTM", "torch LayerNormLSTM", "lecture / built-in", "LayerNorm / built-in",
                 "lecture / torch eager", "LayerNorm / torch eager", "built-in / torch.nn"],
                custom_rows(configs, args.repeats)))
    print("\n## Built-in layers compiled from their composed cells beside their hand-written passes\n")
    print(table(["layer", "B,I,H,T", "hand-written ms", "compiled ms", "compiled / hand-written"],
                built_in_rows(configs, args.repeats)))
    print("\n## Compile time (trace twice, trace the VJP, plan, generate), ms\n")
    print(table(["cell", "structures", "fastest", "slowest"], compile_rows()))
    print()


if __name__ == "__main__":
    main()
