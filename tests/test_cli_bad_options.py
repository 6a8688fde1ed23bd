"""Every option of every command set to a bad value: exit status 2, one line on stderr that names the
option, no traceback, and nothing written or changed in the folder the command runs in.

The table must cover every option the parser knows (test_the_table_covers_every_option), so an
option added later without a bad-value case here fails the suite.
"""
import argparse
import hashlib
import os
import re
import subprocess
import sys

import pytest

from tinygrad_rnn.cli import build_parser, main
from tinygrad_rnn.data import CharCorpus
from tinygrad_rnn.train import TrainConfig, train

TEXT = "to be or not to be, that is the question. " * 30
# each command's cases start from these, so that a bad value that slipped through would still end fast
# (and fail the test by writing into the folder)
QUICK = {"demo": ["--steps", "1", "--no-progress"], "sample": ["--length", "5"], "diagnose": ["--seq-len", "5"]}
TINY = ["--hidden-size", "4", "--embed-size", "2", "--batch-size", "2", "--seq-len", "4", "--steps", "1",
        "--eval-chars", "64", "--no-progress", "--sample-length", "0", "--text", "text.txt"]

QUICK["train"] = TINY

# (argv, the option the error must name)
CASES = [
    (["train", "--task", "speech"], "--task"),
    (["train", "--cell", "lsmt"], "--cell"),
    (["train", "--hidden-size", "0"], "--hidden-size"),
    (["train", "--hidden-size", "many"], "--hidden-size"),
    (["train", "--hidden-size", "10000000"], "--hidden-size"),
    (["train", "--embed-size", "-1"], "--embed-size"),
    (["train", "--num-layers", "0"], "--num-layers"),
    (["train", "--dropout", "1"], "--dropout"),
    (["train", "--dropout", "nan"], "--dropout"),
    (["train", "--fused=yes"], "--fused"),
    (["train", "--no-fused=yes"], "--no-fused"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--batch-size", "16", "--text", "short.txt"], "--batch-size"),
    (["train", "--batch-size", "300", "--stateful"], "--batch-size"),
    (["train", "--seq-len", "0"], "--seq-len"),
    (["train", "--seq-len", "5000"], "--seq-len"),
    (["train", "--stateful=yes"], "--stateful"),
    (["train", "--no-stateful=yes"], "--no-stateful"),
    (["train", "--T", "1"], "--T"),
    (["train", "--task", "adding", "--seq-len", "1"], "--seq-len"),  # the adding problem's T
    (["train", "--task", "adding", "--T", "1000000000000"], "--T"),
    (["train", "--delay", "0"], "--delay"),
    (["train", "--text", "missing.txt"], "--text"),
    (["train", "--text", "folder"], "--text"),
    (["train", "--text", "latin1.txt"], "--text"),
    (["train", "--text", "empty.txt"], "--text"),
    (["train", "--optimizer", "lbfgs"], "--optimizer"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "-0.1"], "--lr"),
    (["train", "--lr", "1e999"], "--lr"),
    (["train", "--momentum", "-1"], "--momentum"),
    (["train", "--weight-decay", "inf"], "--weight-decay"),
    (["train", "--clip", "nan"], "--clip"),
    (["train", "--schedule", "linear"], "--schedule"),
    (["train", "--steps", "0"], "--steps"),
    (["train", "--steps", "2.5"], "--steps"),
    (["train", "--eval-every", "0"], "--eval-every"),
    (["train", "--eval-chars", "0"], "--eval-chars"),
    (["train", "--eval-chars", "3"], "--eval-chars"),
    (["train", "--eval-sequences", "0"], "--eval-sequences"),
    (["train", "--task", "copy", "--eval-sequences", "100000000000"], "--delay"),
    (["train", "--device", "tpu"], "--device"),
    (["train", "--dtype", "float16"], "--dtype"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--seed", "99999999999999999999"], "--seed"),
    (["train", "--checkpoint", "lm.npz"], "--checkpoint"),  # exists: needs --resume or --overwrite
    (["train", "--checkpoint", "folder"], "--checkpoint"),
    (["train", "--checkpoint", "afile/run.npz"], "--checkpoint"),
    (["train", "--checkpoint", "garbage.npz", "--resume"], "--checkpoint"),
    (["train", "--checkpoint", "lm.npz", "--resume", "--hidden-size", "16"], "--hidden-size"),
    (["train", "--checkpoint", "lm.npz", "--resume", "--optimizer", "sgd"], "--optimizer"),
    (["train", "--resume"], "--resume"),
    (["train", "--resume=yes"], "--resume"),
    (["train", "--checkpoint", "lm.npz", "--resume", "--overwrite"], "--overwrite"),
    (["train", "--overwrite=yes"], "--overwrite"),
    (["train", "--out", "afile"], "--out"),
    (["train", "--out", "afile/sub"], "--out"),
    (["train", "--out", "lmrun"], "--out"),  # holds a run's checkpoint: needs --resume or --overwrite
    (["train", "--out", "outputs"], "--out"),  # holds another run's metrics.csv and loss.png
    (["train", "--out", "lmrun", "--resume", "--hidden-size", "16"], "--hidden-size"),
    (["train", "--sample-length", "-1"], "--sample-length"),
    (["train", "--no-progress=yes"], "--no-progress"),
    (["train", "--blas-threads", "-1"], "--blas-threads"),
    (["train", "--blas-threads", "100000"], "--blas-threads"),
    (["train", "--help=yes"], "--help"),

    (["sample"], "--checkpoint"),
    (["sample", "--checkpoint", "missing.npz"], "--checkpoint"),
    (["sample", "--checkpoint", "garbage.npz"], "--checkpoint"),
    (["sample", "--checkpoint", "folder"], "--checkpoint"),
    (["sample", "--checkpoint", "text.txt"], "--checkpoint"),
    (["sample", "--checkpoint", "adding.npz"], "--checkpoint"),  # not a language model
    (["sample", "--checkpoint", "lm.npz", "--prime", ""], "--prime"),
    (["sample", "--checkpoint", "lm.npz", "--prime", "Zebra"], "--prime"),
    (["sample", "--checkpoint", "lm.npz", "--length", "0"], "--length"),
    (["sample", "--checkpoint", "lm.npz", "--temperature", "nan"], "--temperature"),
    (["sample", "--checkpoint", "lm.npz", "--temperature", "-1"], "--temperature"),
    (["sample", "--checkpoint", "lm.npz", "--seed", "-1"], "--seed"),
    (["sample", "--checkpoint", "lm.npz", "--device", "tpu"], "--device"),
    (["sample", "--help=yes"], "--help"),

    (["graph", "--checkpoint", "missing.npz"], "--checkpoint"),
    (["graph", "--checkpoint", "garbage.npz"], "--checkpoint"),
    (["graph", "--task", "speech"], "--task"),
    (["graph", "--cell", "lsmt"], "--cell"),
    (["graph", "--hidden-size", "0"], "--hidden-size"),
    (["graph", "--embed-size", "-1"], "--embed-size"),
    (["graph", "--num-layers", "0"], "--num-layers"),
    (["graph", "--seed", "-1"], "--seed"),
    (["graph", "--steps", "0"], "--steps"),
    (["graph", "--seq-len", "0"], "--seq-len"),
    (["graph", "--device", "tpu"], "--device"),
    (["graph", "--view", "sideways"], "--view"),
    (["graph", "--detail", "atoms"], "--detail"),
    (["graph", "--expand-fused=yes"], "--expand-fused"),
    (["graph", "--no-expand-fused=yes"], "--no-expand-fused"),
    (["graph", "--out", "graph.txt"], "--out"),
    (["graph", "--out", "folder"], "--out"),
    (["graph", "--out", "afile/graph.svg"], "--out"),
    (["graph", "--help=yes"], "--help"),

    (["diagnose", "--checkpoint", "missing.npz"], "--checkpoint"),
    (["diagnose", "--checkpoint", "garbage.npz"], "--checkpoint"),
    (["diagnose", "--module", "rnn"], "--module"),  # needs --checkpoint
    (["diagnose", "--checkpoint", "lm.npz", "--module", "decoder"], "--module"),
    (["diagnose", "--cell", "lsmt"], "--cell"),
    (["diagnose", "--hidden", "0"], "--hidden"),
    (["diagnose", "--hidden-size", "0"], "--hidden-size"),
    (["diagnose", "--input-size", "0"], "--input-size"),
    (["diagnose", "--layers", "0"], "--layers"),
    (["diagnose", "--num-layers", "0"], "--num-layers"),
    (["diagnose", "--forget-bias", "nan"], "--forget-bias"),
    (["diagnose", "--nonlinearity", "sigmoid"], "--nonlinearity"),
    (["diagnose", "--steps", "0"], "--steps"),
    (["diagnose", "--seq-len", "0"], "--seq-len"),
    (["diagnose", "--device", "tpu"], "--device"),
    (["diagnose", "--seed", "-1"], "--seed"),
    (["diagnose", "--figures", "afile"], "--figures"),
    (["diagnose", "--blas-threads", "-1"], "--blas-threads"),
    (["diagnose", "--help=yes"], "--help"),

    (["demo", "--out", "afile"], "--out"),
    (["demo", "--out", "folder"], "--out"),  # its model.npz is a folder
    (["demo", "--out", "outputs"], "--out"),  # holds another run's outputs
    (["demo", "--overwrite=yes"], "--overwrite"),
    (["demo", "--steps", "0"], "--steps"),
    (["demo", "--device", "tpu"], "--device"),
    (["demo", "--seed", "-1"], "--seed"),
    (["demo", "--no-progress=yes"], "--no-progress"),
    (["demo", "--blas-threads", "-1"], "--blas-threads"),
    (["demo", "--help=yes"], "--help"),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder holding the files the cases name: checkpoints, texts, a file where a folder belongs..."""
    root = tmp_path_factory.mktemp("cli")
    (root / "text.txt").write_text(TEXT, encoding="utf-8")
    (root / "short.txt").write_text(TEXT[:200], encoding="utf-8")
    (root / "latin1.txt").write_bytes("naïve café".encode("latin-1"))
    (root / "empty.txt").write_bytes(b"")
    (root / "afile").write_text("a file, not a folder\n")
    (root / "garbage.npz").write_bytes(b"PK\x03\x04" + bytes(300))
    (root / "folder").mkdir()
    (root / "folder" / "model.npz").mkdir()
    small = TrainConfig(hidden_size=4, embed_size=2, batch_size=2, seq_len=4, steps=1, eval_chars=64)
    train(small, checkpoint=str(root / "lm.npz"), progress=False, corpus=CharCorpus(TEXT), log=None)
    (root / "lmrun").mkdir()
    (root / "lmrun" / "model.npz").write_bytes((root / "lm.npz").read_bytes())
    (root / "outputs").mkdir()
    (root / "outputs" / "metrics.csv").write_text("step,loss\n")
    (root / "outputs" / "loss.png").write_bytes(b"")
    train(TrainConfig(task="adding", hidden_size=4, batch_size=2, T=4, steps=1, eval_sequences=4),
          checkpoint=str(root / "adding.npz"), progress=False, log=None)
    return root


def snapshot(root):
    """Every path under root with its size and a hash of its bytes."""
    found = {}
    for folder, names, files in os.walk(root):
        for name in names:
            found[os.path.join(folder, name)] = "folder"
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found[path] = hashlib.sha256(f.read()).hexdigest()
    return found


def run_cli(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, option", CASES, ids=[" ".join(argv) for argv, _ in CASES])
def test_a_bad_value_exits_2_naming_the_option_and_writes_nothing(workdir, monkeypatch, capsys, argv, option):
    monkeypatch.chdir(workdir)
    argv = [argv[0], *QUICK.get(argv[0], []), *argv[1:]]  # the last value given counts
    before = snapshot(workdir)
    code, _, err = run_cli(argv, capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    named = re.search(rf"argument [-\w/, ]*{re.escape(option)}\b(?!-)", lines[0])
    assert named or f"arguments are required: {option}" in lines[0], lines[0]
    assert snapshot(workdir) == before


def options_of(parser):
    """(command, option string) for every option of every subcommand."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {(name, option) for name, sub in commands.choices.items()
            for action in sub._actions for option in action.option_strings
            if option != "-h"}


def test_the_table_covers_every_option():
    covered = {(argv[0], option) for argv, option in CASES}
    missing = options_of(build_parser()) - covered
    assert not missing, f"options without a bad-value case in CASES: {sorted(missing)}"


@pytest.mark.parametrize("argv, option", [
    (["train", "--seed", "-1"], "--seed"),
    (["sample", "--checkpoint", "lm.npz", "--temperature", "nan"], "--temperature"),
    (["demo", "--out", "afile"], "--out"),
])
def test_a_bad_value_in_a_real_process(workdir, argv, option):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "tinygrad_rnn", *argv], cwd=workdir, capture_output=True,
                          text=True, timeout=120, env=env, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and f"argument {option}" in done.stderr, done.stderr
