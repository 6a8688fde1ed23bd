"""Where the milliseconds of one training step go, ours beside PyTorch, for every config of bench_train.py.

The step is bench_train.py's (Embedding -> recurrent layer -> Linear, cross-entropy, backward,
global-norm clipping, Adam), cut into phases timed one after another. Backward is split by the
part of the model whose node ran (each node's VJP timed on its own); "engine" is the rest of
backward: ordering the graph, handing gradients on, summing and copying them into `.grad`. The
forward phases include each op's recording; "recording" on its own line is that share (the time
in Function.apply outside the ops' own forward). Median over the timed steps, one thread. "minor
page faults" counts the process's per step (memory the allocator handed back and took again).

On a GPU (--device cuda, the GPU configs) every mark waits for both libraries' streams first, so
a phase's time is its device time plus what its launches cost the host; "recording" is host time.

    python bench/profile_train.py                    # every config
    python bench/profile_train.py --configs 0,4      # indices into bench_train.CONFIGS
    python bench/profile_train.py --device cuda      # bench_train.GPU_CONFIGS, synchronised marks
"""
import argparse
import dataclasses
import os
import resource
import statistics
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.bench_train import CONFIGS, GPU_CONFIGS, reexec_for_blas, theirs
from bench.common import machine, table
from tinygrad_rnn import autograd
from tinygrad_rnn.data import CharCorpus
from tinygrad_rnn.nn.utils import clip_grad_norm_
from tinygrad_rnn.tensor import Function
from tinygrad_rnn.train import build, make_task
from tinygrad_rnn.train.models import sequence_cross_entropy
from tinygrad_rnn.train.threads import blas_threads

PHASES = ("embedding", "layer", "head", "loss")
_sync = None  # on a GPU: waits for CuPy's and torch's streams
_clock = time.perf_counter


def faults():
    """The process's minor page faults so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def now():
    """A time mark; on a GPU, after the work launched so far has finished."""
    if _sync is not None:
        _sync()
    return _clock()


class Recorder:
    """Times Function.apply outside the ops' forward, and each node's VJP by the phase that recorded it."""

    def __init__(self):
        self.recording = 0.0
        self.vjp = defaultdict(float)
        self.nodes = defaultdict(int)
        self.phase_of = {}  # id(node) -> phase
        self.phase = None
        self.depth = 0

    def __enter__(self):
        self.saved_apply, self.saved_vjp = Function.__dict__["apply"], autograd._vjp
        recorder, original_apply, original_vjp = self, Function.apply.__func__, autograd._vjp

        def apply(cls, *inputs, **options):
            if recorder.depth:
                return original_apply(cls, *inputs, **options)
            recorder.depth += 1
            forward = cls.forward
            spent = [0.0]

            def timed_forward(node, *args, **kwargs):
                start = _clock()
                try:
                    return forward(node, *args, **kwargs)
                finally:
                    spent[0] += _clock() - start
            own = cls.__dict__.get("forward")
            start = _clock()
            cls.forward = timed_forward
            try:
                out = original_apply(cls, *inputs, **options)
            finally:
                if own is None:
                    del cls.forward
                else:
                    cls.forward = own
                recorder.depth -= 1
            recorder.recording += _clock() - start - spent[0]
            node = (out[0] if isinstance(out, tuple) else out)._ctx   # a pass gives several outputs
            if node is not None and recorder.phase is not None:
                recorder.phase_of[id(node)] = recorder.phase
                recorder.nodes[recorder.phase] += 1
            return out

        def vjp(node, *args):
            start = now()
            out = original_vjp(node, *args)
            self.vjp[self.phase_of.get(id(node), "other")] += now() - start
            return out

        Function.apply = classmethod(apply)
        autograd._vjp = vjp
        return self

    def __exit__(self, *exc):
        Function.apply = self.saved_apply
        autograd._vjp = self.saved_vjp


def profile_ours(config, corpus, batches, warmup, steps):
    task, model, opt, _ = build(config, corpus)
    params = list(model.parameters())
    rows = defaultdict(list)
    for k, (ids, targets) in enumerate(batches[:warmup + steps]):
        with Recorder() as rec:
            marks, faults_before = [now()], faults()
            x = task._tensor(ids)
            rec.phase = "embedding"
            e = model.embedding(x)
            marks.append(now())
            rec.phase = "layer"
            out, _ = model.rnn(e)
            marks.append(now())
            rec.phase = "head"
            logits = model.head(out)
            marks.append(now())
            rec.phase = "loss"
            loss = sequence_cross_entropy(logits, targets)
            marks.append(now())
            rec.phase = None
            opt.zero_grad()
            loss.backward()
            marks.append(now())
            clip_grad_norm_(params, config.clip)
            marks.append(now())
            opt.step()
            marks.append(now())
            faulted = faults() - faults_before
        if k < warmup:
            continue
        add_phases(rows, marks, faulted)
        backward = marks[5] - marks[4]
        for name in PHASES:
            rows[f"{name} backward"].append(rec.vjp.get(name, 0.0))
        rows["engine (backward minus VJPs)"].append(backward - sum(rec.vjp.values()))
        rows["recording (share of forward)"].append(rec.recording)
        rows["nodes"].append(sum(rec.nodes.values()))
    return {name: statistics.median(v) for name, v in rows.items()}


def profile_theirs(torch, config, vocab_size, weights, batches, warmup, steps):
    step = theirs(torch, config, vocab_size, weights, iter(batches))
    model, opt = step.model, step.optimizer
    rows = defaultdict(list)
    for k, (ids, targets) in enumerate(batches[:warmup + steps]):
        marks, faults_before = [now()], faults()
        x, y = torch.from_numpy(ids).to(config.device), torch.from_numpy(targets).to(config.device)
        e = model.embedding(x)
        marks.append(now())
        out = model.rnn(e)[0]
        marks.append(now())
        logits = model.head(out)
        marks.append(now())
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab_size), y.reshape(-1))
        marks.append(now())
        opt.zero_grad()
        loss.backward()
        marks.append(now())
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        marks.append(now())
        opt.step()
        marks.append(now())
        faulted = faults() - faults_before
        if k < warmup:
            continue
        add_phases(rows, marks, faulted)
        rows["backward (all)"].append(marks[5] - marks[4])
    return {name: statistics.median(v) for name, v in rows.items()}


def add_phases(rows, marks, faulted):
    """The rows both libraries' steps have, from the step's time marks: start, after each forward
    phase, after backward, clipping and the optimizer."""
    rows["minor page faults"].append(faulted)
    for name, lo, hi in zip(PHASES, marks, marks[1:]):
        rows[f"{name} forward"].append(hi - lo)
    rows["clip_grad_norm_"].append(marks[6] - marks[5])
    rows["Adam step"].append(marks[7] - marks[6])
    rows["step"].append(marks[7] - marks[0])


ORDER = ["embedding forward", "layer forward", "head forward", "loss forward", "recording (share of forward)",
         "embedding backward", "layer backward", "head backward", "loss backward", "engine (backward minus VJPs)",
         "backward (all)", "clip_grad_norm_", "Adam step", "step", "nodes", "minor page faults"]


def _cell(times, name):
    if name not in times:
        return ""
    return f"{times[name]:.0f}" if name in ("nodes", "minor page faults") else f"{times[name] * 1e3:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--configs", default=None, help="indices into the configs (bench_train.CONFIGS or "
                                                         "GPU_CONFIGS), e.g. 0,4")
    parser.add_argument("--blas", default="as-is", choices=["as-is", "native"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="cpu: this process's CPU time (steadier on a busy machine; CPU only)")
    args = parser.parse_args()
    reexec_for_blas(args.blas)
    global _clock, _sync
    _clock = time.process_time if args.clock == "cpu" and args.device == "cpu" else time.perf_counter
    import torch
    torch.set_num_threads(args.threads)
    configs = CONFIGS
    if args.device == "cuda":
        import tinygrad_rnn
        if not tinygrad_rnn.cuda_available():
            sys.exit("--device cuda: CuPy with a working GPU is needed")
        import cupy
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        _sync = lambda: (cupy.cuda.get_current_stream().synchronize(), torch.cuda.synchronize())
        configs = GPU_CONFIGS
    labels = list(configs)
    if args.configs:
        labels = [labels[int(i)] for i in args.configs.split(",")]
    corpus = CharCorpus.default()
    with blas_threads(args.threads):
        where = f"NumPy BLAS and torch on {args.threads} thread(s)" if args.device == "cpu" else "GPU, synchronised marks"
        print(f"{machine()}; {where}; ms ({args.clock} time), median of {args.steps} steps")
        for label in labels:
            config = dataclasses.replace(configs[label], device=args.device)
            task = make_task(config, corpus)
            batches = [task.batch() for _ in range(args.warmup + args.steps)]
            _, model, _, _ = build(config, corpus)
            weights = model.state_dict()
            ours = profile_ours(config, corpus, batches, args.warmup, args.steps)
            them = profile_theirs(torch, config, corpus.vocab_size, weights, batches, args.warmup, args.steps)
            rows = [[name, _cell(ours, name), _cell(them, name)] for name in ORDER if name in ours or name in them]
            print(f"\n{label}\n")
            print(table(["phase", "ours", "torch"], rows))


if __name__ == "__main__":
    main()
