"""Truncated BPTT over a long text: the hidden state runs through the whole corpus.

The text is cut into B parallel streams (`batchify`) that are read in order, k characters at a
time. Each chunk is one update; its final state is detached and carried into the next chunk, so
the model sees an unbroken history while each backward pass stays k steps long.

    python examples/tbptt_text.py                 # about 15 seconds on 2 CPU cores
    python examples/tbptt_text.py --device cuda   # the same on the GPU (CuPy)
"""
import argparse

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn.data import CharCorpus, batchify
from tinygrad_rnn.optim import Adam
from tinygrad_rnn.tbptt import truncated_bptt
from tinygrad_rnn.train import CharLM, generate, sequence_cross_entropy
from tinygrad_rnn.train.threads import blas_threads


def validation_loss(model, data, k):
    """Nats per character on held-out text, read in order with the state carried."""
    total, state = 0.0, None
    with tr.no_grad():
        for start in range(0, len(data) - 1, k):
            x, y = data[start:start + k + 1][:-1], data[start + 1:start + k + 1]
            logits, state = model(x, state)
            total += sequence_cross_entropy(logits, y).item() * y.size
    return total / (len(data) - 1) / data.shape[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--cell", default="lstm", choices=["rnn", "lstm", "gru"], help="recurrent layer")
    parser.add_argument("--hidden-size", "--hidden", dest="hidden", type=int, default=128, help="hidden units")
    parser.add_argument("--k", type=int, default=32, help="truncation length: steps per backward pass")
    parser.add_argument("--batch-size", "--batch", dest="batch", type=int, default=16,
                        help="parallel streams through the text")
    parser.add_argument("--chunks", type=int, default=800, help="updates in all (at most one pass)")
    parser.add_argument("--report-every", type=int, default=100, help="updates between reports")
    parser.add_argument("--lr", type=float, default=4e-3, help="Adam's learning rate")
    parser.add_argument("--clip", type=float, default=1.0, help="global gradient-norm clip")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cpu (NumPy) or cuda (CuPy)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights")
    args = parser.parse_args()

    tr.manual_seed(args.seed)
    corpus = CharCorpus.default()
    stream = batchify(corpus.train_ids, args.batch)          # (n_steps, B): column b is one stream
    held_out = batchify(corpus.val_ids[:8192], 16)
    model = CharLM(corpus.vocab_size, args.hidden, embed_size=32, cell=args.cell, device=args.device)
    opt = Adam(model.parameters(), lr=args.lr)
    print(f"{args.batch} streams of {len(stream):,} characters, read in chunks of k = {args.k}")

    steps = min(args.chunks * args.k, len(stream) - 1)       # one pass over the text at most
    span = args.report_every * args.k                        # steps per stream between reports
    state = None
    for start in range(0, steps, span):
        part = stream[start:min(start + span, steps) + 1]
        losses, state = truncated_bptt(model, part[:-1], part[1:], args.k, sequence_cross_entropy, opt,
                                       state=state, clip_norm=args.clip)
        print(f"chunks {-(-(start + len(part) - 1) // args.k):5d}  train {np.mean(losses):.3f}  "
              f"validation {validation_loss(model, held_out, args.k):.3f} nats/char", flush=True)
    print(generate(model, corpus.vocab, "The ", 300, temperature=0.8, rng=0))


if __name__ == "__main__":
    with blas_threads(1):  # small matrix products: one BLAS thread is fastest (see tinygrad_rnn/train/threads.py)
        main()
