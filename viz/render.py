"""From DOT text to a graphviz.Digraph (inline in Jupyter) and to files through Graphviz's `dot`."""
import os
import shutil

FORMATS = ("svg", "png", "pdf")

INSTALL_HINT = ("install Graphviz so that the 'dot' program is on PATH: 'sudo apt-get install graphviz' "
                "(Debian/Ubuntu), 'brew install graphviz' (macOS), 'conda install graphviz' (conda), "
                "or the installer from https://graphviz.org/download/ (Windows); to_dot() works without it")


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's `dot` program is needed to render pictures and was not found."""


def digraph(body, name="G"):
    """A graphviz.Digraph whose .source is exactly the DOT text built from `body`."""
    graphviz = _graphviz_package()
    return graphviz.Digraph(name=name, body=list(body))


def render_source(source, path, format=None):
    """Write `source` rendered by `dot` to `path`; the format comes from `format` or the suffix."""
    path = os.fspath(path)
    fmt = _format_for(path, format)
    if not os.path.splitext(path)[1]:
        path = f"{path}.{fmt}"
    if shutil.which("dot") is None:
        raise GraphvizNotFoundError(f"render: Graphviz's 'dot' program was not found on PATH; {INSTALL_HINT}")
    graphviz = _graphviz_package()
    try:
        data = graphviz.Source(source).pipe(format=fmt, engine="dot")
    except graphviz.ExecutableNotFound as e:
        raise GraphvizNotFoundError(f"render: could not run Graphviz's 'dot' ({e}); {INSTALL_HINT}") from e
    except graphviz.CalledProcessError as e:
        detail = (e.stderr or b"").decode(errors="replace").strip()
        raise RuntimeError(f"render: 'dot -T{fmt}' failed: {detail}") from e
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    partial = path + ".partial"
    with open(partial, "wb") as f:
        f.write(data)
    os.replace(partial, path)  # never leave half a picture behind
    return path


def _format_for(path, format):
    suffix = os.path.splitext(path)[1][1:].lower()
    fmt = (format or suffix or "svg").lower()
    if fmt not in FORMATS:
        raise ValueError(f"render: format must be one of {FORMATS}, got {fmt!r}")
    if suffix and suffix != fmt:
        raise ValueError(f"render: path {path!r} ends in .{suffix} but format={format!r}")
    return fmt


def _graphviz_package():
    from tinygrad_rnn.extras import require
    return require("graphviz", "viz's draw() and render()")
