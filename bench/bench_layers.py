"""Forward + backward of LSTM, GRU and RNN layers on the CPU, beside PyTorch, as ratios.

For each (B, I, H, T) of ../shared/ANCHORS.md, in float32: one layer over a full sequence, loss =
sum(output * dy), backward to every parameter. Timed round-robin in the same run: our op-by-op
layer (the graph that shows every gate), torch.nn.LSTM / GRU / RNN, and a loop of
torch.nn.LSTMCell / GRUCell / RNNCell (the same work one step at a time, as ours does it).

    python bench/bench_layers.py                     # every config, every layer
    python bench/bench_layers.py --configs 0,1 --layers lstm --repeats 3
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python bench/bench_layers.py   # one thread each, steadier on a busy machine
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tinygrad_rnn as tr
from bench.common import format_ms, interleaved_medians, machine, ratio, table

CONFIGS = [(32, 64, 128, 50), (64, 256, 256, 100), (64, 512, 512, 100), (256, 1024, 1024, 100)]
LAYERS = {"lstm": ("LSTM", "LSTMCell"), "gru": ("GRU", "GRUCell"), "rnn": ("RNN", "RNNCell")}


def ours(name, B, I, H, T, x, dy):
    layer = getattr(tr.nn, LAYERS[name][0])(I, H, fused=False)
    x, dy = tr.Tensor(x), tr.Tensor(dy)

    def run():
        layer.zero_grad()
        output, _ = layer(x)
        (output * dy).sum().backward()
    return run


def torch_layer(torch, name, B, I, H, T, x, dy):
    layer = getattr(torch.nn, LAYERS[name][0])(I, H)
    x, dy = torch.from_numpy(x), torch.from_numpy(dy)

    def run():
        layer.zero_grad(set_to_none=True)
        output, _ = layer(x)
        (output * dy).sum().backward()
    return run


def torch_cell_loop(torch, name, B, I, H, T, x, dy):
    cell = getattr(torch.nn, LAYERS[name][1])(I, H)
    x, dy = torch.from_numpy(x), torch.from_numpy(dy)
    lstm = name == "lstm"

    def run():
        cell.zero_grad(set_to_none=True)
        state = (torch.zeros(B, H), torch.zeros(B, H)) if lstm else torch.zeros(B, H)
        outputs = []
        for t in range(T):
            state = cell(x[t], state)
            outputs.append(state[0] if lstm else state)
        (torch.stack(outputs) * dy).sum().backward()
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(map(str, range(len(CONFIGS)))),
                        help="indices into " + str(CONFIGS))
    parser.add_argument("--layers", default=",".join(LAYERS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    import torch

    print(f"# Layers, forward + backward, float32, CPU, median of {args.repeats} after {args.warmup} warm-up")
    print(machine() + "\n")
    rows = []
    for index in map(int, args.configs.split(",")):
        B, I, H, T = CONFIGS[index]
        repeats = args.repeats if B * H * T < 10_000_000 else max(2, args.repeats // 2)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((T, B, I)).astype(np.float32)
        dy = rng.standard_normal((T, B, H)).astype(np.float32)
        for name in args.layers.split(","):
            tr.manual_seed(0)
            torch.manual_seed(0)
            ms = interleaved_medians({"ours": ours(name, B, I, H, T, x, dy),
                                      "torch": torch_layer(torch, name, B, I, H, T, x, dy),
                                      "loop": torch_cell_loop(torch, name, B, I, H, T, x, dy)},
                                     warmup=args.warmup, repeats=repeats)
            rows.append([f"{B},{I},{H},{T}", name.upper(), format_ms(ms["ours"]), format_ms(ms["torch"]),
                         format_ms(ms["loop"]), ratio(ms["ours"], ms["torch"]), ratio(ms["ours"], ms["loop"])])
            print(table(["B,I,H,T", "layer", "ours ms", "torch.nn ms", "torch cell loop ms",
                         "ours / torch.nn", "ours / cell loop"], rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(["B,I,H,T", "layer", "ours ms", "torch.nn ms", "torch cell loop ms", "ours / torch.nn",
                 "ours / cell loop"], rows))


if __name__ == "__main__":
    main()
