"""The lecture's Elman network as a character language model on the Python documentation.

    h_t = tanh(U x_t + W h_{t-1} + b),   o_t = V h_t + c,   y_hat_t = softmax(o_t),   L = -sum_t log y_hat_t[y_t]

x_t is the one-hot vector of character t and y_t the character after it. Training takes random
windows of the text, backpropagates through each window (BPTT) and clips the gradient norm.

    python examples/elman_lm.py                 # about 15 seconds on 2 CPU cores
    python examples/elman_lm.py --device cuda   # the same on the GPU (CuPy)
"""
import argparse
import itertools

import tinygrad_rnn as tr
from tinygrad_rnn.data import CharCorpus, random_batches
from tinygrad_rnn.nn.elman import ElmanRNN
from tinygrad_rnn.nn.utils import clip_grad_norm_
from tinygrad_rnn.optim import Adam
from tinygrad_rnn.train import generate
from tinygrad_rnn.train.threads import blas_threads


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--hidden-size", "--hidden", dest="hidden", type=int, default=128, help="hidden units")
    parser.add_argument("--seq-len", type=int, default=32, help="characters per window (BPTT length)")
    parser.add_argument("--batch-size", "--batch", dest="batch", type=int, default=32, help="windows per batch")
    parser.add_argument("--steps", type=int, default=3000, help="optimizer steps")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    parser.add_argument("--clip", type=float, default=1.0, help="global gradient-norm clip")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cpu (NumPy) or cuda (CuPy)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the windows")
    args = parser.parse_args()

    tr.manual_seed(args.seed)
    corpus = CharCorpus.default()
    V = corpus.vocab_size
    model = ElmanRNN(V, args.hidden, V, device=args.device)   # U: (H, V), W: (H, H), V: (V, H)
    opt = Adam(model.parameters(), lr=args.lr)
    batches = random_batches(corpus.train_ids, args.batch, args.seq_len, rng=args.seed)

    print("before:", repr(generate(model, corpus.vocab, "The ", 80, rng=0)))
    for step, (x, y) in enumerate(itertools.islice(batches, args.steps), start=1):
        L, _ = model.loss(tr.Tensor(x, device=args.device), y)   # summed over steps and batch
        opt.zero_grad()
        (L / y.size).backward()                                   # mean per character
        clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        if step % 500 == 0:
            print(f"step {step:4d}  loss {L.item() / y.size:.3f} nats/char")
    print("after: ", repr(generate(model, corpus.vocab, "The ", 200, rng=0)))


if __name__ == "__main__":
    with blas_threads(1):  # small matrix products: one BLAS thread is fastest (see tinygrad_rnn/train/threads.py)
        main()
