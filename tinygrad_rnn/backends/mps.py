"""torch.backends.mps: there is no Apple GPU backend, so code that asks falls back to the CPU."""


def is_available():
    return False


def is_built():
    return False
