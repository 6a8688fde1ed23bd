"""torch.backends.cudnn's flags, kept for code that sets them; none of them changes anything here."""
enabled = True
deterministic = False
benchmark = False


def is_available():
    """False: cuDNN is never used."""
    return False


def version():
    """None, as torch says where cuDNN is not available."""
