"""Small pieces the views share: a fresh scene with the house style, shape text."""
from . import style
from .dot import Scene


def new_scene(rankdir, title=None, dpi=None, compact=False):
    """An empty scene in the house style; `compact` packs many small steps (the states detail)."""
    graph, node = dict(style.GRAPH, rankdir=rankdir), dict(style.NODE)
    if compact:
        graph.update(style.COMPACT_GRAPH)
        node.update(style.COMPACT_NODE)
    if title:
        graph.update(label=title, labelloc="t", fontsize="14")
    if dpi:
        graph["dpi"] = str(dpi)
    clusters = style.compact_cluster_attrs if compact else style.cluster_attrs
    return Scene(graph, node, dict(style.EDGE), clusters)


def shape_text(shape):
    """(2, 4) for a shape; (16,) for one dimension; () for a scalar."""
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def constant_text(item):
    """The label of an unnamed constant leaf: its value when it is one number, else its shape."""
    if item.array.size == 1:
        return f"{item.array.reshape(()).item():.4g}"
    return f"const\n{shape_text(item.shape)}"
