"""A reader for the DOT text viz writes (one statement per line), so tests can check its structure.

It knows clusters (nested, with their attributes), nodes with attributes, edges with attributes
and `{rank=same; ...}` lines; that is all viz emits.
"""
import re

ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|<.*>|[^\s\]]+)')
NODE = re.compile(r"^(\w+) \[(.*)\]$")
STEP_LABEL = re.compile(r"^t ?= ?(-?\d+)$")
EDGE = re.compile(r"^(\w+) -> (\w+)(?: \[(.*)\])?$")


def unquote(value):
    if value.startswith('"'):
        body = value[1:-1]
        return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), body)
    return value


def attrs(text):
    return {k: unquote(v) for k, v in ATTR.findall(text or "")}


class Cluster:
    def __init__(self, name, parent):
        self.name, self.parent = name, parent
        self.attrs, self.nodes, self.children = {}, [], []

    @property
    def label(self):
        return self.attrs.get("label")

    def path(self):
        out, c = [], self
        while c is not None and c.name is not None:
            out.append(c.label)
            c = c.parent
        return tuple(reversed(out))

    def all_nodes(self):
        found = list(self.nodes)
        for child in self.children:
            found += child.all_nodes()
        return found


class Dot:
    def __init__(self, text):
        self.text = text
        self.root = Cluster(None, None)
        self.nodes = {}        # id -> attrs
        self.cluster_of = {}   # node id -> Cluster
        self.edges = []        # (tail, head, attrs)
        self.same_rank = []
        current = self.root
        lines = text.splitlines()
        assert lines[0].startswith("digraph ") and lines[-1] == "}", "not a whole digraph"
        for raw in lines[1:-1]:
            line = raw.strip()
            if line.startswith("subgraph cluster_"):
                child = Cluster(line.split()[1], current)
                current.children.append(child)
                current = child
            elif line == "}":
                current = current.parent
            elif line.startswith("{rank=same;"):
                self.same_rank.append(line[len("{rank=same;"):-1].split())
            elif line.startswith(("graph [", "node [", "edge [")):
                continue
            elif EDGE.match(line):
                tail, head, text_attrs = EDGE.match(line).groups()
                self.edges.append((tail, head, attrs(text_attrs)))
            elif NODE.match(line):
                node_id, text_attrs = NODE.match(line).groups()
                assert node_id not in self.nodes, f"node {node_id} declared twice"
                self.nodes[node_id] = attrs(text_attrs)
                self.cluster_of[node_id] = current
                current.nodes.append(node_id)
            elif "=" in line and current is not self.root:
                key, value = line.split("=", 1)
                current.attrs[key] = unquote(value)
            else:
                raise AssertionError(f"unexpected DOT line: {raw!r}")
        assert current is self.root, "unbalanced braces"

    # --- queries
    def clusters(self, node=None):
        node = node or self.root
        for child in node.children:
            yield child
            yield from self.clusters(child)

    def clusters_labelled(self, predicate):
        return [c for c in self.clusters() if c.label is not None and predicate(c.label)]

    def step_clusters(self):
        """Clusters of time steps, labelled "t = 3" (or "t=3" in the compact states detail)."""
        return self.clusters_labelled(lambda label: STEP_LABEL.match(label) is not None)

    @staticmethod
    def step_index(cluster):
        return int(STEP_LABEL.match(cluster.label).group(1))

    def label(self, node_id):
        return self.nodes[node_id].get("label", "")

    def first_line(self, node_id):
        return self.label(node_id).split("\n")[0]

    def nodes_named(self, name):
        return [n for n in self.nodes if self.first_line(n) == name]

    def visible_edges(self):
        return [(t, h, a) for t, h, a in self.edges if a.get("style") != "invis"]

    def step_of(self, node_id):
        """The step cluster a node sits in (or None)."""
        c = self.cluster_of[node_id]
        while c is not None and c.name is not None:
            if STEP_LABEL.match(c.label):
                return c
            c = c.parent
        return None
