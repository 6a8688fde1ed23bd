"""Rendering through Graphviz's real `dot`, the Digraph for Jupyter, and the error without `dot`."""
import os
import shutil

import pytest

import viz
from tests.conftest import IN_CI
from tests.viz.handmade import record

MAGIC = {"svg": b"<svg", "png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF"}


@pytest.fixture
def dot_binary():
    if shutil.which("dot") is None:
        if IN_CI:
            pytest.fail("Graphviz's dot must be installed in CI (make graphviz)")
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")


@pytest.fixture
def graphviz_package():
    """The graphviz Python package (the [viz] extra): a failure in CI, skipped elsewhere."""
    try:
        import graphviz
    except ImportError:
        if IN_CI:
            pytest.fail("the graphviz package must be installed in CI (pip install -e .[dev])")
        pytest.skip("the graphviz package is not installed (pip install graphviz)")
    return graphviz


@pytest.fixture(scope="module")
def lstm_loss():
    return record("lstm", steps=3, num_layers=2, bidirectional=True)[0]


@pytest.mark.parametrize("options", [{}, {"detail": "cells"}, {"view": "folded"},
                                     {"view": "gradient", "max_steps": 2}])
@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_render_writes_a_real_picture(dot_binary, lstm_loss, tmp_path, fmt, options):
    path = viz.render(lstm_loss, tmp_path / f"graph.{fmt}", **options)
    with open(path, "rb") as f:
        data = f.read()
    assert path == str(tmp_path / f"graph.{fmt}")
    if fmt == "svg":
        assert MAGIC["svg"] in data[:400] and b"layer 1" in data and b"reverse" in data
    else:
        assert data.startswith(MAGIC[fmt]) and len(data) > 5000


def test_render_format_from_argument_pdf_and_suffix_added(dot_binary, lstm_loss, tmp_path):
    path = viz.render(lstm_loss, tmp_path / "graph", format="pdf", detail="cells")
    assert path.endswith("graph.pdf")
    with open(path, "rb") as f:
        assert f.read(4) == MAGIC["pdf"]
    assert viz.render(lstm_loss, tmp_path / "plain", view="folded").endswith("plain.svg")


def test_any_name_renders(dot_binary, tmp_path):
    loss, _, _ = record("rnn", steps=2)
    loss.named('a "loss" \\ with <html> & {braces}\nand a second line')
    with open(viz.render(loss, tmp_path / "odd.svg"), encoding="utf-8") as f:
        svg = f.read()
    assert "a &quot;loss&quot; \\ with &lt;html&gt; &amp; {braces}" in svg
    assert "and a second line" in svg


def test_render_refuses_mismatched_or_unknown_formats(lstm_loss, tmp_path):
    with pytest.raises(ValueError, match="ends in .png"):
        viz.render(lstm_loss, tmp_path / "graph.png", format="svg")
    with pytest.raises(ValueError, match="format must be one of"):
        viz.render(lstm_loss, tmp_path / "graph.bmp")


def test_without_dot_to_dot_works_and_render_says_how_to_install(lstm_loss, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("dot") is None
    assert viz.to_dot(lstm_loss).startswith("digraph G {")
    with pytest.raises(viz.GraphvizNotFoundError, match="apt-get install graphviz") as info:
        viz.render(lstm_loss, tmp_path / "graph.png")
    assert "brew install graphviz" in str(info.value) and "to_dot" in str(info.value)
    assert not os.listdir(tmp_path / "empty-bin") and not (tmp_path / "graph.png").exists()


def test_dot_vanishing_after_the_check_is_reported_the_same_way(graphviz_package, lstm_loss, tmp_path,
                                                                 monkeypatch):
    graphviz = graphviz_package

    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(("dot",))
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(graphviz.Source, "pipe", missing)
    with pytest.raises(viz.GraphvizNotFoundError, match="install Graphviz"):
        viz.render(lstm_loss, tmp_path / "graph.svg")


def test_draw_returns_a_digraph_with_the_same_source(graphviz_package, lstm_loss):
    graphviz = graphviz_package
    for options in ({}, {"view": "folded"}, {"view": "gradient", "max_steps": 2}):
        graph = viz.draw(lstm_loss, **options)
        assert isinstance(graph, graphviz.Digraph)
        assert graph.source == viz.to_dot(lstm_loss, **options)
    with pytest.raises(TypeError, match="unexpected option"):
        viz.draw(lstm_loss, colour="red")
