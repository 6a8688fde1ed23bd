"""Each rule's update kernel (optim/kernels.py), built as C++ and run on NumPy arrays in place of the
CuPy launch, against the NumPy rule: every option combination, float64 and float32, bit for bit."""
import ctypes
import itertools
import re
import shutil
import subprocess

import numpy as np
import pytest

from tinygrad_rnn import backend
from tinygrad_rnn.nn import Parameter
from tinygrad_rnn.optim import SGD, Adagrad, Adam, AdamW, RMSprop, kernels

from ..conftest import to_np
from .test_optimizers import CONFIGS, OURS

SHAPES = [(4, 5), (7,), (3, 2, 2)]
STEPS = 25


def combinations(**options):
    """Every combination of the options' values, as keyword dicts."""
    return [dict(zip(options, values)) for values in itertools.product(*options.values())]


def valid_sgd(kwargs):
    return not kwargs["nesterov"] or (kwargs["momentum"] > 0 and kwargs["dampening"] == 0)


RULES = (
    [(SGD, {"lr": 0.05, **kw}) for kw in combinations(momentum=[0.0, 0.9], dampening=[0.0, 0.3], nesterov=[False, True],
                                                      weight_decay=[0.0, 0.01], maximize=[False, True]) if valid_sgd(kw)]
    # betas (0.3, 0.9): the moment's lerp weight 1 - beta1 >= 0.5 takes lerp's other branch
    + [(cls, {"lr": 0.01, **kw}) for cls in (Adam, AdamW)
       for kw in combinations(betas=[(0.9, 0.999), (0.3, 0.9)], weight_decay=[0.0, 0.1], amsgrad=[False, True],
                              maximize=[False, True])]
    + [(Adagrad, {"lr": 0.1, **kw}) for kw in combinations(lr_decay=[0.0, 0.05], weight_decay=[0.0, 0.02],
                                                           initial_accumulator_value=[0.0, 0.3], maximize=[False, True])]
    # alpha 0.4: the centered mean's lerp weight 1 - alpha >= 0.5
    + [(RMSprop, {"lr": 0.01, **kw}) for kw in combinations(alpha=[0.99, 0.4], centered=[False, True],
                                                            momentum=[0.0, 0.7], weight_decay=[0.0, 0.05],
                                                            maximize=[False, True])]
)


def rule_id(rule):
    cls, kwargs = rule
    return cls.__name__ + "-" + "-".join(f"{k}={v}" for k, v in kwargs.items() if k != "lr")


def build(directory, kernel, ctype):
    source, library = directory / f"{kernel.name}_{ctype}.cpp", directory / f"{kernel.name}_{ctype}.so"
    source.write_text(kernel.source(ctype, "cpp"))
    # no contraction of a * b + c into one rounding, as --fmad=false on the GPU
    subprocess.run(["g++", "-O1", "-std=c++14", "-Wall", "-Werror", "-ffp-contract=off", "-shared", "-fPIC",
                    str(source), "-o", str(library)], check=True, capture_output=True, text=True)
    return getattr(ctypes.CDLL(str(library)), f"tinygrad_rnn_{kernel.name}_{ctype}")


C_SCALARS = {np.float32: ctypes.c_float, np.float64: ctypes.c_double, np.int32: ctypes.c_int}


@pytest.fixture(scope="module")
def cpp_kernels(tmp_path_factory):
    """launch(kernel, arguments, size) as kernels.launch_cuda calls it, with the kernel built as C++."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed to run the CUDA kernel sources on the CPU")
    directory, built = tmp_path_factory.mktemp("optim_kernels"), {}

    def launch(kernel, arguments, size):
        ctype = kernels.CTYPES[arguments[0].dtype]
        if (kernel.name, ctype) not in built:
            built[kernel.name, ctype] = build(directory, kernel, ctype)
        converted = [ctypes.c_longlong(size)]
        for arg in arguments:
            if isinstance(arg, np.ndarray):
                assert arg.flags.c_contiguous and arg.size == size
                converted.append(ctypes.c_void_p(arg.ctypes.data))
            else:
                converted.append(C_SCALARS[type(arg)](arg))
        built[kernel.name, ctype](*converted)
    return launch


@pytest.fixture
def launches(cpp_kernels, monkeypatch):
    """The C++ kernels take the place of the CuPy launch for NumPy arrays; the list records each launch."""
    record = []

    def launch(kernel, arguments, size):
        record.append(kernel.name)
        cpp_kernels(kernel, arguments, size)

    monkeypatch.setattr(kernels, "launcher", lambda array: launch if array.dtype in kernels.CTYPES else None)
    return record


def make_params(dtype, seed=0, device="cpu"):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(shape), dtype=dtype, device=device) for shape in SHAPES]


def gradients(params, steps, seed=1):
    """Random gradients for `params` (their shapes and dtypes), one list per step."""
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(p.shape).astype(p.dtype) for p in params] for _ in range(steps)]


def train(opt, params, grads, skip=None):
    """One step per list of gradients; `skip` = (step, parameter index) leaves that gradient out."""
    for step, arrays in enumerate(grads):
        for k, (p, g) in enumerate(zip(params, arrays)):
            p.grad = None if (step, k) == skip else backend.to_device(g.copy(), p.device)
        opt.step()


def numpy_rule(opt, params, grads, skip=None):
    """train() with the NumPy rule, whatever the launcher."""
    with pytest.MonkeyPatch.context() as numpy_only:
        numpy_only.setattr(kernels, "launcher", lambda array: None)
        train(opt, params, grads, skip)


def assert_same(params, other, opt, other_opt):
    for a, b in zip(params, other):
        np.testing.assert_array_equal(to_np(a.array), to_np(b.array))
    state, other_state = opt.state_dict()["state"], other_opt.state_dict()["state"]
    assert state.keys() == other_state.keys()
    for i, entries in state.items():
        assert entries.keys() == other_state[i].keys()
        for name, value in entries.items():
            np.testing.assert_array_equal(value, other_state[i][name], err_msg=name)


def first_step_launches(cls, kwargs):
    """Whether the rule's kernel runs at the first step (else the NumPy rule makes the state then)."""
    return cls is SGD and kwargs["momentum"] == 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("rule", RULES, ids=[rule_id(r) for r in RULES])
def test_kernel_equals_the_numpy_rule_bit_for_bit(launches, rule, dtype):
    cls, kwargs = rule
    reference, fused = make_params(dtype), make_params(dtype)
    grads = gradients(reference, STEPS)
    reference_opt, fused_opt = cls(reference, **kwargs), cls(fused, **kwargs)
    numpy_rule(reference_opt, reference, grads)
    train(fused_opt, fused, grads)
    assert launches == [cls.FUSED.name] * (STEPS - (0 if first_step_launches(cls, kwargs) else 1))
    assert_same(fused, reference, fused_opt, reference_opt)


def test_one_launch_per_group_and_step(launches):
    params = make_params("float64") + make_params("float64", seed=2)
    opt = Adam([{"params": params[:3]}, {"params": params[3:], "lr": 0.1}], lr=0.01)
    train(opt, params, gradients(params, 5))
    assert launches == ["adam"] * 2 * 4  # the first step makes the state with the NumPy rule
    launches.clear()
    params = make_params("float64") + make_params("float32")  # one group, a flat buffer per dtype
    opt = SGD(params, lr=0.01)
    train(opt, params, gradients(params, 5))
    assert launches == ["sgd"] * 2 * 5


@pytest.mark.parametrize("case", ["foreach=False", "float16", "skipped gradient"])
def test_where_the_kernel_does_not_apply_the_numpy_rule_runs(launches, case):
    dtype = "float16" if case == "float16" else "float64"
    skip = (2, 1) if case == "skipped gradient" else None
    reference, fused = make_params(dtype), make_params(dtype)
    grads = gradients(reference, 6)
    kwargs = {"lr": 0.01, "foreach": False if case == "foreach=False" else None}
    reference_opt, fused_opt = RMSprop(reference, **kwargs), RMSprop(fused, **kwargs)
    numpy_rule(reference_opt, reference, grads, skip)
    train(fused_opt, fused, grads, skip)
    # a skipped gradient: the kernel runs at the second step, and at the third over the parameters that have
    # a gradient; from the fourth the parameters' step counts differ and each parameter is updated alone
    assert launches == (["rmsprop"] * 2 if case == "skipped gradient" else [])
    assert_same(fused, reference, fused_opt, reference_opt)


def test_a_state_array_of_another_dtype_falls_back(launches):
    params = make_params("float64")
    opt = SGD(params, lr=0.1, momentum=0.9)
    grads = gradients(params, 2)
    train(opt, params, grads[:1])
    (flat,) = opt._flat.values()
    flat.state["momentum_buffer"] = flat.state["momentum_buffer"].astype(np.float32)
    assert not opt._fused_step(flat, np.concatenate([g.ravel() for g in grads[1]]), opt.param_groups[0])
    assert launches == []


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_cupy_step_equals_numpy_with_one_launch_per_group(device, monkeypatch, name, kwargs, dtype):
    if device == "cpu":
        pytest.skip("compares the CuPy kernel with the NumPy rule")
    counted, launch_cuda = [], kernels.launch_cuda

    def counting(kernel, arguments, size):
        counted.append(kernel.name)
        launch_cuda(kernel, arguments, size)

    monkeypatch.setattr(kernels, "launch_cuda", counting)
    on_host = make_params(dtype) + make_params(dtype, seed=2)
    on_gpu = make_params(dtype, device=device) + make_params(dtype, seed=2, device=device)
    grads = gradients(on_host, STEPS)

    def groups(params):
        return [{"params": params[:3]}, {"params": params[3:], "lr": 0.02}]

    host_opt, gpu_opt = OURS[name](groups(on_host), **kwargs), OURS[name](groups(on_gpu), **kwargs)
    train(host_opt, on_host, grads)
    train(gpu_opt, on_gpu, grads)
    first = 0 if name == "SGD" and not kwargs.get("momentum") else 1
    assert counted == [type(gpu_opt).FUSED.name] * 2 * (STEPS - first)
    assert_same(on_gpu, on_host, gpu_opt, host_opt)


@pytest.mark.parametrize("ctype", ["double", "float"])
@pytest.mark.parametrize("rule", [SGD, Adam, Adagrad, RMSprop], ids=lambda cls: cls.__name__)
def test_nvcc_builds_the_cuda_source_without_fused_multiply_adds(tmp_path, rule, ctype):
    """With --fmad=false, as the launch compiles it, the PTX rounds every product and sum on its own, and
    its square roots and divisions are the correctly rounded ones (.rn), as NumPy's."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is needed to compile the CUDA sources")
    path = tmp_path / f"{rule.FUSED.name}.cu"
    path.write_text(rule.FUSED.source(ctype, "cuda"))
    done = subprocess.run(["nvcc", "-arch=sm_90", "-ptx", "--fmad=false", "-o", str(tmp_path / "out.ptx"), str(path)],
                          check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ptx = (tmp_path / "out.ptx").read_text()
    assert f"tinygrad_rnn_{rule.FUSED.name}_{ctype}" in ptx
    assert "fma." not in ptx
    assert set(re.findall(r"\b(?:sqrt|div|rcp)\.(\w+)\.f(?:32|64)", ptx)) <= {"rn"}
