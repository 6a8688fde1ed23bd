"""examples/rtrl_vs_bptt.py: real-time recurrent learning and BPTT give one gradient; only BPTT's
memory grows with the sequence."""
import importlib.util
import os

import numpy as np

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "rtrl_vs_bptt.py")


def load_example():
    spec = importlib.util.spec_from_file_location("rtrl_vs_bptt", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rtrl_and_bptt_agree_to_1e_10_in_float64():
    example = load_example()
    model, loss = example.elman_problem(steps=4, hidden=2, symbols=3, seed=1)
    rtrl, bptt = example.rtrl_gradient(model, loss), example.bptt_gradient(model, loss)
    assert [g.shape for g in rtrl] == [p.shape for p in model.parameters()]
    assert all(g.dtype == np.float64 for g in bptt)
    assert example.largest_difference(rtrl, bptt) <= 1e-10
    assert max(np.abs(g).max() for g in bptt) > 1e-3  # a gradient worth comparing


def test_bptt_memory_grows_with_the_sequence_and_rtrl_memory_does_not():
    example = load_example()
    peaks = {}
    for steps in (8, 32):
        model, loss = example.elman_problem(steps=steps, hidden=3)
        peaks[steps] = (example.peak_bytes(example.bptt_gradient, model, loss),
                        example.peak_bytes(example.one_rtrl_pass, model, loss))
    bptt_growth, rtrl_growth = peaks[32][0] - peaks[8][0], peaks[32][1] - peaks[8][1]
    assert peaks[32][0] > 3 * peaks[8][0]
    assert rtrl_growth < 0.1 * bptt_growth  # RTRL keeps only the present: at most a few bytes a step
