"""Characters per second of character-level language-model training on the CPU, beside PyTorch.

One training step = forward over a (seq_len, batch) window, cross-entropy, backward, global-norm
clipping and an Adam update: the same model (Embedding -> recurrent layer -> Linear), the same
weights and the same batches in both libraries, the steps of the two run in turn (round-robin) in
the same process. Median step time after warm-up.

    python bench/bench_train.py               # BLAS and torch on 1 thread, as the CLI trains
    python bench/bench_train.py --threads 2
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.common import format_ms, interleaved_medians, machine, table
from tinygrad_rnn.data import CharCorpus
from tinygrad_rnn.nn.utils import clip_grad_norm_
from tinygrad_rnn.train import TrainConfig, build, make_task
from tinygrad_rnn.train.threads import blas_threads

CONFIGS = {  # label -> TrainConfig: the demo, the train command's defaults, the other cells, a bigger LSTM
    "demo: lstm H192 E32 B32 T64": TrainConfig(hidden_size=192, embed_size=32, batch_size=32, seq_len=64),
    "train default: lstm H128 B32 T64": TrainConfig(),
    "gru H128 B32 T64": TrainConfig(cell="gru"),
    "rnn H128 B32 T64": TrainConfig(cell="rnn"),
    "lstm H256 B64 T64": TrainConfig(hidden_size=256, batch_size=64),
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

    class CharLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(vocab_size, embed)
            self.rnn = layer(embed, config.hidden_size)
            self.head = torch.nn.Linear(config.hidden_size, vocab_size)

        def forward(self, ids):
            return self.head(self.rnn(self.embedding(ids))[0])

    model = CharLM()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)

    def step():
        x, y = (torch.from_numpy(a) for a in next(batches))
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, vocab_size), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        opt.step()
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15, help="timed steps per library and config")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="threads of NumPy's BLAS and of torch")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)

    corpus = CharCorpus.default()
    rows = []
    with blas_threads(args.threads):
        print(f"{machine()}; NumPy BLAS and torch on {args.threads} thread(s); float32; "
              f"median of {args.steps} steps after {args.warmup} warm-up", flush=True)
        for label, config in CONFIGS.items():
            task = make_task(config, corpus)
            batches = [task.batch() for _ in range(args.warmup + args.steps)]
            step, weights = ours(config, corpus, iter(batches))
            times = interleaved_medians(
                {"ours": step, "torch": theirs(torch, config, corpus.vocab_size, weights, iter(batches))},
                warmup=args.warmup, repeats=args.steps)
            chars = config.batch_size * config.seq_len
            rows.append([label, f"{chars * 1e3 / times['ours']:,.0f}", f"{chars * 1e3 / times['torch']:,.0f}",
                         format_ms(times["ours"]), format_ms(times["torch"]),
                         f"{times['ours'] / times['torch']:.2f}"])
            print(f"  {label}: done", file=sys.stderr, flush=True)
    print(table(["config", "ours chars/s", "torch chars/s", "ours ms/step", "torch ms/step", "ours/torch time"],
                rows))


if __name__ == "__main__":
    main()
