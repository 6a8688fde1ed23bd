"""Per-op overhead of the engine beside PyTorch eager on the CPU, measured in the same run.

Two workloads, forward + backward: a chain of 10,000 small elementwise ops, and a 1,000-step
vanilla RNN with H = 16 (one matmul, add and tanh per step). Small arrays make the time per op
the cost of the framework itself, not of the arithmetic.
"""
import numpy as np
from common import median_ms

import tinygrad_rnn as tr

CHAIN_OPS = 10_000
RNN_STEPS, RNN_HIDDEN, RNN_BATCH = 1_000, 16, 4


def chain(lib, tensor, ops):
    """x -> tanh(x * a + b) repeated; ops counts primitives (3 per round)."""
    def run():
        x = tensor(np.full(8, 0.1), requires_grad=True)
        y = x
        for _ in range(ops // 3):
            y = (y * 0.9 + 0.01).tanh()
        y.sum().backward()
    return run


def rnn(tensor, matmul_t):
    rng = np.random.default_rng(0)
    w = tensor(rng.normal(0, 0.3, (RNN_HIDDEN, RNN_HIDDEN)), requires_grad=True)
    xs = [tensor(rng.normal(size=(RNN_BATCH, RNN_HIDDEN))) for _ in range(RNN_STEPS)]

    def run():
        h = tensor(np.zeros((RNN_BATCH, RNN_HIDDEN)))
        for x in xs:
            h = (matmul_t(h, w) + x).tanh()
        h.sum().backward()
    return run


def main():
    import torch
    torch.set_num_threads(1)

    def ours(values, requires_grad=False):
        return tr.Tensor(values, requires_grad=requires_grad)

    def theirs(values, requires_grad=False):
        return torch.tensor(values, dtype=torch.float32, requires_grad=requires_grad)

    rows = [
        (f"chain of {CHAIN_OPS} elementwise ops", CHAIN_OPS,
         chain(tr, ours, CHAIN_OPS), chain(torch, theirs, CHAIN_OPS)),
        (f"vanilla RNN, T={RNN_STEPS}, H={RNN_HIDDEN}", 3 * RNN_STEPS,
         rnn(ours, lambda h, w: h @ w), rnn(theirs, lambda h, w: h @ w)),
    ]
    print(f"{'workload (forward + backward)':38} {'ours ms':>9} {'torch ms':>9} {'ours us/op':>11} "
          f"{'torch us/op':>12} {'ratio':>6}")
    for label, n_ops, run_ours, run_torch in rows:
        a, b = median_ms(run_ours), median_ms(run_torch)
        print(f"{label:38} {a:9.1f} {b:9.1f} {a * 1e3 / n_ops:11.2f} {b * 1e3 / n_ops:12.2f} {a / b:6.2f}")


if __name__ == "__main__":
    main()
