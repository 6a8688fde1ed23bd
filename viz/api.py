"""The public entry points: to_dot, draw and render."""
import warnings

from . import gradient, style
from . import render as _render
from .dot import source
from .expand import expand_fused as _expand_fused
from .folded import folded
from .structure import Recorded
from .unrolled import DETAILS, RANKDIR, unrolled
from .viewkit import new_scene

VIEWS = ("unrolled", "folded", "gradient")


def to_dot(root, view="unrolled", detail=None, max_steps=None, params=True, grad_range=None,
           rankdir=None, title=None, dpi=None, expand_fused=None):
    """DOT text of the graph above `root`; byte-identical for the same graph.

    root: a tensor, a (nested) list of tensors, or a dict {title: tensor or list} to draw several
          graphs side by side in titled panels (the gradient colours then share one scale).
    view: "unrolled" (one cluster per time step inside clusters per layer and direction),
          "folded" (one node per role, the recurrence as a loop through a delay marker, the
          parameters written on the edges they act on), or
          "gradient" (unrolled, each state coloured by log10 of its kept gradient's norm; record
          the forward pass inside `with tr.retain_grads():`, then call backward()).
    detail: "ops" (every primitive; default of "unrolled"), "cells" (one box per cell step, the
          lecture's unfolded figure), or "states" (only h(t) and c(t); default of "gradient").
    max_steps: draw at most this many steps per layer and direction, the first and the last
          ones; the steps between become one node that says how many it stands for.
    params: draw the parameters (each once, with an edge to every step that uses it; in the
          folded view, their names on the edges). The states detail draws only those that
          something outside the steps uses.
    grad_range: (low, high) in log10 for the gradient colours; by default the data's range.
    rankdir: Graphviz's layout direction ("TB", "LR", ...) instead of the view's own.
    title: a caption above the picture. dpi: the resolution of PNG output.
    expand_fused: a default layer records each (layer, direction) pass as one node (hand-written
          for RNN, LSTM and GRU, compiled for any other cell); every view draws it as the op-by-op
          graph it stands for, rebuilt from the values it received: the picture `fused=False`
          draws. A pass recorded under `tr.retain_grads()` kept every step's state gradient in
          its backward, so the gradient view colours its steps too. backward() releases what a
          pass received unless the graph is retained or the forward ran under retain_grads: such
          a pass is drawn as one node, with a warning that says so (default None), or raises
          (True). False draws every pass as one node, and says so.
    """
    return source(_scene(root, view, detail, max_steps, params, grad_range, rankdir, title, dpi,
                         expand_fused).body())


def draw(root, **options):
    """A graphviz.Digraph of the picture, shown inline by Jupyter; options as for to_dot.

    Its `.source` is exactly `to_dot(root, **options)`.
    """
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"draw: unexpected option(s) {sorted(unknown)}; known: {list(_OPTIONS)}")
    scene = _scene(root, **{**_OPTIONS, **options})
    return _render.digraph(scene.body())


def render(root, path, format=None, **options):
    """Render the picture with Graphviz's `dot` and return the path written.

    format: "svg", "png" or "pdf"; by default the path's suffix (svg, with the suffix added,
    when it has none). Raises viz.GraphvizNotFoundError, which says how to install Graphviz,
    when `dot` is not on PATH. Other options as for to_dot.
    """
    return _render.render_source(to_dot(root, **options), path, format=format)


_OPTIONS = {"view": "unrolled", "detail": None, "max_steps": None, "params": True, "grad_range": None,
            "rankdir": None, "title": None, "dpi": None, "expand_fused": None}


def _panels(root, expand_fused):
    def recorded(tensors):
        if expand_fused is False:
            return Recorded(tensors)
        return Recorded(_expand_fused(tensors, strict=expand_fused is True))
    if isinstance(root, dict):
        if not root:
            raise ValueError("viz: got an empty dict of graphs to draw")
        return [(str(title), recorded(tensors)) for title, tensors in root.items()]
    return [(None, recorded(root))]


def _scene(root, view, detail, max_steps, params, grad_range, rankdir, title, dpi, expand_fused=None):
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if view == "folded" and detail is not None:
        raise ValueError("detail does not apply to the folded view (it has one node per role)")
    if detail is not None and detail not in DETAILS:
        raise ValueError(f"detail must be one of {DETAILS}, got {detail!r}")
    if view == "folded" and max_steps is not None:
        raise ValueError("max_steps does not apply to the folded view (it draws no steps)")
    if expand_fused not in (None, True, False):
        raise ValueError(f"expand_fused must be None, True or False, got {expand_fused!r}")
    panels = _panels(root, expand_fused)
    _warn_whole_sequence_nodes(panels, expand_fused)
    detail = detail or ("states" if view == "gradient" else "ops")
    scene = new_scene(rankdir or ("LR" if view == "folded" else RANKDIR[detail]), title, dpi,
                      compact=view != "folded" and detail == "states")
    scale = None
    if view == "gradient":
        values = [gradient.log_norm(rec.grad(i)) for _, rec in panels for i in gradient.state_positions(rec)]
        scale = gradient.scale_for(values, grad_range)
    order = list(enumerate(panels))
    if scene.graph_attrs["rankdir"] in ("LR", "RL"):
        order.reverse()   # dot stacks side-by-side parts bottom-up when ranks run sideways
    for k, (panel, rec) in order:
        prefix = "" if panel is None else f"p{k}_"
        scene.outer = () if panel is None else ((style.PANEL, panel),)
        if view == "folded":
            folded(rec, params=params, scene=scene, prefix=prefix)
        else:
            unrolled(rec, detail=detail, max_steps=max_steps, params=params, colour=scale, scene=scene,
                     prefix=prefix)
    scene.outer = ()
    if scale is not None:   # the legend is the picture's label, under the caption
        scene.graph_attrs.update(label=scale.legend(gradient.LEGEND_TITLE, title), labelloc="t", fontsize="12")
    return scene


def _warn_whole_sequence_nodes(panels, expand_fused):
    """Say so when a recurrent pass is drawn as one node (its steps are not in the picture)."""
    ops = sorted({item.op for _, rec in panels for item in rec.items if getattr(item, "whole_sequence", False)})
    if not ops:
        return
    if expand_fused is False:
        why = "(expand_fused=False); leave expand_fused at its default to draw every step"
    else:
        why = ("because backward() released the values it received: draw before backward(), call "
               "backward(retain_graph=True), or record the forward pass inside `with tr.retain_grads():` "
               "to draw every step")
    warnings.warn(f"viz: each {' / '.join(ops)} node is a whole recurrent pass, drawn as one node per layer "
                  f"and direction without its steps {why}", stacklevel=4)
