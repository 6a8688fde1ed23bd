"""Cells compiled by the step compiler beside the built-in layers and PyTorch, in one run.

float32, one layer over a full sequence, loss = sum(output * dy), backward to every parameter and
the input; medians of runs taken round-robin, printed with ratios measured in the same run:

  custom cells   cells written from primitives in a few lines (the lecture's LSTM and GRU from
                 examples/lecture_cells.py, LayerNormLSTMCell) compiled, beside the built-in LSTM and
                 GRU (their hand-written passes), torch.nn.LSTM/GRU and the same cell in PyTorch eager
                 (a Python loop over torch ops)
  built-ins      RNN, LSTM and GRU compiled from their composed cells beside their hand-written passes
  calls          the NumPy calls in each step of the generated loops
  compile time   the seconds each structure took to trace, plan and generate (cached afterwards)
  GPU (--device cuda, TINYGRAD_RNN_COMPILED_CUDA taken as set): LayerNormLSTM and the lecture LSTM
                 compiled, as one persistent kernel per segment and direction, on thread-block
                 clusters, and per step (cuBLAS and generated kernels), beside cuDNN's plain LSTM;
                 the latency model's estimate of the persistent and cluster programs beside
                 their measured times

    python bench/bench_compiled.py               # one thread for OpenBLAS and torch (the default)
    python bench/bench_compiled.py --threads 0   # every thread
    python bench/bench_compiled.py --quick       # the smaller config only
    python bench/bench_compiled.py --clock cpu   # CPU time: steadier ratios on a busy machine
    python bench/bench_compiled.py --device cuda # the GPU rows only (CuPy, PyTorch with CUDA)
"""
import argparse
import os
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIGS = [(32, 128, 128, 50), (64, 256, 256, 100)]
GPU_CONFIGS = [(64, 256, 256, 100), (32, 128, 128, 300)]
BUILT_INS = {"lstm": ("LSTM", "LSTMCell"), "gru": ("GRU", "GRUCell"), "rnn": ("RNN", "RNNCell")}


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for OpenBLAS and torch (0: as-is)")
    parser.add_argument("--quick", action="store_true", help="the smaller config only")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cuda: the GPU rows only")
    parser.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                        help="wall time, or this process's CPU time (steadier where other jobs share the cores)")
    return parser.parse_args()


def reexec_if_needed(args):
    """Thread counts must be in the environment before NumPy loads."""
    if args.threads and os.environ.get("OPENBLAS_NUM_THREADS") != str(args.threads):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


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


def torch_layer(kind, x, dy):
    import torch
    layer = getattr(torch.nn, kind)(x.shape[2], dy.shape[2])
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
    W_h = (torch.randn(H, H) * 0.1).requires_grad_()
    b = torch.zeros(4 * H, requires_grad=True)
    norms = [torch.ones(4 * H, requires_grad=True), torch.zeros(4 * H, requires_grad=True),
             torch.ones(H, requires_grad=True), torch.zeros(H, requires_grad=True)]
    params = [U, W, W_h, b] + norms
    x, dy = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dy)
    layer_norm = torch.nn.functional.layer_norm

    def step(x_t, h, s):
        if kind == "lecture LSTM":
            f, g, i, q = (x_t @ U + h @ W + b).sigmoid().chunk(4, 1)
            s = f * s + g * i
            return s.tanh() * q, s
        if kind == "lecture GRU":
            x_u, x_r, x_h = (x_t @ U[:, :3 * H] + b[:3 * H]).chunk(3, 1)
            h_u, h_r = (h @ W[:, :2 * H]).chunk(2, 1)
            u, r = (x_u + h_u).sigmoid(), (x_r + h_r).sigmoid()
            return u * h + (1 - u) * (x_h + (r * h) @ W_h).sigmoid(), s
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


# the custom cells the project ships, each with the built-in layer of its kind
CUSTOM = {"lecture LSTM": "LSTM", "lecture GRU": "GRU", "LayerNormLSTM": "LSTM"}


def custom_cell(name):
    import tinygrad_rnn as tr
    from examples.lecture_cells import LectureGRU, LectureLSTM
    return {"lecture LSTM": LectureLSTM, "lecture GRU": LectureGRU, "LayerNormLSTM": tr.nn.LayerNormLSTMCell}[name]


def custom_rows(configs, repeats, clock):
    import tinygrad_rnn as tr
    from bench.common import format_ms, interleaved_medians
    rows = []
    for B, I, H, T in configs:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((T, B, I), dtype=np.float32)
        dy = rng.standard_normal((T, B, H), dtype=np.float32)
        runs = {f"built-in {kind}": ours(getattr(tr.nn, kind)(I, H), x, dy) for kind in ("LSTM", "GRU")}
        runs.update({f"torch.nn.{kind}": torch_layer(kind, x, dy) for kind in ("LSTM", "GRU")})
        for name in CUSTOM:
            runs[name] = ours(tr.nn.Recurrent(custom_cell(name), I, H), x, dy)
            runs[f"torch {name}"] = torch_cell(name, x, dy)
        ms = interleaved_medians(runs, warmup=1, repeats=repeats, clock=clock)
        print(f"  custom {B},{I},{H},{T}: " + ", ".join(f"{k} {format_ms(v)} ms" for k, v in ms.items()),
              file=sys.stderr)
        lstm = ms["built-in LSTM"]
        for name, kind in CUSTOM.items():
            own = ms[f"built-in {kind}"]
            rows.append([f"{B},{I},{H},{T}", name, format_ms(ms[name]), format_ms(lstm), f"{ms[name] / lstm:.2f}x",
                         f"{format_ms(own)} ({kind})", f"{ms[name] / own:.2f}x", format_ms(ms[f"torch {name}"]),
                         f"{ms[name] / ms[f'torch {name}']:.2f}x", format_ms(ms[f"torch.nn.{kind}"])])
    return rows


def built_in_rows(configs, repeats, clock):
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
            ms = interleaved_medians(runs, warmup=1, repeats=repeats, clock=clock)
            print(f"  {name} {B},{I},{H},{T}: " + ", ".join(f"{k} {format_ms(v)} ms" for k, v in ms.items()),
                  file=sys.stderr)
            rows.append([layer_name, f"{B},{I},{H},{T}", format_ms(ms["hand-written"]), format_ms(ms["compiled"]),
                         f"{ms['compiled'] / ms['hand-written']:.2f}x"])
    return rows


def compiled_on_gpu(cell, x, dy, steps):
    """A compiled cell on CuPy with TINYGRAD_RNN_CUDA_STEPS=steps ("auto": persistent where the step
    fits; "cluster": thread-block clusters where they fit; "elementwise": per step), each with its own
    program cache so that all are measured."""
    import cupy

    import tinygrad_rnn as tr
    from tinygrad_rnn.compile import drive
    from tinygrad_rnn.nn import fused
    drive.COMPILED_CUDA = True
    layer = tr.nn.Recurrent(cell, x.shape[2], dy.shape[2], device="cuda")
    x, dy = tr.Tensor(x, device="cuda", requires_grad=True), tr.Tensor(dy, device="cuda")
    cache, chosen = {}, []

    def run():
        drive._CACHE, fused.CUDA_STEPS = cache, steps
        layer.zero_grad()
        x.grad = None
        output, _ = layer(x)
        (output * dy).sum().backward()
        cupy.cuda.get_current_stream().synchronize()
        if not chosen:
            program = output.grad_fn.compiled.program
            chosen.extend([program_taken(program), program_model(program, *x.shape[1:], dy.shape[2], x.shape[0])])
    return run, chosen


def program_model(program, B, I, H, T, gates=4):
    """(us per step, ms per pass): the latency model's estimate for a persistent or cluster program
    (its phases, its plans, its products' tilings and operands on chip or not) of a cell with `gates`
    gates; None for the per-step program."""
    from tinygrad_rnn.compile import drive
    from tinygrad_rnn.compile.persistent_program import PersistentProgram
    from tinygrad_rnn.nn import latency_model as LM
    if not isinstance(program, PersistentProgram):
        return None
    itemsize = np.dtype(program.fplan.graph.states[0].dtype).itemsize
    step = program.step_us(drive.backward_kind(B * H * itemsize, T))
    return step, LM.layer_ms(step, gates, B, I, H, T)


def program_taken(program):
    """Which program a compiled pass runs: cluster, persistent, or the per-step one's reason."""
    from tinygrad_rnn.compile.cluster_program import ClusterProgram
    if isinstance(program, ClusterProgram):
        return "cluster"
    reason = getattr(program, "per_step_reason", None)
    return f"per step ({reason})" if reason else "persistent"


def cudnn_lstm(x, dy):
    import torch
    layer = torch.nn.LSTM(x.shape[2], dy.shape[2]).cuda()
    x, dy = torch.from_numpy(x).cuda().requires_grad_(), torch.from_numpy(dy).cuda()

    def run():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        (layer(x)[0] * dy).sum().backward()
        torch.cuda.synchronize()
    return run


STEP_PROGRAMS = ("auto", "cluster", "elementwise")   # TINYGRAD_RNN_CUDA_STEPS for the compiled cells' GPU rows


def gpu_rows(repeats):
    from bench.common import format_ms, interleaved_medians
    rows = []
    for B, I, H, T in GPU_CONFIGS:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((T, B, I), dtype=np.float32)
        dy = rng.standard_normal((T, B, H), dtype=np.float32)
        runs, chosen = {"cuDNN LSTM": cudnn_lstm(x, dy)}, {}
        for name in ("LayerNormLSTM", "lecture LSTM"):
            for steps in STEP_PROGRAMS:
                run, chosen[(name, steps)] = compiled_on_gpu(custom_cell(name), x, dy, steps)
                try:  # kernels never run on a GPU before: one that fails must not take the table with it
                    run()
                    runs[(name, steps)] = run
                except Exception as error:  # noqa: BLE001 (reported, and the row says so)
                    print(f"{name} {steps} at {B},{I},{H},{T} failed: {type(error).__name__}: {error}",
                          file=sys.stderr)
                    chosen[(name, steps)][:] = [f"failed ({type(error).__name__})", None]
        ms = interleaved_medians(runs, warmup=2, repeats=repeats)
        cudnn = ms["cuDNN LSTM"]
        for name in ("LayerNormLSTM", "lecture LSTM"):
            row = [f"{B},{I},{H},{T}", name]
            for steps in STEP_PROGRAMS:
                taken, model = chosen[(name, steps)]
                row += [format_ms(ms[(name, steps)]) if (name, steps) in ms else "-", taken]
                if steps in ("auto", "cluster"):   # the latency model beside the measured time
                    row.append(f"{model[1]:.2f} ({model[0]:.2f})" if model else "-")
            row.append(format_ms(cudnn))
            row += [f"{ms[(name, steps)] / cudnn:.2f}x" if (name, steps) in ms else "-" for steps in STEP_PROGRAMS]
            rows.append(row)
    return rows


# a NumPy call in a generated loop: a ufunc or product into a buffer, a copy, a fill, an in-place add
_CALL = re.compile(r"\b(add|subtract|multiply|true_divide|power|negative|exp|log|tanh|maximum|greater|clip|matmul|"
                   r"copyto|concatenate|stack|einsum|sum_into|max_into|f\d+)\(|\] = 0$|\+= ")


def loop_calls(source):
    """NumPy calls in each step of a generated function's loop (the rows of ended sequences aside)."""
    calls, depth = 0, None
    for line in source.split("\n"):
        indent = len(line) - len(line.lstrip())
        if re.match(r"\s*for j in range", line):
            depth = indent
        elif depth is not None and line.strip() and indent <= depth:
            depth = None
        elif depth is not None and indent == depth + 4 and _CALL.search(line):
            calls += 1
    return calls


def calls_rows():
    """NumPy calls per step of each compiled cell: forward, backward with the work on forward values done
    for all steps before the loop (steps under drive.STEP_BYTES, small segments) and step by step (the
    rest: both configs here); the scratch's transposing copies count as calls."""
    import tinygrad_rnn as tr
    from tinygrad_rnn.compile import drive
    B, I, H, T = CONFIGS[0]
    cells = {name: getattr(tr.nn, cell)(I, H) for name, (_, cell) in BUILT_INS.items()}
    cells["LayerNormLSTM"] = tr.nn.LayerNormLSTMCell(I, H)
    rows = []
    for name, cell in cells.items():
        out, _ = drive.compiled_run(cell, tr.randn(T, B, I), tuple(tr.zeros(B, size) for size in cell.state_sizes))
        program = out.grad_fn.compiled.program
        bulk, loop = program.backward_source.split("# backward (loop)")
        rows.append([name, loop_calls(program.forward_source), loop_calls(bulk), loop_calls(loop)])
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
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.device == "cuda":
        import tinygrad_rnn
        if not tinygrad_rnn.cuda_available():
            sys.exit("--device cuda: CuPy with a working GPU is needed")
        print("# Compiled cells on the GPU, float32, forward + backward\n")
        print(table(["B,I,H,T", "cell", "auto ms", "program taken", "auto model ms (us/step)", "cluster ms", "program taken",
                     "cluster model ms (us/step)", "per step ms", "program taken", "cuDNN LSTM ms", "auto / cuDNN", "cluster / cuDNN",
                     "per step / cuDNN"], gpu_rows(args.repeats)))
        return
    print("# Compiled cells, float32, forward + backward (cpu)\n")
    print(f"{machine()}; {args.clock} clock\n")
    print("## Custom cells, compiled, beside the built-in layers and PyTorch: time, ms (median)\n")
    print(table(["B,I,H,T", "cell", "compiled", "built-in LSTM", "/ built-in LSTM", "built-in of its kind",
                 "/ built-in of its kind", "same cell, PyTorch eager", "/ PyTorch eager", "torch.nn of its kind"],
                custom_rows(configs, args.repeats, clock)))
    print("\n## Built-in layers compiled from their composed cells beside their hand-written passes\n")
    print(table(["layer", "B,I,H,T", "hand-written ms", "compiled ms", "compiled / hand-written"],
                built_in_rows(configs, args.repeats, clock)))
    print("\n## NumPy calls per step of the compiled loops\n")
    print(table(["cell", "forward", "backward (tiny steps)", "backward (step by step)"], calls_rows()))
    print("\n## Compile time (trace twice, trace the VJP, plan, generate), ms\n")
    print(table(["cell", "structures", "fastest", "slowest"], compile_rows()))
    print()


if __name__ == "__main__":
    main()
