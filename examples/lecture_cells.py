"""The lecture's LSTM and GRU (Goodfellow et al., Deep Learning, 10.10), each one step written from primitives.

`tr.nn.Recurrent` runs a cell like these with layers, directions, lengths and dropout; the step
compiler turns its step into one pass over the whole sequence. This script runs each beside the
built-in layer of its family (whose pass is written by hand) and prints what the compiled pass is
and how long forward + backward takes, one CPU thread:

    python examples/lecture_cells.py
    python examples/lecture_cells.py --hidden 256 --steps 100 --show-source
"""
import argparse

import tinygrad_rnn as tr


class LectureLSTM(tr.nn.RecurrentCell):
    """10.10.1: gates f, g (input), q (output) and the candidate, all sigmoids; s' = f s + g i,
    h' = tanh(s') q."""
    state_names = ("h", "s")

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.U = tr.nn.Parameter(tr.randn(input_size, 4 * hidden_size, dtype=dtype, device=device) * 0.1)
        self.W = tr.nn.Parameter(tr.randn(hidden_size, 4 * hidden_size, dtype=dtype, device=device) * 0.1)
        self.b = tr.nn.Parameter(tr.zeros(4 * hidden_size, dtype=dtype, device=device))

    @property
    def state_sizes(self):
        return (self.hidden_size, self.hidden_size)

    def step(self, x, state):                       # x (B, I), state ((B, H), (B, H)) -> new state
        h, s = state
        f, g, i, q = (x @ self.U + h @ self.W + self.b).sigmoid().chunk(4, 1)
        s = (f * s + g * i).named("s")              # names: the pictures and diagnostics find the states
        return (s.tanh() * q).named("h"), s


class LectureGRU(tr.nn.RecurrentCell):
    """10.10.2: update gate u, reset gate r; h' = u h + (1 - u) sigmoid(b + U x + W (r h)), the
    candidate through a sigmoid as the book writes it."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.U = tr.nn.Parameter(tr.randn(input_size, 3 * hidden_size, dtype=dtype, device=device) * 0.1)
        self.W = tr.nn.Parameter(tr.randn(hidden_size, 2 * hidden_size, dtype=dtype, device=device) * 0.1)
        self.W_h = tr.nn.Parameter(tr.randn(hidden_size, hidden_size, dtype=dtype, device=device) * 0.1)
        self.b = tr.nn.Parameter(tr.zeros(3 * hidden_size, dtype=dtype, device=device))

    def step(self, x, state):                       # x (B, I), state ((B, H),) -> new state
        h, = state
        x_u, x_r, x_h = (x @ self.U + self.b).chunk(3, 1)
        h_u, h_r = (h @ self.W).chunk(2, 1)
        u, r = (x_u + h_u).sigmoid(), (x_r + h_r).sigmoid()
        return (u * h + (1 - u) * (x_h + (r * h) @ self.W_h).sigmoid(),)


CELLS = {"LSTM": LectureLSTM, "GRU": LectureGRU}


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--batch", type=int, default=32, help="sequences per batch")
    parser.add_argument("--input", type=int, default=128, help="input features")
    parser.add_argument("--hidden", type=int, default=128, help="hidden units")
    parser.add_argument("--steps", type=int, default=50, help="time steps")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each (the median is shown)")
    parser.add_argument("--show-source", action="store_true", help="print the compiled LSTM's generated source")
    return parser.parse_args()


def time_pass(layer, x, repeats):
    """Median milliseconds of forward + backward (loss = sum of the output), and the output's node."""
    import statistics
    import time
    times = []
    for _ in range(repeats + 1):   # the first run compiles
        layer.zero_grad()
        start = time.perf_counter()
        output, _ = layer(x)
        op = output.grad_fn.op
        output.sum().backward()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times[1:]), op


def main():
    args = parse()
    from tinygrad_rnn.compile import cache_info
    from tinygrad_rnn.train.threads import blas_threads
    with blas_threads(1):
        x = tr.randn(args.steps, args.batch, args.input)
        for family, cell in CELLS.items():
            built_in = getattr(tr.nn, family)(args.input, args.hidden)
            lecture = tr.nn.Recurrent(cell, args.input, args.hidden)
            ms_built_in, _ = time_pass(built_in, x, args.repeats)
            ms_lecture, op = time_pass(lecture, x, args.repeats)
            print(f"{family}: the lecture's cell as one {op} node, {ms_lecture:.1f} ms; "
                  f"tr.nn.{family} (written by hand), {ms_built_in:.1f} ms "
                  f"({ms_lecture / ms_built_in:.2f}x)")
            if args.show_source and family == "LSTM":
                output, _ = lecture(x)
                print(output.grad_fn.compiled.source)   # NumPy calls on preallocated buffers
        for name, seconds in sorted(cache_info().items()):
            print(f"compiled {name} in {1e3 * max(seconds):.0f} ms")


if __name__ == "__main__":
    main()
