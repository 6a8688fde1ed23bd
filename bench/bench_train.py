"""Characters per second of character-level language-model training, beside PyTorch (CPU or GPU).

One training step = forward over a (seq_len, batch) window, cross-entropy, backward, global-norm
clipping and an Adam update: the same model (Embedding -> recurrent layer -> Linear), the same
weights and the same batches in both libraries, the steps of the two run in turn (round-robin) in
the same process. Median step time after warm-up. Neither library reads the loss inside the
step; on the GPU each timed step ends with a synchronisation of both.

On the CPU, where OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE is set (they force OpenBLAS's kernels and
count only when NumPy loads), the same configs run again in a child process without them, and
the table gets that run's ratio as a last column (see bench/RESULTS.md).

    python bench/bench_train.py                 # BLAS and torch on 1 thread, as the CLI trains
    python bench/bench_train.py --threads 2
    python bench/bench_train.py --blas native   # only the run without the OpenBLAS variables
    python bench/bench_train.py --clock cpu     # CPU time per step: steadier where other jobs share the cores
    python bench/bench_train.py --device cuda   # the GPU configs, TF32 off on both sides
"""
import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.common import format_ms, interleaved_times, machine, paired_ratio, table
from tinygrad_rnn.data import CharCorpus
from tinygrad_rnn.nn.utils import clip_grad_norm_
from tinygrad_rnn.train import TrainConfig, build, make_task
from tinygrad_rnn.train.threads import blas_threads

BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # read once, when NumPy loads OpenBLAS
CONFIGS = {  # label -> TrainConfig: the demo, the train command's defaults, the other cells, a bigger LSTM
    "demo: lstm H192 E32 B32 T64": TrainConfig(hidden_size=192, embed_size=32, batch_size=32, seq_len=64),
    "train default: lstm H128 B32 T64": TrainConfig(),
    "gru H128 B32 T64": TrainConfig(cell="gru"),
    "rnn H128 B32 T64": TrainConfig(cell="rnn"),
    "lstm H256 B64 T64": TrainConfig(hidden_size=256, batch_size=64),
}
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
GPU_CONFIGS = {  # the rows of the GPU target (issue 17)
    "demo: lstm H192 E32 B32 T64": TrainConfig(hidden_size=192, embed_size=32, batch_size=32, seq_len=64),
    "lstm H512 x2 B64 T100": TrainConfig(hidden_size=512, num_layers=2, batch_size=64, seq_len=100),
    "gru H256 B128 T64": TrainConfig(cell="gru", hidden_size=256, batch_size=128),
}


def ours(config, corpus, batches):
    task, model, opt, _ = build(config, corpus)
    params = list(model.parameters())

    def step():
        loss = task.loss(model, next(batches))
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(params, config.clip)
        opt.step()
    return step, model.state_dict()


def theirs(torch, config, vocab_size, weights, batches):
    embed = config.embed_size or config.hidden_size
    layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[config.cell]
    device = config.device

    class CharLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(vocab_size, embed)
            self.rnn = layer(embed, config.hidden_size, num_layers=config.num_layers)
            self.head = torch.nn.Linear(config.hidden_size, vocab_size)

        def forward(self, ids):
            return self.head(self.rnn(self.embedding(ids))[0])

    model = CharLM()
    model.load_state_dict({k: torch.tensor(v) for k, v in weights.items()})
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)

    def step():
        x, y = (torch.from_numpy(a).to(device) for a in next(batches))
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, vocab_size), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        opt.step()
    step.model, step.optimizer = model, opt
    return step


def reexec_for_blas(blas):
    """native: start again without the variables that force OpenBLAS's kernels (they count at load only)."""
    if blas == "native" and any(name in os.environ for name in BLAS_VARIABLES):
        env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def blas_setting():
    return ", ".join(f"{name}={os.environ.get(name, 'unset')}" for name in BLAS_VARIABLES)


def synchronised(step, device):
    """The step followed by a wait for the GPU (both libraries' streams), so its time is the step's."""
    if device == "cpu":
        return step
    import cupy
    import torch

    def run():
        step()
        cupy.cuda.get_current_stream().synchronize()
        torch.cuda.synchronize()
    return run


def measure(configs, device, threads, steps, warmup, clock="wall"):
    """{label: (ours ms, torch ms, (ratio, its first and third quartile))} for every config, in this
    process: median step times, and the median of the two libraries' ratios round by round."""
    import torch
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    corpus = CharCorpus.default()
    times = {}
    with blas_threads(threads if device == "cpu" else 0):
        for label, config in configs.items():
            config = dataclasses.replace(config, device=device)
            task = make_task(config, corpus)
            batches = [task.batch() for _ in range(warmup + steps)]
            step, weights = ours(config, corpus, iter(batches))
            runs = {"ours": synchronised(step, device),
                    "torch": synchronised(theirs(torch, config, corpus.vocab_size, weights, iter(batches)), device)}
            rounds = interleaved_times(runs, warmup=warmup, repeats=steps, clock=CLOCKS[clock])
            ms = {name: statistics.median(t) for name, t in rounds.items()}
            times[label] = (ms["ours"], ms["torch"], paired_ratio(rounds["ours"], rounds["torch"]))
            print(f"  {label}: ours {ms['ours']:.1f} ms, torch {ms['torch']:.1f} ms", file=sys.stderr, flush=True)
    return times


def native_run(args):
    """The CPU ratios of a child process without the OpenBLAS variables, or None where none is set."""
    if not any(name in os.environ for name in BLAS_VARIABLES):
        return None
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    command = [sys.executable, os.path.abspath(__file__), "--json", "--threads", str(args.threads),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--clock", args.clock]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return {label: (mine, reference, tuple(ratio))
            for label, (mine, reference, ratio) in json.loads(out.splitlines()[-1]).items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=25, help="timed steps per library and config")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="threads of NumPy's BLAS and of torch (CPU)")
    parser.add_argument("--blas", default="as-is", choices=["as-is", "native"],
                        help="native: run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS),
                        help="cpu: this process's CPU time per step (steadier on a busy machine; CPU only)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # the native child's output
    args = parser.parse_args()
    reexec_for_blas(args.blas)
    import torch
    torch.set_num_threads(args.threads)
    configs = GPU_CONFIGS if args.device == "cuda" else CONFIGS
    if args.device == "cuda":
        import tinygrad_rnn
        if not tinygrad_rnn.cuda_available():
            sys.exit("--device cuda: CuPy with a working GPU is needed")
    if args.device == "cuda" and args.clock == "cpu":
        sys.exit("--clock cpu times the host only; a GPU step needs wall time")
    if args.json:
        print(json.dumps(measure(configs, args.device, args.threads, args.steps, args.warmup, args.clock)))
        return
    where = (f"NumPy BLAS and torch on {args.threads} thread(s)" if args.device == "cpu"
             else "GPU, TF32 off on both sides")
    print(f"{machine()}; {blas_setting()}; {where}; float32; median {args.clock} time of {args.steps} steps "
          f"after {args.warmup} warm-up; ours/torch: the median of the ratios round by round (one step of each)",
          flush=True)
    times = measure(configs, args.device, args.threads, args.steps, args.warmup, args.clock)
    native = native_run(args) if args.device == "cpu" else None
    headers = ["config", "ours chars/s", "torch chars/s", "ours ms/step", "torch ms/step", "ours/torch time",
               "quartiles"]
    if native:
        headers.append("ours/torch, native BLAS")
    rows = []
    for label, (mine, reference, (ratio, q1, q3)) in times.items():
        config = configs[label]
        chars = config.batch_size * config.seq_len
        row = [label, f"{chars * 1e3 / mine:,.0f}", f"{chars * 1e3 / reference:,.0f}", format_ms(mine),
               format_ms(reference), f"{ratio:.2f}", f"{q1:.2f} to {q3:.2f}"]
        if native:
            row.append(f"{native[label][2][0]:.2f}")
        rows.append(row)
    print(table(headers, rows))
    if args.device == "cpu" and not native:
        print("\n(no OpenBLAS variable is set: this run is the native-BLAS figure)")


if __name__ == "__main__":
    main()
