"""Hostile text in every label position (scope names and indices, tensor and parameter names, panel titles,
the caption) stays text: quoted in the DOT, rendered by `dot` as written, never markup or new nodes."""
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

import tinygrad_rnn as tr
import viz
from tests.conftest import IN_CI
from tests.viz.handmade import record
from viz.dot import html_text, quote

HOSTILE = [
    "<unbalanced",
    "<b>bold</b> & <i>",
    "<<table><tr><td>cell</td></tr></table>>",
    'say "hi" > 3',
    "back\\slash \\N \\G \\L \\n",
    "two\nlines",
    "{record|field} | <port>",
    "&lt;entity&gt; &amp;",
    '"; injected [label="x"]; "',
    "]; injected_node; [",
]
RENDERED = ["<unbalanced", "<<table><tr><td>cell</td></tr></table>>", 'say "hi" > 3', "back\\slash \\N \\G \\L \\n",
            "two\nlines", "&lt;entity&gt; &amp;", '"; injected [label="x"]; "']  # what dot itself reads
VIEWS = {"ops": {}, "cells": {"detail": "cells"}, "states": {"detail": "states", "max_steps": 2},
         "folded": {"view": "folded"}, "gradient": {"view": "gradient"}}


def graph(text):
    """A small recurrent graph with `text` as scope names and index, a parameter's name and the loss's name."""
    with tr.retain_grads(), tr.scope(text, text), tr.scope(text):
        loss, params, _ = record("rnn", steps=3, num_layers=1)
    loss.backward()
    params["weight_hh_l0"].named(text)
    return loss.named(text)


def drawings(text):
    """(DOT text, options) of each view, with `text` also as the caption and a panel's title."""
    loss, other = graph(text), graph("plain")
    for name, options in VIEWS.items():
        yield name, viz.to_dot({text: loss, "plain": other}, title=text, **options)


@pytest.mark.parametrize("text", HOSTILE)
def test_every_label_is_quoted_text(text):
    for view, dot in drawings(text):
        html_labels = re.findall(r"=<", dot)
        assert len(html_labels) == (1 if view == "gradient" else 0), f"{view}: markup outside the legend"
        for label in (text, f"{text} {text}"):  # a scope with and without an index
            assert f"label={quote(label)}" in dot, f"{view}: cluster label {label!r} not quoted"
        if view == "gradient":
            assert html_text(text) in dot  # the caption sits in the legend, escaped as HTML
        else:
            assert f"label={quote(text)} labelloc" in dot
        if view != "states":
            assert quote(text)[:-1] + "\\n(" in dot  # the loss's node: its name above its shape


@pytest.fixture
def dot_binary():
    if shutil.which("dot") is None:
        if IN_CI:
            pytest.fail("Graphviz's dot must be installed in CI (make graphviz)")
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")


def svg_summary(path):
    """The texts and the node and cluster counts of an SVG file (which must be well-formed XML)."""
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text or "" for t in root.iter(ns + "text")]
    classes = [g.get("class") for g in root.iter(ns + "g")]
    return texts, classes.count("node"), classes.count("cluster")


@pytest.mark.parametrize("view", list(VIEWS))
def test_dot_renders_hostile_labels_as_written(dot_binary, tmp_path, view):
    benign = svg_summary(viz.render({"plain": graph("plain"), "other": graph("plain")}, tmp_path / "plain.svg",
                                    title="plain", **VIEWS[view]))
    for k, text in enumerate(RENDERED):
        texts, nodes, clusters = svg_summary(viz.render({text: graph(text), "other": graph("plain")},
                                                        tmp_path / f"{k}.svg", title=text, **VIEWS[view]))
        assert (nodes, clusters) == benign[1:], f"{text!r}: the drawing gained or lost nodes or clusters"
        for line in text.split("\n"):
            assert any(line.strip() in t for t in texts), f"{text!r}: {line!r} is not drawn as text in {view}"
