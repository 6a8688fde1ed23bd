import argparse
import os

import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import diagnostics as D
from tinygrad_rnn.checkpoint import CheckpointError, save_checkpoint
from tinygrad_rnn.diagnostics import command


def parse(*argv):
    """The options as the package CLI would hand them over, from a `diagnose` subparser."""
    parser = argparse.ArgumentParser(prog="tinygrad-rnn")
    command.add_arguments(parser.add_subparsers(dest="command").add_parser("diagnose"))
    return parser.parse_args(["diagnose", *argv])


def report_line(text, start):
    return next(line for line in text.splitlines() if line.startswith(start))


def test_fresh_layer_report(capsys):
    assert command.run(parse("--cell", "rnn", "--hidden", "4", "--steps", "12", "--seed", "3")) == 0
    text = capsys.readouterr().out
    assert text.startswith("RNN(input 2, hidden 4, 1 layer), fresh (seed 3)")
    assert "inputs: one adding-problem sequence of 12 steps" in text
    tr.manual_seed(3)
    radius = D.spectral_radius(tr.nn.RNN(2, 4, dtype="float64").weight_hh_l0)
    assert report_line(text, "spectral radius").endswith(f"h {radius:#.3g}")
    assert "t=12" in report_line(text, "sensitivity") and "t=12" in report_line(text, "gradient ||dL/dh(t)||")


def test_forget_bias_is_for_an_lstm(capsys):
    command.run(parse("--cell", "lstm", "--hidden", "3", "--steps", "8", "--forget-bias", "4"))
    text = capsys.readouterr().out
    assert "forget bias 4" in text and "gradient ||dL/dc(t)||" in text and "by gate:   i" in text
    with pytest.raises(ValueError, match="--forget-bias applies to an LSTM, not to --cell gru"):
        command.run(parse("--cell", "gru", "--forget-bias", "4"))


class Wrapped(tr.nn.Module):
    """A model holding its recurrent layer under a name, as the training code's models do."""

    def __init__(self, **layers):
        super().__init__()
        for name, layer in layers.items():
            setattr(self, name, layer)


def test_checkpoint_layer_is_rebuilt_from_its_weights(tmp_path, capsys):
    tr.manual_seed(1)
    gru = tr.nn.GRU(3, 5, num_layers=2)
    model = Wrapped(rnn=gru, head=tr.nn.Linear(5, 1))
    path = tmp_path / "model.npz"
    save_checkpoint(path, model.state_dict(), meta={"step": 40})
    command.run(parse("--checkpoint", str(path), "--steps", "10"))
    text = capsys.readouterr().out
    assert text.startswith(f"GRU(input 3, hidden 5, 2 layers) 'rnn' of {path} (step 40)")
    assert "inputs: 10 steps of standard normal noise" in text
    blocks = D.recurrent_weights(gru)
    expected = "   ".join(f"{gate} {D.spectral_radius(w):.3g}" for gate, w in blocks.items())
    assert report_line(text, "spectral radius").endswith(expected)


def test_checkpoint_with_an_embedding_feeds_embedded_tokens(tmp_path, capsys):
    model = Wrapped(embedding=tr.nn.Embedding(7, 4), rnn=tr.nn.LSTM(4, 3))
    path = tmp_path / "lm.npz"
    save_checkpoint(path, model.state_dict())
    command.run(parse("--checkpoint", str(path), "--steps", "6"))
    assert "inputs: the embeddings of 6 random tokens" in capsys.readouterr().out


def test_checkpoint_errors_name_the_problem(tmp_path):
    two = Wrapped(encoder=tr.nn.RNN(2, 3), decoder=tr.nn.RNN(3, 3))
    path = tmp_path / "two.npz"
    save_checkpoint(path, two.state_dict())
    with pytest.raises(CheckpointError, match=r"2 recurrent layers \['decoder', 'encoder'\]; choose one with --module"):
        command.run(parse("--checkpoint", str(path)))
    with pytest.raises(CheckpointError, match="no recurrent layer 'middle'"):
        command.run(parse("--checkpoint", str(path), "--module", "middle"))
    assert command.run(parse("--checkpoint", str(path), "--module", "decoder", "--steps", "4")) == 0
    with pytest.raises(ValueError, match="--cell, --hidden describe a fresh layer"):
        command.run(parse("--checkpoint", str(path), "--cell", "rnn", "--hidden", "3"))
    with pytest.raises(FileNotFoundError):
        command.run(parse("--checkpoint", str(tmp_path / "missing.npz")))
    linear_only = tmp_path / "linear.npz"
    save_checkpoint(linear_only, tr.nn.Linear(2, 2).state_dict())
    with pytest.raises(CheckpointError, match="no recurrent layer"):
        command.run(parse("--checkpoint", str(linear_only)))


def test_figures_are_written(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    command.run(parse("--cell", "gru", "--hidden", "3", "--steps", "6", "--figures", str(tmp_path)))
    assert f"figures: {os.path.join(tmp_path, 'diagnose.png')}" in capsys.readouterr().out
    assert (tmp_path / "diagnose.png").stat().st_size > 10_000


def test_standalone_entry_point_reports_errors(capsys):
    assert command.main(["--cell", "gru", "--forget-bias", "1"]) == 1
    assert "diagnose: error: --forget-bias applies to an LSTM" in capsys.readouterr().err
    assert command.main(["--cell", "rnn", "--hidden", "2", "--steps", "3"]) == 0
