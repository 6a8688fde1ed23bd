"""The launch plan: a measured table where present, else the latency model; and the model itself."""
import json

import numpy as np
import pytest

from tinygrad_rnn.nn import fused
from tinygrad_rnn.nn import latency_model as LM
from tinygrad_rnn.nn import launch_plan as LP

H200 = {"multiprocessors": 132, "shared_limit": 227 * 1024}


def entry(cell, B, H, T, **ms):
    return {"cell": cell, "dtype": "float32", "batch": B, "input": H, "hidden": H, "steps": T, "ms": ms}


def test_the_nearest_measured_entry_names_the_fastest_design():
    entries = [entry("lstm", 32, 128, 1000, cluster=3.0, persistent=12.6, elementwise=112.8),
               entry("lstm", 64, 512, 100, persistent=7.0, elementwise=11.4),
               entry("gru", 32, 128, 1000, cluster=20.0, persistent=12.2)]
    assert LP.measured_choice(entries, "lstm", 32, 128, 500, np.float32) == "cluster"
    assert LP.measured_choice(entries, "lstm", 48, 512, 100, np.float32) == "persistent"
    assert LP.measured_choice(entries, "gru", 32, 128, 1000, np.float32) == "persistent"
    # too far from every entry, another dtype, another cell: the model decides
    assert LP.measured_choice(entries, "lstm", 256, 1024, 100, np.float32) is None
    assert LP.measured_choice(entries, "lstm", 32, 128, 1000, np.float64) is None
    assert LP.measured_choice(entries, "rnn", 32, 128, 1000, np.float32) is None


def test_a_table_is_read_and_a_bad_one_is_ignored_with_a_warning(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"device": "NVIDIA H200", "entries": [entry("rnn", 1, 256, 500, cluster=1.0)]}))
    assert LP.load_table(str(good))[0]["ms"] == {"cluster": 1.0}
    assert LP.load_table(str(tmp_path / "missing.json")) == []
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.warns(UserWarning, match="bad.json"):
        assert LP.load_table(str(bad)) == []


def test_choose_follows_the_table_before_the_model():
    entries = [entry("lstm", 256, 1024, 100, persistent=1.0, elementwise=2.0)]
    assert LP.choose(fused.CELLS["lstm"], 256, 1024, 100, np.float32, entries) == "persistent"


def test_auto_takes_the_cluster_kernels_only_where_a_measured_table_names_them(monkeypatch):
    monkeypatch.setattr(fused.PK, "multiprocessor_count", lambda: H200["multiprocessors"])
    monkeypatch.setattr(fused.PK, "shared_memory_limit", lambda: H200["shared_limit"])
    monkeypatch.setattr(fused.CK, "clusters_supported", lambda: True)
    cell = fused.CELLS["lstm"]
    assert LP.choose(cell, 32, 128, 1000, np.float32, []) == "persistent"   # the model's best, cluster aside
    measured = [entry("lstm", 32, 128, 1000, cluster=4.0, persistent=6.0)]
    assert LP.choose(cell, 32, 128, 1000, np.float32, measured) == "cluster"


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn_tanh"])
def test_the_model_picks_per_step_launches_for_large_products_and_kernels_for_small_steps(name):
    cell = fused.CELLS[name]
    assert LP.model_choice(cell, 256, 1024, 100, 4, **H200) == "elementwise"
    assert LP.model_choice(cell, 32, 128, 1000, 4, **H200) == "cluster"
    assert LP.model_choice(cell, 32, 128, 1000, 4, **H200, clusters=False) == "persistent"


def test_the_cluster_step_waits_less_than_the_persistent_step():
    """Same tiles and product: the cluster design saves the grid barrier and the trip to L2."""
    cell = fused.CELLS["lstm"]
    cluster = fused.CK.cluster_plans(cell, 32, 128, 4, **H200)
    persistent = fused.persistent_plans(cell, 32, 128, 4, **H200)
    c = LM.step_terms("cluster", cluster[0], 128, 4)
    p = LM.step_terms("persistent", persistent[0], 128, 4)
    assert c["barrier"] < p["barrier"] and c["operand"] < p["operand"]
    assert LM.step_us("cluster", 4, 32, 128, 4, cluster) < LM.step_us("persistent", 4, 32, 128, 4, persistent)


def test_every_figure_names_its_source():
    for name, fig in LM.H200.items():
        assert fig.source.split(":")[0] in ("published", "estimate", "calibrated"), name
