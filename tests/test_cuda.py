"""tr.cuda and tr.device, as torch.cuda and torch.device: usable wherever a device name is."""
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_rnn as tr

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("spec,args", [("cpu", ()), ("cuda", ()), ("cuda:1", ()), ("cuda", (0,)), ("cpu", (0,))])
def test_device_objects_read_like_torchs(torch, spec, args):
    ours, theirs = tr.device(spec, *args), torch.device(spec, *args)
    assert (ours.type, ours.index) == (theirs.type, theirs.index)
    assert str(ours) == str(theirs)
    assert repr(ours) == repr(theirs)
    assert tr.device(ours) is ours and isinstance(ours, tr.device)


def test_device_from_an_int_is_a_gpu():
    assert str(tr.device(1)) == "cuda:1"  # torch.device(1): the accelerator's device 1


def test_device_objects_are_accepted_wherever_a_device_name_is():
    cpu = tr.device("cpu")
    x = tr.Tensor(np.ones(3), device=cpu)
    assert x.device == cpu == "cpu"
    assert x.to(cpu) is x and x.to(device=tr.device("cpu:0")) is x
    assert tr.zeros(2, device=cpu).device == "cpu"
    layer = tr.nn.Linear(2, 3, device=cpu).to(cpu)
    assert layer.weight.device == "cpu"


def test_bad_device_names_raise_device_errors():
    with pytest.raises(tr.DeviceError, match="expected one of"):
        tr.device("tpu")
    with pytest.raises(tr.DeviceError, match="invalid device string"):
        tr.device("cuda:x")
    with pytest.raises(ValueError, match="already names an index"):
        tr.device("cuda:0", 1)
    with pytest.raises(tr.DeviceError, match="non-negative"):
        tr.device("cuda", -1)
    with pytest.raises(TypeError, match="expected a string"):
        tr.device(1.5)


def test_cuda_reports_what_is_there():
    available = tr.cuda.is_available()
    assert available == tr.cuda_available()
    assert (tr.cuda.device_count() > 0) == available
    if not available:
        with pytest.raises(tr.DeviceError, match="needs CuPy"):
            tr.cuda.synchronize()
    else:
        tr.cuda.synchronize()


def test_cuda_is_unavailable_without_cupy_and_says_so_quietly(tmp_path):
    """With CuPy unimportable, is_available() is False and device_count() 0: no ImportError escapes."""
    (tmp_path / "cupy.py").write_text("raise ImportError('no CuPy in this test')\n")
    code = ("import tinygrad_rnn as tr; "
            "print(tr.cuda.is_available(), tr.cuda.device_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{tmp_path}:{ROOT}"}, cwd=ROOT)
    assert out.stdout.split() == ["False", "0"], out.stderr


def test_tensors_move_with_device_objects(device):
    x = tr.zeros(2, device=tr.device(device))
    assert x.device == device
    assert x.to(tr.device("cpu")).device == "cpu"
