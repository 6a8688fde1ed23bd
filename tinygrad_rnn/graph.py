"""Reading a recorded graph: the nodes and leaves above some tensors, in a fixed order.

Drawings and diagnostics walk the graph through here. The order depends only on how the graph
was built (never on memory addresses), so the same program gives the same listing every run.
"""
from .tensor import Function


def walk(roots):
    """Nodes and leaf tensors above `roots` (a tensor or a list), inputs before their consumers.

    Returns a list of Function nodes and Tensor leaves; a leaf is a tensor without a recorded
    creator (a parameter, an input, a constant).
    """
    roots = roots if isinstance(roots, (list, tuple)) else [roots]
    order, seen = [], set()
    for root in roots:
        start = root._ctx if root._ctx is not None else root
        if id(start) in seen:
            continue
        seen.add(id(start))
        stack = [(start, 0)]
        while stack:
            item, i = stack.pop()
            parents = item.parents if isinstance(item, Function) else ()
            while i < len(parents) and id(parents[i]) in seen:
                i += 1
            if i < len(parents):
                stack.append((item, i + 1))
                seen.add(id(parents[i]))
                stack.append((parents[i], 0))
            else:
                order.append(item)
    return order


def scope_dict(node):
    """A node's scope as {name: index}, e.g. {"layer": 0, "direction": "forward", "t": 3}."""
    return dict(node.scope)


def named_nodes(roots, name):
    """Recorded nodes whose output tensor carries `name` (for example every step's "h")."""
    return [n for n in walk(roots) if isinstance(n, Function) and n.name == name]
