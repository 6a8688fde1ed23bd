"""Parameters as one flat vector and back, as torch.nn.utils.parameters_to_vector / vector_to_parameters."""
from ...tensor import Tensor, cat


def _parameters(parameters):
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def parameters_to_vector(parameters):
    """The parameters flattened and concatenated in order: one 1-D tensor, in the graph (its gradient
    flows back to each parameter)."""
    parameters = _parameters(parameters)
    if not parameters:
        raise ValueError("parameters_to_vector: expected a non-empty list of Tensors (torch.cat() refuses none)")
    devices = {p.device for p in parameters}
    if len(devices) > 1:
        raise TypeError(f"parameters_to_vector: found two parameters on different devices: {sorted(map(str, devices))}")
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Give each parameter, in order, the next numel() entries of `vec` as its data: the parameter
    then shares vec's memory, as torch's `param.data = vec[a:b].view_as(param).data`. Extra
    entries are left unused, as torch leaves them."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    start = 0
    for parameter in _parameters(parameters):
        count = parameter.numel()
        part = vec.array[start:start + count]   # along dim 0, as torch slices vec
        if part.size != count:
            raise RuntimeError(f"shape '{list(parameter.shape)}' is invalid for input of size {part.size}: "
                               f"vector_to_parameters reads vec[{start}:{start + count}] of vec of shape "
                               f"{tuple(vec.shape)}")
        parameter.data = Tensor._make(part.reshape(parameter.shape), None)   # vec's memory, no graph
        start += count
