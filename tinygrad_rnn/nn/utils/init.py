"""skip_init, as torch.nn.utils.skip_init: a module built without drawing its initial values."""
import inspect

from ... import generator
from ..module import Module


def skip_init(module_cls, *args, **kwargs):
    """module_cls(*args, **kwargs) whose parameters are left unspecified: torch leaves them uninitialised
    memory; here they are whatever the constructor drew, with the default generator put back as it
    was, so the random stream goes on as torch's does. module_cls must take a `device` argument."""
    if not (isinstance(module_cls, type) and issubclass(module_cls, Module)):
        raise RuntimeError(f"Expected a Module; got {module_cls}")   # noqa: TRY004 (torch's type)
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    state = generator.get_rng_state()
    try:
        return module_cls(*args, **kwargs)
    finally:
        generator.set_rng_state(state)
