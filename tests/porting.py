"""Running one PyTorch program twice: as written, and with only its import lines changed to tinygrad_rnn."""
import re

TORCH_IMPORT = re.compile(r"^(import|from) torch\b(\S*)(.*)$", re.MULTILINE)


def ported(source):
    """The source with only its import lines changed: `import torch` is `import tinygrad_rnn as torch`,
    torch.X is tinygrad_rnn.X elsewhere."""
    def port(line):
        keyword, submodule, rest = line.groups()
        if keyword == "import" and not submodule and not rest:
            return "import tinygrad_rnn as torch"
        return f"{keyword} tinygrad_rnn{submodule}{rest}"
    return TORCH_IMPORT.sub(port, source)


def load(source, name):
    namespace = {"__name__": name}
    exec(compile(source, f"<{name}>", "exec"), namespace)  # noqa: S102 (our own source text, run as a module)
    return namespace


def run_both(source):
    """(the source run by torch, the same source ported to tinygrad_rnn) as namespaces."""
    return load(source, "original"), load(ported(source), "ported")
