"""The command line end to end: --help, a short train run, sample, resume, graph and bad input."""
import csv
import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_rnn.checkpoint import load_checkpoint, save_checkpoint
from tinygrad_rnn.cli import TRAIN_OPTIONS, main
from tinygrad_rnn.data import CharCorpus
from tinygrad_rnn.train import TrainConfig, train

TINY = ["--hidden-size", "8", "--embed-size", "4", "--batch-size", "4", "--seq-len", "8", "--eval-chars", "64",
        "--no-progress"]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("to be or not to be, that is the question. " * 30, encoding="utf-8")
    return str(path)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for name in TRAIN_OPTIONS:
        assert "--" + name.replace("_", "-") in text
    for flag in ("--checkpoint", "--resume", "--out", "--sample-length"):
        assert flag in text
    for command in ("sample", "graph", "demo"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--" in capsys.readouterr().out


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "tinygrad_rnn", "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0
    assert all(command in done.stdout for command in ("train", "sample", "graph", "demo"))


def test_train_sample_and_resume(capsys, tmp_path, text_file):
    checkpoint, out = str(tmp_path / "lm.npz"), str(tmp_path / "out")
    code, stdout, _ = run(capsys, "train", "--text", text_file, "--steps", "4", "--eval-every", "2",
                          "--checkpoint", checkpoint, "--out", out, "--sample-length", "30", *TINY)
    assert code == 0
    assert "step 4: loss" in stdout and "chars/s" in stdout and "--- sample" in stdout
    assert os.path.getsize(os.path.join(out, "loss.png")) > 0
    assert os.path.exists(checkpoint)

    code, stdout, _ = run(capsys, "sample", "--checkpoint", checkpoint, "--prime", "to be", "--length", "25")
    assert code == 0 and stdout.startswith("to be") and len(stdout.rstrip("\n")) >= 25

    code, stdout, _ = run(capsys, "train", "--checkpoint", checkpoint, "--resume", "--steps", "6", "--out", out,
                          "--sample-length", "0", "--no-progress")
    assert code == 0 and "resumed from" in stdout and "step 6: loss" in stdout

    code, _, err = run(capsys, "train", "--checkpoint", checkpoint, "--resume", "--hidden-size", "16",
                       "--no-progress")
    assert code == 2 and "argument --hidden-size: differs from the checkpoint" in err
    assert len(err.strip().splitlines()) == 1


def test_sample_without_a_prime_starts_from_a_character_the_model_knows(capsys, tmp_path, text_file):
    checkpoint = str(tmp_path / "lm.npz")  # the text has no capital T, so the default "The " cannot start
    code, _, _ = run(capsys, "train", "--text", text_file, "--steps", "2", "--checkpoint", checkpoint,
                     "--out", str(tmp_path / "out"), "--sample-length", "0", *TINY)
    assert code == 0
    code, stdout, err = run(capsys, "sample", "--checkpoint", checkpoint, "--length", "10")
    assert code == 0, err
    vocab = CharCorpus(Path(text_file).read_text(encoding="utf-8")).vocab
    assert stdout.startswith(vocab[0]) and len(stdout.rstrip("\n")) == 11


def test_adding_task_runs(capsys, tmp_path):
    code, stdout, _ = run(capsys, "train", "--task", "adding", "--cell", "gru", "--T", "5", "--hidden-size", "4",
                          "--batch-size", "4", "--steps", "3", "--eval-sequences", "8", "--out", str(tmp_path),
                          "--no-progress")
    assert code == 0 and "predicting the mean 0.1667" in stdout and "seqs/s" in stdout


@pytest.mark.parametrize("argv,message", [
    (["train", "--cell", "lsmt"], "invalid choice: 'lsmt'"),
    (["train", "--steps", "many"], "argument --steps: must be an integer >= 1, got 'many'"),
    (["sample"], "the following arguments are required: --checkpoint"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_bad_arguments_give_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_bad_values_and_files_give_one_line(capsys, tmp_path, text_file):
    cases = [
        (["train", "--resume", "--no-progress"], "argument --resume: needs --checkpoint PATH"),
        (["sample", "--checkpoint", str(tmp_path / "nope.npz")], "argument --checkpoint: no checkpoint file: "),
        (["sample", "--checkpoint", text_file], "argument --checkpoint: " + text_file + " is not a valid checkpoint"),
        (["train", "--text", str(tmp_path / "missing.txt"), "--no-progress"],
         "argument --text: cannot read " + str(tmp_path / "missing.txt")),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, *argv)
        assert code == 2, argv
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_graph_of_a_fresh_model(capsys, tmp_path):
    pytest.importorskip("graphviz")
    if not any(os.access(os.path.join(d, "dot"), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep)):
        pytest.skip("Graphviz's dot program is not installed")
    path = str(tmp_path / "g.svg")
    code, stdout, _ = run(capsys, "graph", "--cell", "gru", "--steps", "2", "--out", path)
    assert code == 0 and path in stdout
    with open(path, encoding="utf-8") as f:
        assert "<svg" in f.read()


def test_graph_without_viz_says_what_to_install(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "viz", None)  # import viz now raises ImportError
    code, _, err = run(capsys, "graph", "--out", str(tmp_path / "g.svg"))
    assert code == 1 and "needs the viz package" in err and len(err.strip().splitlines()) == 1


def test_demo_writes_its_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "viz", None)  # the graph is skipped with a note
    out = str(tmp_path / "demo")
    code, stdout, _ = run(capsys, "demo", "--steps", "2", "--out", out, "--no-progress")
    assert code == 0
    assert "--- before training" in stdout and "--- after training" in stdout
    assert "note: the unrolled graph was skipped" in stdout and out in stdout
    assert sorted(os.listdir(out)) == ["loss.png", "metrics.csv", "model.npz", "samples.txt"]
    code, stdout, _ = run(capsys, "sample", "--checkpoint", os.path.join(out, "model.npz"), "--length", "20")
    assert code == 0 and stdout.startswith("The ")


def test_checkpoint_folder_is_created_and_an_existing_checkpoint_needs_overwrite(capsys, tmp_path, text_file):
    checkpoint = str(tmp_path / "runs" / "new" / "lm.npz")
    argv = ["train", "--text", text_file, "--steps", "2", "--checkpoint", checkpoint, "--out", str(tmp_path / "out"),
            "--sample-length", "0", *TINY]
    code, _, err = run(capsys, *argv)
    assert code == 0 and os.path.exists(checkpoint), err
    before = Path(checkpoint).read_bytes()
    code, _, err = run(capsys, *argv)
    assert code == 2 and "pass --resume to continue its run, or --overwrite to replace it" in err
    assert Path(checkpoint).read_bytes() == before
    code, _, _ = run(capsys, *argv, "--overwrite", "--seed", "1")
    assert code == 0 and Path(checkpoint).read_bytes() != before


def test_resume_shows_and_applies_a_new_lr_and_stops_at_the_steps_reached(capsys, tmp_path, text_file):
    checkpoint, out = str(tmp_path / "lm.npz"), str(tmp_path / "out")
    common = ["--checkpoint", checkpoint, "--out", out, "--sample-length", "0", "--no-progress"]
    code, _, _ = run(capsys, "train", "--text", text_file, "--steps", "4", "--eval-every", "2", *common, *TINY)
    assert code == 0
    code, stdout, _ = run(capsys, "train", "--resume", "--steps", "6", "--lr", "0.01", *common)
    assert code == 0 and "from step 4 to step 6" in stdout and "adam lr 0.01" in stdout
    assert "resuming with lr 0.01 (the checkpoint's run had 0.003)" in stdout
    assert load_checkpoint(checkpoint)["optimizer"]["param_groups"][0]["lr"] == 0.01
    before = Path(checkpoint).read_bytes()
    code, stdout, _ = run(capsys, "train", "--resume", "--steps", "3", *common)
    assert code == 0 and "is at step 6 already, which reaches --steps 3: nothing to train" in stdout
    assert "step 3:" not in stdout and Path(checkpoint).read_bytes() == before


def test_an_unreadable_checkpoint_says_permission_denied(capsys, monkeypatch, tmp_path):
    from tinygrad_rnn import archive
    path = str(tmp_path / "lm.npz")
    open(path, "wb").close()

    def refuse(file, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", file)

    monkeypatch.setattr(archive, "open", refuse, raising=False)
    code, _, err = run(capsys, "sample", "--checkpoint", path)
    assert code == 2 and f"argument --checkpoint: permission denied: {path}" in err


def closed_pipe_run(*argv):
    """Run the command line with its standard output a pipe whose reader has gone, as `... | head` leaves it."""
    process = subprocess.Popen([sys.executable, "-m", "tinygrad_rnn", *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    process.stdout.close()
    err = process.stderr.read().decode()
    process.stderr.close()
    return process.wait(timeout=120), err


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    code, err = closed_pipe_run("train", "--help")
    assert code in (0, 1) and err == ""  # argparse itself may drop the help text that cannot be written
    checkpoint = tmp_path / "lm.npz"
    train(TrainConfig(hidden_size=4, embed_size=2, batch_size=2, seq_len=4, steps=1, eval_chars=64),
          checkpoint=str(checkpoint), progress=False, corpus=CharCorpus("to be or not to be. " * 40))
    code, err = closed_pipe_run("sample", "--checkpoint", str(checkpoint), "--length", "3000", "--prime", "to")
    assert code == 1 and err == ""


# ------------------------------------------------------------------ run folders, metrics and logs

def test_each_run_gets_a_folder_of_its_own_with_its_checkpoint_metrics_and_curve(capsys, tmp_path, monkeypatch,
                                                                                   text_file):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--text", text_file, "--steps", "4", "--eval-every", "2", "--sample-length", "0", *TINY]
    folders = []
    for _ in range(2):
        code, stdout, _ = run(capsys, *argv)
        assert code == 0
        folders.append(next(line for line in stdout.splitlines() if line.startswith("run folder: "))[12:])
    assert folders[0] != folders[1] and all(f.startswith(os.path.join("out", "train", "")) for f in folders)
    for folder in folders:
        assert sorted(os.listdir(folder)) == ["loss.png", "metrics.csv", "model.npz"]
    code, _, _ = run(capsys, "sample", "--checkpoint", os.path.join(folders[0], "model.npz"), "--prime", "to")
    assert code == 0


def test_metrics_and_evaluation_lines_report_one_loss(capsys, tmp_path, text_file):
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, "train", "--text", text_file, "--steps", "6", "--eval-every", "3", "--out", str(out),
                          "--sample-length", "0", *TINY)
    assert code == 0
    history = load_checkpoint(str(out / "model.npz"))["meta"]["history"]
    first, second = np.mean(history["loss"][:3]), np.mean(history["loss"][3:])   # steps 1-3 and 4-6
    rows = list(csv.DictReader((out / "metrics.csv").read_text().splitlines()))
    assert [int(row["step"]) for row in rows] == [3, 6]
    assert [float(row["loss"]) for row in rows] == pytest.approx([first, second], rel=1e-5)
    assert float(rows[1]["val_loss"]) == pytest.approx(history["val_loss"][1], rel=1e-5)
    # the same number in the evaluation lines (printed without a terminal, where no bar is drawn) and the summary
    assert f"step 3/6: loss {first:.4f}" in stdout and f"step 6/6: loss {second:.4f}" in stdout
    assert f"step 6: loss {second:.4f}" in stdout and "\r" not in stdout


def test_a_resumed_run_continues_its_folder(capsys, tmp_path, text_file):
    out = str(tmp_path / "run")
    common = ["--out", out, "--sample-length", "0", "--no-progress"]
    assert run(capsys, "train", "--text", text_file, "--steps", "2", "--eval-every", "2", *common, *TINY)[0] == 0
    code, stdout, _ = run(capsys, "train", "--resume", "--steps", "4", *common)
    assert code == 0 and "from step 2 to step 4" in stdout
    rows = list(csv.DictReader(Path(out, "metrics.csv").read_text().splitlines()))
    assert [row["step"] for row in rows] == ["2", "4"]


def test_old_spellings_work_and_say_once_what_to_use(capsys, tmp_path):
    code, stdout, _ = run(capsys, "train", "--task", "adding", "--T", "5", "--hidden-size", "4", "--batch-size", "4",
                          "--steps", "2", "--eval-sequences", "8", "--out", str(tmp_path / "a"))
    err = capsys.readouterr().err
    assert code == 0
    assert load_checkpoint(str(tmp_path / "a" / "model.npz"))["meta"]["config"]["T"] == 5
    code, _, err = run(capsys, "diagnose", "--cell", "rnn", "--hidden", "3", "--steps", "6")
    assert code == 0
    assert err.splitlines() == ["tinygrad-rnn diagnose: note: --hidden is deprecated; use --hidden-size",
                                "tinygrad-rnn diagnose: note: --steps is deprecated; use --seq-len"]
    code, stdout, err = run(capsys, "diagnose", "--cell", "rnn", "--hidden-size", "3", "--seq-len", "6")
    assert code == 0 and err == "" and "RNN(input 2, hidden 3, 1 layer)" in stdout


def test_seq_len_is_the_adding_problems_length(capsys, tmp_path):
    code, _, _ = run(capsys, "train", "--task", "adding", "--seq-len", "7", "--hidden-size", "4", "--batch-size", "4",
                     "--steps", "1", "--eval-sequences", "8", "--out", str(tmp_path / "a"))
    assert code == 0 and load_checkpoint(str(tmp_path / "a" / "model.npz"))["meta"]["config"]["T"] == 7


def _as_if_trained_on_cuda(path):
    saved = load_checkpoint(path)
    saved["meta"]["config"]["device"] = "cuda"
    save_checkpoint(path, saved["model"], saved["optimizer"], saved["meta"])


def test_a_gpu_checkpoint_runs_on_the_cpu_where_cuda_is_missing(capsys, tmp_path, monkeypatch, text_file):
    from tinygrad_rnn import backend
    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    out = str(tmp_path / "run")
    assert run(capsys, "train", "--text", text_file, "--steps", "2", "--out", out, "--sample-length", "0", *TINY)[0] == 0
    checkpoint = os.path.join(out, "model.npz")
    _as_if_trained_on_cuda(checkpoint)
    note = "was trained on cuda, which is not available here (CuPy or a GPU is missing), so it runs on the cpu"
    code, stdout, _ = run(capsys, "sample", "--checkpoint", checkpoint, "--prime", "to", "--length", "5")
    assert code == 0 and note in stdout
    code, stdout, _ = run(capsys, "train", "--out", out, "--resume", "--steps", "3", "--no-progress",
                          "--sample-length", "0")
    assert code == 0 and note in stdout and "device cpu" in stdout


def test_graph_draws_a_gpu_checkpoint_on_the_cpu(capsys, tmp_path, monkeypatch, text_file):
    pytest.importorskip("graphviz")
    import viz
    from tinygrad_rnn import backend
    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    drawn = {}
    monkeypatch.setattr(viz, "render", lambda root, path, **options: drawn.setdefault("dot", viz.to_dot(root, **options))
                        and path)
    out = str(tmp_path / "run")
    assert run(capsys, "train", "--text", text_file, "--steps", "1", "--out", out, "--sample-length", "0", *TINY)[0] == 0
    _as_if_trained_on_cuda(os.path.join(out, "model.npz"))
    code, stdout, _ = run(capsys, "graph", "--checkpoint", os.path.join(out, "model.npz"), "--seq-len", "2",
                          "--out", str(tmp_path / "g.svg"))
    assert code == 0 and "so it runs on the cpu" in stdout and "rnn.weight_hh_l0" in drawn["dot"]


def test_ctrl_c_saves_the_step_it_stopped_at(capsys, tmp_path, monkeypatch, text_file):
    from tinygrad_rnn.train import loop
    calls = []

    def clip_and_press_ctrl_c(params, max_norm):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of step 3
        return clip(params, max_norm)

    clip = loop.clip_grad_norm_
    monkeypatch.setattr(loop, "clip_grad_norm_", clip_and_press_ctrl_c)
    out = str(tmp_path / "run")
    code, _, err = run(capsys, "train", "--text", text_file, "--steps", "50", "--eval-every", "100", "--out", out,
                       "--sample-length", "0", *TINY)
    assert code == 130 and f"holds step 3; continue with 'tinygrad-rnn train --out {out} --resume'" in err
    assert load_checkpoint(os.path.join(out, "model.npz"))["meta"]["step"] == 3


# ------------------------------------------------------------------ optional packages

def test_diagnose_figures_without_matplotlib_is_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, stdout, err = run(capsys, "diagnose", "--cell", "rnn", "--figures", str(tmp_path / "figures"))
    assert code == 2 and stdout == "" and len(err.strip().splitlines()) == 1
    assert 'argument --figures: drawing the figures needs the matplotlib package, which is not installed: ' \
           'pip install "tinygrad-rnn[train]" (in a source checkout: pip install -e ".[train]")' in err


def test_graph_without_the_graphviz_package_says_so_once(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    code, _, err = run(capsys, "graph", "--out", str(tmp_path / "g.svg"))
    assert code == 1 and len(err.strip().splitlines()) == 1 and err.count("graphviz") == 1
    assert 'pip install "tinygrad-rnn[viz]"' in err and not os.path.exists(tmp_path / "g.svg")


def test_no_loss_curve_without_matplotlib_is_one_line(capsys, monkeypatch, tmp_path, text_file):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, "train", "--text", text_file, "--steps", "1", "--out", str(out), "--sample-length",
                          "0", *TINY)
    assert code == 0 and sorted(os.listdir(out)) == ["metrics.csv", "model.npz"]
    notes = [line for line in stdout.splitlines() if "matplotlib" in line]
    assert notes == [('note: no loss curve was drawn: the loss curve needs the matplotlib package, which is not '
                      'installed: pip install "tinygrad-rnn[train]" (in a source checkout: pip install -e ".[train]")')]
