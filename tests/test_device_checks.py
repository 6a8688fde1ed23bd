"""Checks of values computed on a GPU wait for the next read from it, as torch's device-side asserts.

On NumPy a check raises at once; with backend._DEFER_ON_HOST set, NumPy arrays take the GPU's
order, so these tests run that order on the CPU.
"""
import sys
import threading
from types import SimpleNamespace

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import backend
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.nn import fused

tensor_module = sys.modules["tinygrad_rnn.tensor"]


@pytest.fixture
def as_on_a_gpu(monkeypatch):
    monkeypatch.setattr(backend, "_DEFER_ON_HOST", True)
    backend._pending.checks = []
    yield
    backend._pending.checks = []


def test_a_check_on_numpy_raises_at_once():
    with pytest.raises(IndexError, match="Embedding: index out of range: indices span \\[-1, 2\\]"):
        tr.nn.Embedding(4, 3)(np.array([[-1, 2]]))
    assert backend._pending.checks == []


def test_a_check_of_a_numpy_scalar_raises_at_once():
    with pytest.raises(IndexError, match=r"indices span \[2, 2\] but num_embeddings=2"):
        tr.nn.Embedding(2, 3)(np.array(2))                 # a 0-d index: the check's value is np.bool_
    assert backend._pending.checks == []


def test_an_embedding_index_out_of_range_is_raised_at_the_next_read(as_on_a_gpu):
    emb = tr.nn.Embedding(4, 3)
    out = emb(np.array([[-1, 2]]))            # NumPy wraps -1; a GPU's gather would not stop either
    loss = out.sum()
    with pytest.raises(IndexError, match=r"Embedding: index out of range: indices span \[-1, 2\] but "
                                         r"num_embeddings=4"):
        loss.item()
    assert backend._pending.checks == []
    assert np.isfinite(emb(np.array([[0, 3]])).sum().item())  # the failed check is gone with its read


@pytest.mark.parametrize("read", [lambda t: t.item(), lambda t: t.numpy(), lambda t: t.tolist(),
                                  lambda t: float(t), lambda t: bool(t > -1e9), lambda t: np.asarray(t)],
                         ids=["item", "numpy", "tolist", "float", "bool", "asarray"])
def test_every_read_of_a_value_raises_a_failed_check(as_on_a_gpu, read):
    logits = tr.tensor(np.zeros((3, 4)), requires_grad=True)
    loss = F.cross_entropy(logits, tr.tensor(np.array([0, -1, 1])))
    with pytest.raises(IndexError, match=r"cross_entropy: target values must lie in \[0, 4\) .* got min -1, max 1"):
        read(loss)


def test_the_first_failed_check_is_raised_and_all_are_read_in_one_go(as_on_a_gpu):
    raised = []
    for k, failed in enumerate([False, True, True]):
        backend.check(np.array([failed]), lambda k=k: raised.append(k) or ValueError(f"check {k}"))
    assert len(backend._pending.checks) == 3
    with pytest.raises(ValueError, match="check 1"):
        backend.raise_failed_checks()
    assert raised == [1] and backend._pending.checks == []


def test_unread_checks_are_read_before_they_pile_up(as_on_a_gpu, monkeypatch):
    monkeypatch.setattr(backend, "MAX_PENDING_CHECKS", 4)
    for _ in range(3):
        backend.check(np.array([False]), lambda: AssertionError("never"))
    assert len(backend._pending.checks) == 3
    with pytest.raises(RuntimeError, match="the fourth"):
        backend.check(np.array([True]), lambda: RuntimeError("the fourth"))
    assert backend._pending.checks == []


def test_checks_belong_to_the_thread_that_made_them(as_on_a_gpu):
    def other():
        backend.check(np.array([True]), lambda: RuntimeError("the other thread's"))
        try:
            backend.raise_failed_checks()
        except RuntimeError as error:
            seen.append(str(error))
    seen = []
    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == ["the other thread's"] and backend._pending.checks == []


def test_a_projected_pass_checks_its_index_at_the_next_read(as_on_a_gpu):
    table, h0, w_hh = tr.Tensor(np.zeros((5, 16))), tr.Tensor(np.zeros((2, 4))), tr.Tensor(np.zeros((16, 4)))
    output, _, _ = fused.fused_pass("lstm", table, h0, None, None, w_hh, index=np.array([[0, 5]]))
    with pytest.raises(IndexError, match=r"index spans \[0, 5\] but the table has 5 rows"):
        output.sum().item()


def test_a_persistent_kernel_that_failed_is_raised_at_the_next_read(as_on_a_gpu, monkeypatch):
    steps = SimpleNamespace(failed=np.ones(1, np.uint32), cell=SimpleNamespace(name="lstm"),
                            plan_forward="plan f", plan_backward="plan b")
    fused._PersistentSteps.check(steps)
    with pytest.raises(RuntimeError, match="blocks were not all resident .* TINYGRAD_RNN_CUDA_STEPS=elementwise"):
        backend.raise_failed_checks()
    monkeypatch.setattr(backend, "_DEFER_ON_HOST", False)
    with pytest.raises(RuntimeError, match="were not all resident"):
        fused._PersistentSteps.check(steps)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_training_step_reads_no_value(as_on_a_gpu, monkeypatch, cell):
    """Embedding -> layer -> Linear, cross-entropy, backward, clipping, Adam: its checks wait, nothing
    is read (so on a GPU the step never waits for the device); the loss is read when asked for."""
    tr.manual_seed(0)
    emb, head = tr.nn.Embedding(11, 32), tr.nn.Linear(8, 11)
    layer = {"lstm": tr.nn.LSTM, "gru": tr.nn.GRU}[cell](32, 8)
    params = [*emb.parameters(), *layer.parameters(), *head.parameters()]
    opt = tr.optim.Adam(params, lr=1e-2)
    rng = np.random.default_rng(0)
    x, y = (tr.tensor(rng.integers(0, 11, (12, 4))) for _ in range(2))
    reads = []
    monkeypatch.setattr(tensor_module, "_value_read", reads.append)
    for _ in range(2):
        logits = head(layer(emb(x))[0])
        loss = F.cross_entropy(logits.reshape(-1, 11), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        tr.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    assert reads == [] and backend._pending.checks
    monkeypatch.undo()
    assert np.isfinite(loss.item()) and backend._pending.checks == []
