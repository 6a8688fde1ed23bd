"""The fused recurrent layers beside the composed ones, torch.nn.* and a torch cell loop: time and memory.

For each (B, I, H, T) of ../shared/ANCHORS.md, float32, one layer over a full sequence, loss =
sum(output * dy), backward to every parameter and the input. Timed round-robin in one run (a busy
machine slows every contender alike), medians, printed as ratios to PyTorch:

    composed   our layer op by op (fused=False): the graph that shows every gate
    fused      our layer with fused=True: one node per pass, hand-written BPTT
    torch.nn   torch.nn.LSTM / GRU / RNN (on a GPU: cuDNN)
    cell loop  torch.nn.LSTMCell / GRUCell / RNNCell stepped in a Python loop

Memory: the peak of one LSTM training step above what was live before it (the resident set on the
CPU, with glibc told to return large blocks to the system at once; the allocators' peaks on a GPU),
including fused with checkpoint_every=sqrt(T).

    python bench/bench_layers.py                 # every config (the largest takes a while)
    python bench/bench_layers.py --quick         # without (256, 1024, 1024, 100)
    python bench/bench_layers.py --blas native   # OpenBLAS picks its own kernels (OPENBLAS_* unset)
    python bench/bench_layers.py --threads 1     # one thread for OpenBLAS and torch (steadier on a busy machine)
    python bench/bench_layers.py --device cuda   # CuPy beside cuDNN and a CUDA cell loop
    python bench/bench_layers.py --device cuda --latency --write-table out/cuda_step_times.json
                                                 # the small-step table, per step, and launch_plan's table
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIGS = [(32, 64, 128, 50), (64, 256, 256, 100), (64, 512, 512, 100), (256, 1024, 1024, 100)]
MEMORY_CONFIGS = [(32, 128, 128, 1000), (64, 256, 256, 100)]
LAYERS = {"lstm": ("LSTM", "LSTMCell"), "gru": ("GRU", "GRUCell"), "rnn": ("RNN", "RNNCell")}
COMPOSED_UP_TO = 512 * 100   # H * T above which the op-by-op layer is left out (it takes seconds)
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# how a fused pass runs its steps on CuPy (fused_kernels, launch_plan)
CUDA_STEPS = ("auto", "cluster", "persistent", "elementwise", "raw", "inline")
CUDA_CONFIGS = CONFIGS + [(32, 128, 128, 1000), (1, 256, 256, 500), (128, 2048, 2048, 50)]
# --latency: the small-step table of bench/RESULTS.md ("Latency model"), each layer's configs timed
# by the ways of running steps that launch_plan chooses between, beside cuDNN
LATENCY_CONFIGS = {"lstm": [(32, 64, 128, 50), (64, 256, 256, 100), (64, 512, 512, 100), (256, 1024, 1024, 100),
                            (32, 128, 128, 1000), (1, 256, 256, 500), (128, 2048, 2048, 50)],
                   "gru": [(64, 512, 512, 100), (32, 128, 128, 1000)],
                   "rnn": [(64, 512, 512, 100), (32, 128, 128, 1000)]}
LATENCY_STEPS = ("auto", "cluster", "persistent", "elementwise")
FUSED_CELLS = {"lstm": "lstm", "gru": "gru", "rnn": "rnn_tanh"}


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the largest config")
    parser.add_argument("--layers", default="lstm,gru,rnn")
    parser.add_argument("--configs", default=None, help="indices into CONFIGS, e.g. 0,1")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--blas", default="as-is", choices=["as-is", "native"],
                        help="native: run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset")
    parser.add_argument("--threads", type=int, default=None, help="threads for OpenBLAS and torch")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--latency", action="store_true",
                        help="with --device cuda: the small-step table, per step, beside cuDNN and the latency model")
    parser.add_argument("--write-table", default=None,
                        help="with --latency: write the measured times as launch_plan's JSON table to this path")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)  # "B,I,H,T:contender"
    return parser.parse_args()


def reexec_if_needed(args):
    """Set the environment that must exist before NumPy loads, then start again."""
    env = dict(os.environ)
    if args.blas == "native":
        for name in BLAS_VARIABLES:
            env.pop(name, None)
    if args.threads:
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(args.threads)
    if env != dict(os.environ):
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


# ----------------------------------------------------------------------------- contenders


def strict_float32():
    """Plain float32 products in torch too: cuDNN would otherwise round them to TF32 on recent GPUs."""
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def synchronizer(device):
    if device == "cpu":
        return lambda: None
    import cupy
    import torch
    return lambda: (cupy.cuda.get_current_stream().synchronize(), torch.cuda.synchronize())


def ours(name, x, dy, device, fused, checkpoint_every=None, cuda_steps=None):
    import tinygrad_rnn as tr
    from tinygrad_rnn.nn import fused as fused_module
    _, B, I = x.shape
    H = dy.shape[2]
    layer = getattr(tr.nn, LAYERS[name][0])(I, H, fused=fused, device=device)
    x, dy = tr.Tensor(x, device=device, requires_grad=True), tr.Tensor(dy, device=device)

    def run():
        layer.zero_grad()
        x.grad = None
        if cuda_steps:
            fused_module.CUDA_STEPS = cuda_steps
        if checkpoint_every:
            cell = layer.cell_l0 if hasattr(layer, "cell_l0") else layer._cells[0][0]
            output, _ = fused_module.fused_run(cell, x, _zero_state(tr, cell, B, device), None, False,
                                               checkpoint_every=checkpoint_every)
        else:
            output, _ = layer(x)
        (output * dy).sum().backward()
    return run


def _zero_state(tr, cell, batch, device):
    return tuple(tr.zeros(batch, size, device=device) for size in cell.state_sizes)


def torch_layer(name, x, dy, device):
    import torch
    layer = getattr(torch.nn, LAYERS[name][0])(x.shape[2], dy.shape[2]).to(device)
    x = torch.from_numpy(x).to(device).requires_grad_()
    dy = torch.from_numpy(dy).to(device)

    def run():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        output, _ = layer(x)
        (output * dy).sum().backward()
    return run


def torch_cell_loop(name, x, dy, device):
    import torch
    T, B, I = x.shape
    H = dy.shape[2]
    cell = getattr(torch.nn, LAYERS[name][1])(I, H).to(device)
    x = torch.from_numpy(x).to(device).requires_grad_()
    dy = torch.from_numpy(dy).to(device)
    lstm = name == "lstm"

    def run():
        cell.zero_grad(set_to_none=True)
        x.grad = None
        zeros = torch.zeros(B, H, device=device)
        state = (zeros, zeros) if lstm else zeros
        outputs = []
        for t in range(T):
            state = cell(x[t], state)
            outputs.append(state[0] if lstm else state)
        (torch.stack(outputs) * dy).sum().backward()
    return run


def contenders(name, config, device, include_composed):
    B, I, H, T = config
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I), dtype=np.float32)
    dy = rng.standard_normal((T, B, H), dtype=np.float32)
    found = {}
    if include_composed:
        found["composed"] = ours(name, x, dy, device, fused=False)
    if device == "cuda":
        for steps in CUDA_STEPS:
            found[f"fused {steps}"] = ours(name, x, dy, device, fused=True, cuda_steps=steps)
    else:
        found["fused"] = ours(name, x, dy, device, fused=True)
    found["torch.nn"] = torch_layer(name, x, dy, device)
    found["cell loop"] = torch_cell_loop(name, x, dy, device)
    sync = synchronizer(device)
    return {k: _synced(fn, sync) for k, fn in found.items()}


def _synced(fn, sync):
    def run():
        fn()
        sync()
    return run


# ----------------------------------------------------------------------------- memory


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def peak_cpu_bytes(fn):
    """Peak resident set during fn() above the resident set before it.

    Run in a process of its own started with MALLOC_MMAP_THRESHOLD_ small, so that every freed
    block leaves the resident set at once and a step cannot reuse memory an earlier one left.
    """
    fn()  # warm: lazy initialisation is not the step's memory
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current resident set
    before = _status_kib("VmRSS")
    fn()
    return (_status_kib("VmHWM") - before) * 1024


def probe_cpu_bytes(config, contender):
    """peak_cpu_bytes of one contender, measured in a fresh Python process."""
    import subprocess
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="4096")
    spec = ",".join(map(str, config)) + ":" + contender
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-probe", spec], env=env,
                          capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def memory_runs(config, device):
    B, I, H, T = config
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I), dtype=np.float32)
    dy = rng.standard_normal((T, B, H), dtype=np.float32)
    every = max(1, round(math.sqrt(T)))
    runs = {"torch.nn": lambda: torch_layer("lstm", x, dy, device),
            "cell loop": lambda: torch_cell_loop("lstm", x, dy, device),
            "fused": lambda: ours("lstm", x, dy, device, fused=True),
            f"fused, k={every}": lambda: ours("lstm", x, dy, device, fused=True, checkpoint_every=every)}
    if H * T <= COMPOSED_UP_TO // 4:
        runs["composed"] = lambda: ours("lstm", x, dy, device, fused=False)
    return runs


def peak_cuda_bytes(fn):
    """Allocator peaks during fn(): torch's max_memory_allocated, CuPy's pool growth from empty."""
    import cupy
    import torch
    fn()
    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    cupy_before, torch_before = pool.total_bytes(), torch.cuda.memory_allocated()
    fn()
    return (pool.total_bytes() - cupy_before) + (torch.cuda.max_memory_allocated() - torch_before)


def memory_rows(device):
    rows = []
    for config in MEMORY_CONFIGS:
        B, I, H, T = config
        runs = memory_runs(config, device)
        if device == "cpu":
            peaks = {name: probe_cpu_bytes(config, name) for name in runs}
        else:
            peaks = {name: peak_cuda_bytes(make()) for name, make in runs.items()}
        base = peaks["torch.nn"]
        for name, peak in peaks.items():
            rows.append([f"{B},{I},{H},{T}", name, f"{peak / 2**20:.1f}", f"{peak / base:.2f}x"])
    return rows


# ----------------------------------------------------------------------------- small steps (--latency)


def available_steps(name, config):
    """The step designs that have a plan on this GPU for the config (a design without one would
    silently run another); 'auto' always."""
    from tinygrad_rnn.nn import fused
    from tinygrad_rnn.nn import launch_plan as LP
    from tinygrad_rnn.nn import persistent_kernels as PK
    B, _, H, _ = config
    cell = fused.CELLS[FUSED_CELLS[name]]
    plans = {"cluster": LP.device_cluster_plans(cell, B, H, np.float32),
             "persistent": fused.persistent_plans(cell, B, H, 4, PK.multiprocessor_count(), PK.shared_memory_limit())}
    return [s for s in LATENCY_STEPS if s not in plans or plans[s] is not None]


def latency_tables(args):
    """Per layer: ms of each design and of cuDNN, the per-step microseconds (ms / T / 2) and the
    latency model's estimate; the measured entries for launch_plan's table."""
    from bench.common import format_ms, interleaved_medians, table
    from tinygrad_rnn.nn import fused
    from tinygrad_rnn.nn import launch_plan as LP
    from tinygrad_rnn.nn import persistent_kernels as PK
    entries = []
    for name in args.layers.split(","):
        rows = []
        for config in LATENCY_CONFIGS[name]:
            B, I, H, T = config
            rng = np.random.default_rng(0)
            x = rng.standard_normal((T, B, I), dtype=np.float32)
            dy = rng.standard_normal((T, B, H), dtype=np.float32)
            steps = available_steps(name, config)
            sync = synchronizer("cuda")
            runs = {s: _synced(ours(name, x, dy, "cuda", fused=True, cuda_steps=s), sync) for s in steps}
            runs["cuDNN"] = _synced(torch_layer(name, x, dy, "cuda"), sync)
            ms = interleaved_medians(runs, warmup=1, repeats=args.repeats or 5)
            cell = fused.CELLS[FUSED_CELLS[name]]
            model = LP.estimates_ms(cell, B, I, H, T, 4, PK.multiprocessor_count(), PK.shared_memory_limit(),
                                    LP.CK.clusters_supported())
            chosen = LP.choose(cell, B, H, T, np.float32)
            per_step = {k: v / T / 2 * 1e3 for k, v in ms.items()}
            rows.append([f"{B},{I},{H},{T}"] + [format_ms(ms[s]) if s in ms else "-" for s in LATENCY_STEPS] +
                        [format_ms(ms["cuDNN"]), f"{ms['auto'] / ms['cuDNN']:.2f}x", chosen,
                         f"{per_step['auto']:.1f}", f"{per_step['cuDNN']:.1f}"] +
                        [f"{model[s]:.1f}" if s in model else "-" for s in LP.DESIGNS])
            print(f"  {name} {config}: " + ", ".join(f"{k} {format_ms(v)} ms" for k, v in ms.items()), file=sys.stderr)
            entries.append({"cell": name, "dtype": "float32", "batch": B, "input": I, "hidden": H, "steps": T,
                            "ms": {s: ms[s] for s in LP.DESIGNS if s in ms}, "cudnn_ms": ms["cuDNN"]})
        print(f"## {LAYERS[name][0]}: small steps, ms (median), per step in us (ms / T / 2)\n")
        print(table(["B,I,H,T"] + list(LATENCY_STEPS) + ["cuDNN", "auto / cuDNN", "auto chose", "auto us/step",
                                                          "cuDNN us/step"] + [f"model {d}" for d in LP.DESIGNS],
                    rows))
        print()
    return entries


def write_table(path, entries):
    import json

    import cupy
    device = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    with open(path, "w") as f:
        json.dump({"device": device.decode() if isinstance(device, bytes) else device, "entries": entries}, f, indent=1)
    print(f"wrote {path}: copy it to tinygrad_rnn/nn/cuda_step_times.json (or point TINYGRAD_RNN_STEP_TABLE "
          f"at it) for the launch plan to use")


# ----------------------------------------------------------------------------- main


def main():
    args = parse()
    reexec_if_needed(args)
    if args.memory_probe:
        spec, contender = args.memory_probe.split(":")
        config = tuple(int(v) for v in spec.split(","))
        print(peak_cpu_bytes(memory_runs(config, "cpu")[contender]()))
        return
    import tinygrad_rnn as tr
    from bench.common import format_ms, interleaved_medians, machine, table
    if args.device == "cuda" and not tr.cuda_available():
        sys.exit("--device cuda: CuPy with a working GPU is needed")
    if args.device == "cuda":
        strict_float32()
    if args.latency:
        if args.device != "cuda":
            sys.exit("--latency measures the CUDA step designs: add --device cuda")
        print("# Small steps: each way of running a pass's steps beside cuDNN, float32, forward + backward\n")
        print(f"{machine()}\n")
        entries = latency_tables(args)
        if args.write_table:
            write_table(args.write_table, entries)
        return
    all_configs = CUDA_CONFIGS if args.device == "cuda" else CONFIGS
    configs = [all_configs[int(i)] for i in args.configs.split(",")] if args.configs else \
        [c for c in all_configs if c != CONFIGS[3]] if args.quick else all_configs
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    blas = ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in BLAS_VARIABLES + ("OPENBLAS_NUM_THREADS",))
    print(f"# Fused recurrent layers, float32, forward + backward ({args.device})\n")
    print(f"{machine()}; {blas}\n")
    reference = "cuDNN" if args.device == "cuda" else "torch.nn"
    for name in args.layers.split(","):
        rows = []
        for config in configs:
            B, I, H, T = config
            big = B * H * H * T > 64 * 512 * 512 * 100
            include_composed = H * T <= COMPOSED_UP_TO and T <= 100
            runs = contenders(name, config, args.device, include_composed)
            repeats = args.repeats or (3 if big else 5)
            ms = interleaved_medians(runs, warmup=1, repeats=repeats)
            nn, loop = ms["torch.nn"], ms["cell loop"]
            composed = ms.get("composed")
            fused_names = [k for k in ms if k.startswith("fused")]
            rows.append([f"{B},{I},{H},{T}", format_ms(composed) if composed else "-"] +
                        [format_ms(ms[k]) for k in fused_names] + [format_ms(nn), format_ms(loop)] +
                        [f"{ms[k] / nn:.2f}x" for k in fused_names] + [f"{ms[k] / loop:.2f}x" for k in fused_names] +
                        [f"{composed / nn:.1f}x" if composed else "-"])
            print(f"  {name} {config}: " + ", ".join(f"{k} {format_ms(v)} ms" for k, v in ms.items()),
                  file=sys.stderr)
        print(f"## {LAYERS[name][0]}: time, ms (median)\n")
        print(table(["B,I,H,T", "composed"] + fused_names + [reference, "cell loop"] +
                    [f"{k} / {reference}" for k in fused_names] + [f"{k} / cell loop" for k in fused_names] +
                    [f"composed / {reference}"], rows))
        print()
    if not args.no_memory:
        print("## LSTM training step: peak memory above what was live before, MiB\n")
        print(table(["B,I,H,T", "contender", "peak MiB", f"/ {reference}"], memory_rows(args.device)))
        print()


if __name__ == "__main__":
    main()
