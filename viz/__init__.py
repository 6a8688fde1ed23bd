"""Graphviz pictures of recorded graphs: the unrolled graph grouped by time step, the folded
recurrence, and where the gradient vanishes.

    viz.to_dot(root, view="unrolled", detail="ops")  -> DOT text (needs no Graphviz)
    viz.draw(root, ...)                              -> graphviz.Digraph (inline in Jupyter)
    viz.render(root, "graph.png", ...)               -> the path written, via Graphviz's `dot`

`root` is a tensor, a list of tensors, or a dict {title: tensor} for panels side by side. For the
gradient view, record the forward pass inside `with tr.retain_grads():`, then call backward().
A default layer records each pass as one node (hand-written or compiled); every view draws it op by
op, as `fused=False` records it (`viz.expand_fused(root)` gives that graph itself), and the gradient
view colours its steps with the gradients the pass kept under `tr.retain_grads()`.
`expand_fused=False` draws one node per pass, and says so.
"""
from .api import VIEWS, draw, render, to_dot
from .expand import expand_fused
from .render import FORMATS, GraphvizNotFoundError
from .unrolled import DETAILS

__all__ = ["DETAILS", "FORMATS", "VIEWS", "GraphvizNotFoundError", "draw", "expand_fused", "render", "to_dot"]
