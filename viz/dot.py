"""DOT text from a scene: nodes placed in nested clusters, edges, all written in a fixed order.

Built by hand (not through the graphviz package) so that the text is byte-identical run to run
and so that a graph of a hundred thousand nodes is written in well under a second.
"""
import html

_CONTROL = {c: " " for c in range(32) if c != 10}


def quote(text):
    """A DOT double-quoted string showing `text` literally; a newline in it breaks the line.

    Backslashes and quotes are escaped for DOT, and `&` for Graphviz, which reads character
    entities (`&lt;`) in every label.
    """
    text = str(text).translate(_CONTROL).replace("&", "&amp;")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def html_text(text):
    """Text for an HTML-like label (the legend), with every markup character escaped."""
    return html.escape(str(text).translate(_CONTROL), quote=True)


class HTML(str):
    """An HTML-like label (`<...>`) that the drawing built itself: written into the DOT text as it is.

    Every other attribute value is quoted, whatever it starts with, so a user's text (a title, a
    scope name) can never become markup.
    """


def attr_value(value):
    """A DOT attribute value: HTML labels as they are, anything else as a quoted string."""
    return value if isinstance(value, HTML) else quote(value)


def attr_list(attrs):
    """`[k=v ...]` from a dict."""
    return "[" + " ".join(f"{key}={attr_value(value)}" for key, value in attrs.items()) + "]"


class Scene:
    """Nodes by cluster path, edges, and graph-wide settings, ready to print as DOT.

    A cluster path is a tuple of (name, index) pairs, like a recorded scope; a cluster (and each
    one above it) is created the first time something is put in it, labelled and styled by
    `cluster_style(entry)`, and numbered in creation order. `outer` is prepended to every path:
    it puts a whole view inside one more cluster (one panel when a dict of graphs is drawn).
    """

    def __init__(self, graph_attrs, node_attrs, edge_attrs, cluster_style):
        self.graph_attrs, self.node_attrs, self.edge_attrs = graph_attrs, node_attrs, edge_attrs
        self.cluster_style = cluster_style
        self.outer = ()
        self.lines = {(): []}           # cluster path -> node and attribute lines
        self.cluster_ids = {(): None}
        self.children = {(): []}
        self.cluster_attrs = {}
        self.edges = {}                 # (tail, head) -> attribute text; the first one given wins
        self.tail_lines = []            # anything written after the edges

    def cluster(self, path):
        """The line list of the cluster at `outer + path`, creating it (and its parents) on first use."""
        path = self.outer + path
        lines = self.lines.get(path)
        if lines is None:
            lines = self._create(path)
        return lines

    def _create(self, path):
        parent = path[:-1]
        if parent not in self.lines:
            self._create(parent)
        self.cluster_ids[path] = len(self.cluster_ids) - 1
        self.children[path] = []
        self.children[parent].append(path)
        self.cluster_attrs[path] = self.cluster_style(path[-1])
        lines = self.lines[path] = []
        return lines

    def node(self, path, node_id, attrs):
        """A node line `node_id [attrs]` in the cluster at `path` (attrs include the brackets)."""
        self.cluster(path).append(f"{node_id} {attrs}")

    def edge(self, tail, head, attrs=""):
        """An edge; `attrs` is the text inside its brackets (empty for the default look)."""
        key = (tail, head)
        if key not in self.edges:
            self.edges[key] = attrs

    def body(self):
        """The DOT lines between `digraph G {` and `}`, each ending with a newline."""
        out = []
        for kind, attrs in (("graph", self.graph_attrs), ("node", self.node_attrs), ("edge", self.edge_attrs)):
            if attrs:
                out.append(f"\t{kind} {attr_list(attrs)}\n")
        self._write_cluster((), 1, out)
        for (tail, head), attrs in self.edges.items():
            out.append(f"\t{tail} -> {head} [{attrs}]\n" if attrs else f"\t{tail} -> {head}\n")
        out.extend(self.tail_lines)
        return out

    def _write_cluster(self, path, depth, out):
        pad = "\t" * depth
        if path:
            out.append(f"{pad[:-1]}subgraph cluster_{self.cluster_ids[path]} {{\n")
            for key, value in self.cluster_attrs.get(path, {}).items():
                out.append(f"{pad}{key}={attr_value(value)}\n")
        out.extend(f"{pad}{line}\n" for line in self.lines[path])
        for child in self.children[path]:
            self._write_cluster(child, depth + 1, out)
        if path:
            out.append(f"{pad[:-1]}}}\n")


def source(body, name="G"):
    """The whole DOT text, exactly as graphviz.Digraph(name, body=body).source writes it."""
    return f"digraph {name} {{\n" + "".join(body) + "}\n"
