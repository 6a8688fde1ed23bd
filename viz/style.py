"""Colours and shapes: one table for node kinds, one for edges, and the gradient colour scale."""
import math

from tinygrad_rnn import vocabulary as V

from .dot import HTML, html_text

FONT = "Helvetica"

GRAPH = {"fontname": FONT, "fontsize": "11", "nodesep": "0.18", "ranksep": "0.28", "bgcolor": "white", "pad": "0.15"}
# Ops are most of the nodes of a big graph, so the defaults are the op style and tensors override it.
NODE = {"fontname": FONT, "fontsize": "9", "shape": "ellipse", "style": "filled", "fillcolor": "#f1f3f4",
        "color": "#9aa0a6", "height": "0.25", "margin": "0.02,0.01", "penwidth": "1"}
_TENSOR = 'shape=box style="rounded,filled" fontsize=10 height=0.3 margin="0.06,0.03" '
EDGE = {"fontname": FONT, "fontsize": "9", "color": "#5f6368", "arrowsize": "0.55", "penwidth": "0.9"}

# Node kinds: what a tensor or op is (structure.Recorded.kind) plus the drawing's own markers.
KINDS = {
    "op": "",
    "param": _TENSOR + 'fillcolor="#fde7b4" color="#c68a12"',
    "input": _TENSOR + 'fillcolor="#d2e3fc" color="#4a79c4"',
    "state": _TENSOR + 'fillcolor="#ccebd3" color="#3c8c4f" penwidth=1.3',
    "tensor": _TENSOR + 'fillcolor="#ffffff" color="#9aa0a6"',
    "output": _TENSOR + 'fillcolor="#f9d3e6" color="#b5477d"',
    "loss": _TENSOR + 'fillcolor="#f6b8b1" color="#b3261e" penwidth=1.5',
    "const": 'shape=plaintext style="" fontcolor="#5f6368" height=0.2',
    "cell": _TENSOR + 'fillcolor="#e6dcf5" color="#6b4fa0" penwidth=1.5 fontsize=11',
    "skip": _TENSOR + 'style="rounded,dashed" fillcolor="white" color="#80868b" fontcolor="#3c4043"',
    "delay": 'shape=square style=filled fillcolor="#202124" fontcolor="white" fontsize=9 width=0.32 height=0.32 '
             'fixedsize=true',
}

EDGES = {
    "data": "",
    "param": 'color="#c68a1299" penwidth=0.7',
    "recurrent": 'color="#3c8c4f" penwidth=1.6',
    "initial": 'color="#3c8c4f" style=dashed',
    "align": "style=invis",
}

# the states detail: many small steps side by side
COMPACT_GRAPH = {"nodesep": "0.08", "ranksep": "0.12"}
COMPACT_NODE = {"width": "0.3", "fontsize": "9"}

PANEL = "viz.panel"   # the outer cluster of one panel when several graphs are drawn together

CLUSTERS = {   # by the scope name that opens the cluster
    PANEL: {"style": "rounded", "color": "#5f6368", "fontcolor": "#202124", "fontsize": "14",
            "penwidth": "1.5"},
    V.LAYER: {"style": "rounded", "color": "#9aa0a6", "fontcolor": "#3c4043", "fontsize": "12"},
    V.DIRECTION: {"style": "rounded,dashed", "color": "#bdc1c6", "fontcolor": "#5f6368", "fontsize": "11"},
    V.STEP: {"style": "rounded,filled", "fillcolor": "#f8f9fa", "color": "#dadce0", "fontcolor": "#5f6368",
          "fontsize": "10"},
    None: {"style": "rounded", "color": "#bdc1c6", "fontcolor": "#5f6368", "fontsize": "11"},
}


def cluster_attrs(scope_entry):
    """Label and look of the cluster a scope entry opens: "layer 0", "forward", "t = 3"."""
    name, index = scope_entry
    if index is None:
        label = str(name)
    elif name == V.STEP:
        label = f"t = {index}"
    elif name in (V.DIRECTION, PANEL):
        label = str(index)
    else:
        label = f"{name} {index}"
    return {"label": label, **CLUSTERS.get(name, CLUSTERS[None])}


def compact_cluster_attrs(scope_entry):
    """As cluster_attrs, with tight steps: "t=12" in small type (a label wider than the states
    under it would widen every step)."""
    attrs = cluster_attrs(scope_entry)
    if scope_entry[0] == V.STEP:
        attrs.update(label=f"t={scope_entry[1]}", margin="2", fontsize="8")
    return attrs


# ----------------------------------------------------------------------------- gradient colour scale

# Viridis at nine evenly spaced points: dark (vanished) to bright (large), readable in grey print.
SCALE = ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725")
NO_GRAD = "#e8eaed"


def _rgb(hex_colour):
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def scale_colour(fraction):
    """The colour at `fraction` in [0, 1] along the scale, interpolated linearly in RGB."""
    fraction = min(1.0, max(0.0, fraction))
    pos = fraction * (len(SCALE) - 1)
    k = min(int(pos), len(SCALE) - 2)
    a, b, w = _rgb(SCALE[k]), _rgb(SCALE[k + 1]), pos - k
    return "#" + "".join(f"{round(x + (y - x) * w):02x}" for x, y in zip(a, b))


def text_colour(fill):
    """Black or white, whichever reads better on `fill`."""
    r, g, b = _rgb(fill)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"


def _distinct_texts(values, most=6):
    """The values with one decimal, or as many more as it takes to tell neighbours apart (a narrow
    range would otherwise read -0.9, -0.9, -0.9, ...)."""
    for decimals in range(1, most + 1):
        texts = [f"{value:.{decimals}f}" for value in values]
        if len(set(texts)) == len(set(values)):
            return texts
    return texts


class GradientScale:
    """Maps log10 of a gradient norm onto the colour scale between `low` and `high`."""

    def __init__(self, low, high):
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ValueError(f"grad_range must be two finite numbers (low <= high), got ({low}, {high})")
        self.low, self.high = low, high

    @classmethod
    def spanning(cls, log_norms):
        finite = [v for v in log_norms if math.isfinite(v)]
        if not finite:
            return cls(-1.0, 0.0)
        low, high = min(finite), max(finite)
        return cls(low - 0.5, high + 0.5) if high - low < 1e-9 else cls(low, high)

    def fraction(self, log_norm):
        if log_norm == -math.inf:
            return 0.0
        return (log_norm - self.low) / (self.high - self.low) if self.high > self.low else 0.5

    def colour(self, log_norm):
        return scale_colour(self.fraction(log_norm))

    def legend(self, title, caption=None, stops=7):
        """An HTML-like graph label: the caption, the title and a row of swatches with their values."""
        values = [self.low + (self.high - self.low) * k / (stops - 1) for k in range(stops)]
        cells = []
        for k, text in enumerate(_distinct_texts(values)):
            fill = scale_colour(k / (stops - 1))
            cells.append(f'<td bgcolor="{fill}" width="48"><font color="{text_colour(fill)}">{text}</font></td>')
        head = f'<tr><td colspan="{stops}" border="0"><font point-size="16">{html_text(caption)}</font></td></tr>' \
            if caption else ""
        return HTML(f'<<table border="0" cellborder="1" cellspacing="0" cellpadding="4">{head}'
                    f'<tr><td colspan="{stops}" border="0">{html_text(title)}</td></tr>'
                    f'<tr>{"".join(cells)}</tr>'
                    f'<tr><td colspan="{stops}" border="0"><font point-size="10" color="#5f6368">'
                    f'{html_text("dark: vanished · bright: large · grey: no gradient kept")}</font></td></tr>'
                    f"</table>>")
