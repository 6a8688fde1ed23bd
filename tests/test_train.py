"""The training loop against PyTorch step by step, the built-in tasks' models, and sampling."""
import dataclasses

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.data import CharCorpus
from tinygrad_rnn.train import ConfigError, TrainConfig, build, generate, make_task, train
from tinygrad_rnn.train.loop import read_scalars

TEXT = "def f(x):\n    return x * 2 + 1  # a line of code\n" * 30


def torch_char_lm(torch, vocab_size, embed_size, hidden_size, num_layers):
    class CharLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(vocab_size, embed_size)
            self.rnn = torch.nn.LSTM(embed_size, hidden_size, num_layers=num_layers)
            self.head = torch.nn.Linear(hidden_size, vocab_size)

        def forward(self, ids):
            output, _ = self.rnn(self.embedding(ids))
            return self.head(output)

    return CharLM().double()


@pytest.fixture
def one_thread(torch):
    """Both libraries on one thread: small products gain nothing from more, and a busy machine stalls them."""
    from tinygrad_rnn.train.threads import blas_threads
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with blas_threads(1):
        yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_lstm_language_model_matches_torch_for_30_steps(torch, one_thread, optimizer):
    corpus = CharCorpus(TEXT)
    config = TrainConfig(task="lm", cell="lstm", hidden_size=12, embed_size=5, num_layers=2, batch_size=4,
                         seq_len=10, optimizer=optimizer, lr=0.05 if optimizer == "adam" else 0.5, clip=0.5,
                         steps=30, eval_every=30, eval_chars=64, dtype="float64")
    _, initial, _, _ = build(config, corpus)
    ours = train(config, progress=False, corpus=corpus)

    theirs = torch_char_lm(torch, corpus.vocab_size, 5, 12, 2)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in initial.state_dict().items()})
    opt = (torch.optim.Adam(theirs.parameters(), lr=0.05) if optimizer == "adam"
           else torch.optim.SGD(theirs.parameters(), lr=0.5, momentum=0.9))
    task = make_task(config, corpus)  # the same seed: the same batches
    losses = []
    for _ in range(config.steps):
        x, y = task.batch()
        logits = theirs(torch.from_numpy(x))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, corpus.vocab_size), torch.from_numpy(y).reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5)
        opt.step()
        losses.append(loss.item())
    np.testing.assert_allclose(ours.history["loss"], losses, rtol=1e-8)
    assert losses[-1] < losses[0] - 0.5  # it did learn: the comparison is not of a flat line
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.model.state_dict()[name], value.numpy(), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("task,cell", [("adding", "gru"), ("copy", "lstm"), ("lm", "rnn")])
def test_each_task_trains_and_beats_its_first_loss(task, cell):
    config = TrainConfig(task=task, cell=cell, hidden_size=16, embed_size=8, batch_size=16, seq_len=16, T=8,
                         delay=2, lr=0.01, steps=25, eval_every=25, eval_sequences=64, eval_chars=256)
    corpus = CharCorpus(TEXT) if task == "lm" else None
    result = train(config, progress=False, corpus=corpus)
    history = result.history
    assert len(history["loss"]) == 25 and history["val_step"] == [25]
    assert np.mean(history["loss"][-5:]) < np.mean(history["loss"][:5])
    assert result.task.baseline() > 0


def test_generate_is_seeded_and_uses_the_vocabulary():
    corpus = CharCorpus(TEXT)
    config = TrainConfig(hidden_size=8, embed_size=4)
    _, model, _, _ = build(config, corpus)
    a = generate(model, corpus.vocab, "def", 40, temperature=1.0, rng=3)
    assert a == generate(model, corpus.vocab, "def", 40, temperature=1.0, rng=3)
    assert len(a) == 40 and set(a) <= set(corpus.vocab)
    greedy = generate(model, corpus.vocab, "def", 10, temperature=0, rng=1)
    assert greedy == generate(model, corpus.vocab, "def", 10, temperature=0, rng=2)
    assert model.training  # generate restores the mode it found
    with pytest.raises(ValueError, match="characters the model has never seen: 'Z'"):
        generate(model, corpus.vocab, "Zed", 5)
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
            generate(model, corpus.vocab, "d", 5, temperature=bad)
    tiny = generate(model, corpus.vocab, "def", 10, temperature=1e-300, rng=1)  # no overflow: as greedy as 0
    assert tiny == greedy


@pytest.mark.parametrize("field,value,message", [
    ("hidden_size", 0, "hidden_size: must be an integer >= 1, got 0"),
    ("cell", "lsmt", "cell: must be one of rnn, lstm, gru; got 'lsmt'"),
    ("lr", -0.1, "lr: must be a finite number >= 0"),
    ("dropout", 1.0, r"dropout: must be a finite number in \[0, 1\)"),
    ("clip", float("nan"), "clip: must be a finite number >= 0, got nan"),
    ("lr", float("inf"), "lr: must be a finite number >= 0, got inf"),
    ("seed", -1, "seed: must be an integer from 0 to 4294967295, got -1"),
    ("steps", 2.5, "steps: must be an integer >= 1, got 2.5"),
    ("T", 10**15, (r"T: too large: one batch's activations would take about [\d,]+ GiB, more than the [\d,]+ GiB "
                   r"of memory of this machine; lower it, batch_size or hidden_size")),
    ("eval_sequences", 10**12, r"T: too large: the validation set would take .*; lower it or eval_sequences"),
    ("hidden_size", 10**7, "hidden_size: too large: the weights would take"),
])
def test_bad_config_is_named(field, value, message):
    config = dataclasses.replace(TrainConfig(task="adding"), **{field: value})
    with pytest.raises(ConfigError, match=message) as error:
        config.check()
    assert f"{error.value.field}:" == message.split(" ")[0]


def test_sizes_the_text_cannot_fill_are_refused_before_training():
    corpus = CharCorpus(TEXT[:200])  # 180 characters to train on, 20 to validate
    cases = [({"eval_chars": 7}, "eval_chars: 7 is too few: .* 8 columns .* at least 16"),
             ({"batch_size": 16}, "batch_size: 16 is too large for the 20 validation characters"),
             ({"seq_len": 500}, "seq_len: 500 needs 501 training characters; the text has 180"),
             ({"batch_size": 4, "seq_len": 50, "stateful": True}, "batch_size: 4 is too large with stateful")]
    for change, message in cases:
        config = TrainConfig(hidden_size=4, embed_size=2, **{"batch_size": 8, "seq_len": 8, **change})
        with pytest.raises(ConfigError, match=message):
            train(config, progress=False, corpus=corpus)


def test_blas_threads_are_set_inside_the_block_and_restored_after():
    from tinygrad_rnn.train.threads import blas_controller, blas_threads

    def counts():
        return [info["num_threads"] for info in blas_controller().info()]

    before = counts()
    if not before:
        pytest.skip("threadpoolctl finds no BLAS library in this process")
    with blas_threads(1) as found:
        assert found and set(counts()) == {1}
    assert counts() == before
    with blas_threads(0) as found:  # 0 leaves the library alone
        assert not found and counts() == before


def test_fused_layers_train_to_the_same_numbers_and_draw_op_by_op(monkeypatch):
    viz = pytest.importorskip("viz")
    from tinygrad_rnn.cli import draw_graph
    from tinygrad_rnn.graph import walk
    corpus = CharCorpus(TEXT)
    config = TrainConfig(hidden_size=12, embed_size=5, batch_size=4, seq_len=10, steps=5, eval_every=5,
                         eval_chars=64, dtype="float64")
    composed = train(dataclasses.replace(config, fused=False), progress=False, corpus=corpus)
    fused_config = dataclasses.replace(config, fused=True)
    fused = train(fused_config, progress=False, corpus=corpus)
    np.testing.assert_allclose(fused.history["loss"], composed.history["loss"], rtol=1e-10)

    drawn = []
    monkeypatch.setattr(viz, "render", lambda root, path, **options: drawn.append((root, options)) or path)
    draw_graph(fused.model, fused_config, 2, "unused.svg", vocab=corpus.vocab)
    root, options = drawn[0]
    assert options["expand_fused"] is True
    ops = {node.op for node in walk([viz.expand_fused(root)]) if hasattr(node, "op")}
    assert "sigmoid" in ops  # a fused model is drawn op by op, every gate shown


def test_ctrl_c_finishes_the_step_saves_it_and_the_run_resumes_to_the_same_numbers(tmp_path):
    import os
    import signal

    from tinygrad_rnn.checkpoint import load_checkpoint
    from tinygrad_rnn.train import TrainingInterrupted

    corpus = CharCorpus(TEXT)
    config = TrainConfig(hidden_size=6, embed_size=3, batch_size=4, seq_len=8, steps=5, eval_every=100,
                         eval_chars=64, dtype="float64")
    whole = train(config, corpus=corpus, log=None)
    path = str(tmp_path / "run.npz")

    def press_ctrl_c(step, history):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as stopped:
        train(config, checkpoint=path, corpus=corpus, log=None, on_step=press_ctrl_c)
    assert stopped.value.step == 2 and load_checkpoint(path)["meta"]["step"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # Ctrl-C means the usual thing again
    resumed = train(config, checkpoint=path, resume=True, corpus=corpus, log=None)
    np.testing.assert_array_equal(resumed.history["loss"], whole.history["loss"])


def test_evaluation_lines_are_logged_without_a_progress_bar():
    lines = []
    config = TrainConfig(hidden_size=4, embed_size=2, batch_size=2, seq_len=4, steps=4, eval_every=2, eval_chars=64)
    result = train(config, corpus=CharCorpus(TEXT), log=lines.append, progress=False)
    assert [line.split(":")[0] for line in lines] == ["step 2/4", "step 4/4"]
    first = np.mean(result.history["loss"][:2])
    assert lines[0].startswith(f"step 2/4: loss {first:.4f}, validation {result.history['val_loss'][0]:.4f}, ")
    assert len(result.history["lr"]) == len(result.history["throughput"]) == 2


def test_the_progress_bar_is_drawn_only_on_a_terminal(monkeypatch):
    pytest.importorskip("tqdm")
    import sys

    from tinygrad_rnn.train import loop
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert loop._progress_bar(10, 0, None) is None and loop._progress_bar(10, 0, False) is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = loop._progress_bar(10, 0, None)
    assert bar is not None
    bar.close()


def test_the_loop_reads_a_steps_loss_and_norm_together():
    loss, norm = tr.tensor(np.float32(0.1)), tr.tensor(float("nan"), dtype="float64")
    values = read_scalars(loss, norm)
    assert values[0] == loss.item() and np.isnan(values[1]) and all(type(v) is float for v in values)
