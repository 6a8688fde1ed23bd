"""Real-time recurrent learning against backpropagation through time, on the lecture's Elman RNN.

The lecture's model (tr.nn.ElmanRNN): a(t) = b + W h(t-1) + U x(t), h(t) = tanh(a(t)),
o(t) = c + V h(t), softmax, L = the summed negative log-likelihood. Two ways to its gradient:

- BPTT (reverse mode): run the T steps recording each one, then walk the record backwards from L.
  One pass for all parameters, but the record of every step is kept until the walk: memory grows
  with T.
- RTRL (forward mode): carry dh(t)/d theta forward with h(t) and add up dL(t)/d theta as the steps
  go: nothing of the past is kept, so memory stays flat in T, and the gradient is ready when the
  sequence ends (online). Here one forward-mode pass (tr.func.jvp) per parameter direction theta_k
  carries the tangent dh(t)/d theta_k; the classic algorithm carries all of them at once as an
  H x P matrix. Either way the work grows with the number of parameters P.

The script checks that both give the same gradient (to 1e-10, float64), measures the peak memory
(tracemalloc) and the time of each as T grows, and draws

  rtrl_vs_bptt.png   memory and time against T

    python examples/rtrl_vs_bptt.py          # about 10 seconds of CPU time
"""
import argparse
import gc
import os
import time
import tracemalloc

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import diagnostics as D
from tinygrad_rnn.diagnostics.plots import pyplot
from tinygrad_rnn.diagnostics.progress import progress
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.train.threads import blas_threads


def elman_problem(steps, hidden, symbols=4, seed=0):
    """An ElmanRNN over `symbols` one-hot symbols and a random sequence to predict: (model, loss).

    `loss(*params)` is L as a function of the model's parameters (in model.parameters() order),
    computed step by step from the model itself: each step keeps only the current state, so
    whatever memory a method needs for the past is its own.
    """
    tr.manual_seed(seed)
    model = tr.nn.ElmanRNN(symbols, hidden, symbols, dtype="float64")
    rng = np.random.default_rng(seed)
    inputs = np.eye(symbols)[rng.integers(0, symbols, steps)][:, None, :]  # (T, 1, symbols), one-hot
    x = [tr.Tensor(inputs[t:t + 1], dtype="float64") for t in range(steps)]
    targets = rng.integers(0, symbols, (steps, 1))

    def streamed_loss():
        h, total = None, 0
        for t in range(steps):
            o, h = model(x[t], h)  # one step of the lecture's model: o(t) and h(t)
            total = total + F.cross_entropy(o.reshape(1, symbols), targets[t], reduction="sum")
        return total
    return model, D.parameter_function(model, streamed_loss)


def bptt_gradient(model, loss):
    """dL/d theta by reverse mode: one recorded forward pass, one backward walk."""
    params = [p.detach() for p in model.parameters()]
    grads = tr.func.grad(loss, argnums=tuple(range(len(params))))(*params)
    return [g.numpy() for g in grads]


def rtrl_gradient(model, loss):
    """dL/d theta by forward mode: for each parameter entry theta_k one pass that pushes the tangent
    d h(t) / d theta_k forward through the steps; the tangent of L is dL/d theta_k."""
    params = [p.detach() for p in model.parameters()]
    grads = [np.zeros(p.shape) for p in params]
    for which, p in enumerate(params):
        for index in np.ndindex(p.shape):
            tangents = [tr.zeros(*q.shape, dtype="float64") for q in params]
            tangents[which].array[index] = 1.0
            _, derivative = tr.func.jvp(loss, params, tangents)
            grads[which][index] = derivative.item()
    return grads


def one_rtrl_pass(model, loss):
    """A single forward-mode pass (direction: the first entry of W): what RTRL holds at any moment."""
    params = [p.detach() for p in model.parameters()]
    tangents = [tr.zeros(*q.shape, dtype="float64") for q in params]
    tangents[1].array.flat[0] = 1.0
    return tr.func.jvp(loss, params, tangents)


def peak_bytes(fn, *args):
    """The most memory Python and NumPy held at once while fn ran, above what they held before.

    A first, untraced run fills Python's caches of small objects (free lists), which the traced
    run then reuses: otherwise what they keep would count as the method's own. Garbage left so far
    is collected before tracing, so that an automatic collection, which frees the traced run's own
    cycles, does not fall inside one measurement and not another.
    """
    fn(*args)
    gc.collect()
    tracemalloc.start()
    try:
        fn(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def seconds(fn, *args):
    """CPU seconds fn took (this process only: steady on a busy machine; BLAS runs on one thread)."""
    tic = time.process_time()
    fn(*args)
    return time.process_time() - tic


def largest_difference(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def measure(steps_list, hiddens, memory_hidden):
    """Peak memory (at hidden size `memory_hidden`) and time of both methods for each T."""
    result = {"steps": list(steps_list), "memory": {"BPTT": [], "RTRL": []}, "time": {}, "params": {},
              "memory_hidden": memory_hidden}
    with progress(len(steps_list) * (1 + 2 * len(hiddens)), "measuring") as bar:
        for steps in steps_list:
            model, loss = elman_problem(steps, memory_hidden)
            result["memory"]["BPTT"].append(peak_bytes(bptt_gradient, model, loss))
            result["memory"]["RTRL"].append(peak_bytes(one_rtrl_pass, model, loss))
            bar.update(1)
        for hidden in hiddens:
            model, _ = elman_problem(1, hidden)
            result["params"][hidden] = sum(p.numel() for p in model.parameters())
            for method, fn in (("BPTT", bptt_gradient), ("RTRL", rtrl_gradient)):
                times = result["time"].setdefault((method, hidden), [])
                for steps in steps_list:
                    times.append(seconds(fn, *elman_problem(steps, hidden)))
                    bar.update(1)
    return result


def draw(result, path):
    plt = pyplot()
    fig, (memory, timing) = plt.subplots(1, 2, figsize=(12.5, 5.4))
    steps = result["steps"]
    colors = {"BPTT": "#d62728", "RTRL": "#1f77b4"}
    hidden = result["memory_hidden"]
    for method, peaks in result["memory"].items():
        memory.plot(steps, np.array(peaks) / 1024, "-o", color=colors[method],
                    label=f"{method}, hidden {hidden} ({result['params'][hidden]} parameters)")
    bptt = np.array(result["memory"]["BPTT"])
    per_step = (bptt[-1] - bptt[0]) / (steps[-1] - steps[0]) / 1024
    memory.text(steps[0], bptt[-1] / 1024 * 0.7, f"BPTT: about {per_step:.0f} KiB more per step",
                color=colors["BPTT"], fontsize=9)
    memory.text(steps[-1], result["memory"]["RTRL"][-1] / 1024 + bptt[-1] / 1024 * 0.04,
                f"RTRL: about {np.mean(result['memory']['RTRL']) / 1024:.0f} KiB at every T", color=colors["RTRL"],
                fontsize=9, ha="right")
    memory.set_xlabel("sequence length T")
    memory.set_ylabel("peak memory while computing the gradient (KiB)")
    memory.set_title("memory: BPTT keeps every step for its backward walk;\nRTRL keeps only the present")
    memory.legend()
    memory.grid(True, alpha=0.3)
    for (method, hidden), times in result["time"].items():
        style = "-o" if hidden == max(h for _, h in result["time"]) else "--o"
        ratio = "" if method == "BPTT" else \
            f",\n{times[-1] / result['time'][('BPTT', hidden)][-1]:.0f} times BPTT's time at T = {steps[-1]}"
        timing.loglog(steps, times, style, color=colors[method],
                      label=f"{method}, hidden {hidden} ({result['params'][hidden]} parameters){ratio}")
    timing.set_xlabel("sequence length T (log scale: both grow in proportion to T)")
    timing.set_xticks(steps, [str(t) for t in steps])
    timing.minorticks_off()
    timing.set_ylabel("CPU seconds for the whole gradient")
    timing.set_title("time: RTRL takes one forward pass per parameter,\nBPTT one forward and one backward pass")
    timing.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    timing.grid(True, which="both", alpha=0.3)
    fig.suptitle("The gradient of the lecture's Elman RNN, by real-time recurrent learning (forward mode) "
                 "and by backpropagation through time (reverse mode)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=os.path.join("out", "rtrl_vs_bptt"),
                        help="where the PNG goes (--out docs redraws the README's figure)")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 40, 80], help="sequence lengths T")
    parser.add_argument("--hidden", type=int, nargs="+", default=[2, 4], help="hidden sizes to time")
    args = parser.parse_args()
    tic = time.perf_counter()
    with blas_threads(1):
        model, loss = elman_problem(12, 5)
        difference = largest_difference(rtrl_gradient(model, loss), bptt_gradient(model, loss))
        print(f"RTRL and BPTT gradients (T = 12, hidden 5, float64) differ by at most {difference:.1e}")
        if difference > 1e-10:
            raise SystemExit("they should agree to 1e-10")
        result = measure(args.steps, args.hidden, memory_hidden=max(args.hidden))
    for k, steps in enumerate(result["steps"]):
        print(f"T = {steps:4d}: peak memory BPTT {result['memory']['BPTT'][k] / 1024:8.1f} KiB, "
              f"RTRL {result['memory']['RTRL'][k] / 1024:6.1f} KiB")
    path = os.path.join(args.out, "rtrl_vs_bptt.png")
    os.makedirs(args.out, exist_ok=True)
    draw(result, path)
    print("wrote", os.path.normpath(path), f"in {time.perf_counter() - tic:.0f} s")


if __name__ == "__main__":
    main()
