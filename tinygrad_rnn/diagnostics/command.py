"""`python -m tinygrad_rnn diagnose`: the gradient diagnostics of one recurrent layer, as text.

The layer is a fresh one (--cell, --hidden-size, --input-size, --num-layers) or the one inside a
checkpoint (--checkpoint; its shape is read from the saved weights), run over --seq-len steps. The report gives the spectral radius of
its recurrent weight, how strongly output(t) still depends on the first input, and how far back a
loss on the last step reaches; --figures DIR also draws them.
"""
import argparse
import re
import sys

import numpy as np

from .. import backend, nn
from ..checkpoint import CheckpointError, load_checkpoint
from ..data.tasks import adding_problem
from ..factory import manual_seed
from ..spellings import add_option, old_spelling_notes, spelling
from .report import diagnose, format_report

LAYERS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
CELL_OF_GATES = {1: "rnn", 3: "gru", 4: "lstm"}
FRESH_DEFAULTS = {"cell": "lstm", "hidden_size": 32, "input_size": 2, "num_layers": 1}
DESCRIPTION = ("The gradient diagnostics of a recurrent layer, fresh or from a checkpoint: the spectral radius "
               "of its recurrent weight, how strongly output(t) still depends on the first input, and how far "
               "back a loss on the last output reaches.")
_RECURRENT_KEY = re.compile(r"^(weight|bias)_(ih|hh)_l(\d+)(_reverse)?$")


def add_arguments(parser):
    """Add the diagnose options to an argparse (sub)parser."""
    parser.description = parser.description or DESCRIPTION
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="a .npz checkpoint; its recurrent layer is diagnosed (default: a fresh layer)")
    parser.add_argument("--module", metavar="NAME",
                        help="in a checkpoint with several recurrent layers, the one to use (e.g. 'rnn')")
    fresh = parser.add_argument_group("a fresh layer (not with --checkpoint)")
    add_option(fresh, "--cell", choices=sorted(LAYERS), help=f"rnn, lstm or gru (default: {FRESH_DEFAULTS['cell']})")
    add_option(fresh, "--hidden-size", "--hidden", type=_positive, metavar="N",
               help=f"hidden units per layer (default: {FRESH_DEFAULTS['hidden_size']})")
    add_option(fresh, "--input-size", type=_positive, metavar="N",
               help=f"input features (default: {FRESH_DEFAULTS['input_size']}: adding-problem inputs)")
    add_option(fresh, "--num-layers", "--layers", type=_positive, metavar="N",
               help=f"stacked layers (default: {FRESH_DEFAULTS['num_layers']})")
    add_option(fresh, "--forget-bias", type=float, metavar="B",
               help="LSTM: start the forget gate's total bias at B (1 or 2 help it remember; default: PyTorch's "
                    "initialisation)")
    parser.add_argument("--nonlinearity", choices=("tanh", "relu"), default="tanh",
                        help="RNN only (a checkpoint does not record it) (default: %(default)s)")
    add_option(parser, "--seq-len", "--steps", type=_positive, default=100, metavar="T",
               help="time steps of the input sequence the layer runs over (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seeds the fresh weights and the inputs (default: %(default)s)")
    parser.add_argument("--device", choices=backend.DEVICES, default="cpu",
                        help="cpu (NumPy) or cuda (CuPy) (default: %(default)s)")
    parser.add_argument("--figures", metavar="DIR", help="also write the figures (diagnose.png) into DIR; "
                                                         "needs matplotlib")
    parser.add_argument("--blas-threads", type=int, default=1, metavar="N",
                        help="threads NumPy's BLAS may use; 1 is fastest for a recurrent step's small products; "
                             "0 keeps the library's own setting (default: %(default)s)")
    return parser


def run(args):
    """Build or load the layer, print the report, draw the figures if asked. Returns an exit code."""
    manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    if args.checkpoint:
        layer, title, embedding, meta = _from_checkpoint(args)
    else:
        layer, title = _fresh(args)
        embedding, meta = None, {}
    x, inputs = _inputs(layer, args.seq_len, embedding, meta, rng)
    results = diagnose(layer, x)
    print(format_report(title, inputs, results))
    if args.figures:
        from .plots import draw_report
        paths = draw_report(results, title, args.figures)
        print("figures: " + ", ".join(paths))
    return 0


# --------------------------------------------------------------------------- the layer

def _fresh(args):
    options = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in FRESH_DEFAULTS.items()}
    cell = options["cell"]
    if args.forget_bias is not None and cell != "lstm":
        raise ValueError(f"--forget-bias applies to an LSTM, not to --cell {cell}")
    extra = ({"nonlinearity": args.nonlinearity} if cell == "rnn" else
             {"forget_bias": args.forget_bias} if cell == "lstm" else {})
    layer = getattr(nn, LAYERS[cell])(options["input_size"], options["hidden_size"], num_layers=options["num_layers"],
                                      dtype="float64", device=args.device, **extra)
    title = (f"{LAYERS[cell]}(input {options['input_size']}, hidden {options['hidden_size']}, "
             f"{options['num_layers']} layer{'s' if options['num_layers'] > 1 else ''}), fresh (seed {args.seed})")
    if args.forget_bias is not None:
        title += f", forget bias {args.forget_bias:g}"
    return layer, title


def _from_checkpoint(args):
    given = [spelling(args, k) for k in (*FRESH_DEFAULTS, "forget_bias") if getattr(args, k) is not None]
    if given:
        raise ValueError(f"{', '.join(given)} describe a fresh layer; a checkpoint's layer has its own "
                         f"shape, so leave them out with --checkpoint")
    saved = load_checkpoint(args.checkpoint)
    state, meta = saved["model"], saved["meta"] or {}
    prefix = _layer_prefix(state, args.module, args.checkpoint)
    own = {key[len(prefix):]: value for key, value in state.items()
           if key.startswith(prefix) and _RECURRENT_KEY.match(key[len(prefix):])}
    hidden = own["weight_hh_l0"].shape[1]
    cell = CELL_OF_GATES.get(own["weight_hh_l0"].shape[0] // hidden)
    if cell is None or f"{prefix}weight_hr_l0" in state:
        raise CheckpointError(f"{prefix}weight_hh_l0 of shape {own['weight_hh_l0'].shape} is not an RNN, GRU "
                              f"or LSTM weight this command can rebuild (LSTMs with proj_size are not)")
    layers = 1 + max(int(_RECURRENT_KEY.match(k).group(3)) for k in own)
    extra = {"nonlinearity": args.nonlinearity} if cell == "rnn" else {}
    layer = getattr(nn, LAYERS[cell])(own["weight_ih_l0"].shape[1], hidden, num_layers=layers,
                                      bias="bias_ih_l0" in own, bidirectional="weight_hh_l0_reverse" in own,
                                      dtype="float64", device=args.device, **extra)
    layer.load_state_dict(own)
    step = meta.get("step")
    title = (f"{LAYERS[cell]}(input {own['weight_ih_l0'].shape[1]}, hidden {hidden}, {layers} "
             f"layer{'s' if layers > 1 else ''}) '{prefix.rstrip('.') or 'the model'}' of {args.checkpoint}"
             + (f" (step {step})" if step is not None else ""))
    parent = prefix[:prefix.rstrip(".").rfind(".") + 1]  # "model.rnn." -> "model.", "rnn." -> ""
    embedding = state.get(parent + "embedding.weight")
    return layer, title, embedding, meta


def _layer_prefix(state, module, path):
    """The dotted prefix ('' or 'rnn.') of the recurrent layer's weights in a state dict."""
    prefixes = sorted(key[:-len("weight_hh_l0")] for key in state if key.endswith("weight_hh_l0")
                      and (key == "weight_hh_l0" or key.endswith(".weight_hh_l0")))
    if module is not None:
        wanted = module.rstrip(".") + "." if module else ""
        if wanted not in prefixes:
            raise CheckpointError(f"{path} has no recurrent layer {module!r}; it has "
                                  f"{[p.rstrip('.') or '(top level)' for p in prefixes] or 'none'}")
        return wanted
    if len(prefixes) != 1:
        found = [p.rstrip(".") or "(top level)" for p in prefixes]
        raise CheckpointError(f"{path} holds {len(prefixes)} recurrent layers {found}; choose one with --module"
                              if prefixes else f"{path} holds no recurrent layer (no '*weight_hh_l0' entry)")
    return prefixes[0]


# --------------------------------------------------------------------------- the inputs

def _inputs(layer, steps, embedding, meta, rng):
    """An input sequence (T, 1, I) that fits the layer, and words saying what it is."""
    size = layer.input_size
    task = (meta.get("config") or {}).get("task")
    if embedding is not None and embedding.shape[1] == size and task != "adding":
        ids = rng.integers(0, embedding.shape[0], size=(steps, 1))
        return embedding[ids].astype(np.float64), f"the embeddings of {steps} random tokens"
    if size == 2:
        x, _ = adding_problem(1, steps, rng=rng, dtype=np.float64)
        return x, f"one adding-problem sequence of {steps} steps"
    return rng.standard_normal((steps, 1, size)), f"{steps} steps of standard normal noise"


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv=None):
    """Run without the package's CLI: `python -m tinygrad_rnn.diagnostics.command --cell rnn`."""
    from ..train.threads import blas_threads
    prog = "python -m tinygrad_rnn.diagnostics.command"
    args = add_arguments(argparse.ArgumentParser(prog=prog)).parse_args(argv)
    for note in old_spelling_notes(args, prog):
        print(note, file=sys.stderr)
    try:
        with blas_threads(args.blas_threads):
            return run(args)
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"diagnose: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
