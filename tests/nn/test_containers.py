"""Sequential, ModuleList, ModuleDict, ParameterList and ParameterDict with torch.nn's semantics."""
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.nn.parity import assert_close, copy_torch_weights, pair

nn = tr.nn


def test_sequential_runs_in_order_and_matches_torch(torch):
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    ours = nn.Sequential(nn.Linear(3, 4, dtype="float64"), nn.LayerNorm(4, dtype="float64"),
                         nn.Linear(4, 2, dtype="float64"))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_torch_weights(ours, theirs)
    x, tx = pair(torch, np.random.default_rng(0).standard_normal((5, 3)), "cpu")
    assert_close(ours(x), theirs(tx), "output")


def test_sequential_indexing_slicing_and_editing():
    a, b, c = nn.Linear(1, 2), nn.Linear(2, 3), nn.Linear(3, 4)
    seq = nn.Sequential(a, b)
    assert len(seq) == 2 and seq[0] is a and seq[-1] is b and list(seq) == [a, b]
    seq.append(c)
    assert seq[2] is c and [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    tail = seq[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == [b, c]
    assert next(iter(tail.state_dict())) == "1.weight"  # a slice keeps the names, as torch's does
    del seq[0]
    assert list(seq) == [b, c] and list(seq.state_dict())[:2] == ["0.weight", "0.bias"]
    assert seq.insert(0, a) is seq  # as torch's, so that calls chain
    assert list(seq) == [a, b, c]
    seq[1] = nn.Linear(2, 3)
    assert seq[1] is not b and len(seq) == 3
    assert seq.pop(0) is a and len(seq) == 2
    with pytest.raises(IndexError, match="index 5 is out of range"):
        seq[5]
    named = nn.Sequential(OrderedDict(encoder=a, decoder=b))
    assert named.encoder is a and [n for n, _ in named.named_children()] == ["encoder", "decoder"]
    assert named[1] is b


def test_module_list_registers_its_modules(torch):
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    theirs = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)])
    model = nn.Module()
    model.layers = layers
    assert list(model.state_dict()) == ["layers." + k for k in theirs.state_dict()]
    assert len(list(model.parameters())) == 6
    layers.extend([nn.Linear(2, 2)])
    layers += [nn.Linear(2, 2)]
    assert len(layers) == 5 and "layers.4.bias" in model.state_dict()
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    layers[0] = nn.Dropout()
    assert next(iter(model.state_dict())) == "layers.1.weight"
    with pytest.raises(TypeError, match="ModuleList holds Modules"):
        layers.append(3)
    with pytest.raises(NotImplementedError):
        layers(tr.zeros(1))


def test_module_dict_by_name(torch):
    heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 3)})
    assert list(heads) == list(heads.keys()) == ["a", "b"] and len(heads) == 2 and "a" in heads
    assert list(heads.state_dict()) == list(torch.nn.ModuleDict({"a": torch.nn.Linear(2, 1),
                                                                 "b": torch.nn.Linear(2, 3)}).state_dict())
    heads["c"] = nn.Linear(2, 2)
    assert [k for k, _ in heads.items()] == ["a", "b", "c"]
    assert heads.pop("b").out_features == 3 and list(heads) == ["a", "c"]
    heads.update([("d", nn.Dropout())])
    del heads["a"]
    assert list(heads) == ["c", "d"]
    with pytest.raises(KeyError):
        heads["a"]
    heads.clear()
    assert len(heads) == 0


def test_parameter_list_and_dict():
    params = nn.ParameterList([nn.Parameter(np.zeros(2)), tr.ones(3)])
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in params)
    assert [n for n, _ in params.named_parameters()] == ["0", "1"]
    params.append(tr.zeros(1))
    assert len(params) == 3 and params[-1].shape == (1,)
    table = nn.ParameterDict({"w": tr.ones(2)})
    table["v"] = nn.Parameter(np.zeros(1))
    assert list(table) == ["w", "v"] and list(table.state_dict()) == ["w", "v"]
    with pytest.raises(TypeError, match="ParameterList holds Parameters"):
        params.append(3.0)
