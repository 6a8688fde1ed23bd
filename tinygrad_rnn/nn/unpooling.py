"""MaxUnpool1d / 2d / 3d and F.max_unpool1d / 2d / 3d, as in torch.nn: a max pooling's inverse, each
value put back where its index (from return_indices) says, zeros elsewhere. One scatter per call, so
gradients of any order come from its."""
import math

from .. import backend
from ..factory import zeros
from ..tensor import Tensor
from .checks import InputError, check_tensor
from .conv import ntuple, spatial_input
from .module import Module


def _geometry(owner, dims, kernel_size, stride, padding):
    kernel = ntuple(owner, "kernel_size", kernel_size, dims, minimum=1)
    stride = kernel if stride is None else ntuple(owner, "stride", stride, dims, minimum=1)
    return kernel, stride, ntuple(owner, "padding", padding, dims, minimum=0)


def _output_size(x, kernel, stride, padding, output_size):
    """torch's _unpool_output_size: the pooled size's preimage, or output_size (spatial or whole) within a
    stride of it."""
    dims = len(kernel)
    default = [(n - 1) * s + k - 2 * p for n, k, s, p in zip(x.shape[-dims:], kernel, stride, padding)]
    if output_size is None:
        return default
    output_size = [int(n) for n in output_size]
    if len(output_size) == dims + 2:
        output_size = output_size[2:]
    if len(output_size) != dims:
        raise ValueError(f"output_size should be a sequence containing {dims} or {dims + 2} elements, but it has a "
                         f"length of '{len(output_size)}'")
    for d, (n, wanted, s) in enumerate(zip(default, output_size, stride)):
        if not n - s < wanted < n + s:
            raise ValueError(f'invalid output_size "{output_size}" (dim {d} must be between {n - s} and {n + s})')
    return output_size


def _max_unpool(owner, dims, input, indices, kernel_size, stride, padding, output_size):
    x, unbatched = spatial_input(owner, input, dims)
    check_tensor(owner, "indices", indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{owner}: elements in indices should be type int64 but got: {indices.dtype}")
    if tuple(indices.shape) != tuple(input.shape):
        raise InputError(f"{owner}: Expected shape of indices to be same as that of the input tensor "
                         f"({list(input.shape)}) but got indices tensor with shape: {list(indices.shape)}")
    size = _output_size(x, *_geometry(owner, dims, kernel_size, stride, padding), output_size)
    batch, channels, count = x.shape[0], x.shape[1], math.prod(size)
    index = indices.array.reshape(batch, channels, -1)
    if index.size:
        backend.check((index < 0) | (index >= count), lambda: InputError(
            f"{owner}: Found an invalid max index: {int(index.max())} (output volumes are of size "
            f"{'x'.join(map(str, size))})"))
    y = zeros(batch, channels, count, dtype=x.dtype, device=x.device).scatter(
        2, Tensor._make(index.astype("int64"), None), x.reshape(batch, channels, -1))
    y = y.reshape((batch, channels, *size))
    return y.squeeze(0) if unbatched else y


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """(N, C, L_in) or (C, L_in) values put back at their indices into (N, C, L_out) zeros."""
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """(N, C, H_in, W_in) or (C, H_in, W_in) values put back at their (flattened) indices into zeros."""
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """(N, C, D_in, H_in, W_in) or (C, D_in, H_in, W_in) values put back at their (flattened) indices."""
    return _max_unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding, output_size)


class _MaxUnpoolNd(Module):
    """torch's MaxUnpoolNd: kernel_size, stride (kernel_size by default) and padding kept as tuples."""
    dims, unpool = None, None

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = _geometry(type(self).__name__, self.dims, kernel_size, stride,
                                                                padding)

    def forward(self, input, indices, output_size=None):
        return self.unpool(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """The inverse of MaxPool1d: values at their indices, zeros elsewhere."""
    dims, unpool = 1, staticmethod(max_unpool1d)


class MaxUnpool2d(_MaxUnpoolNd):
    """The inverse of MaxPool2d: values at their indices, zeros elsewhere."""
    dims, unpool = 2, staticmethod(max_unpool2d)


class MaxUnpool3d(_MaxUnpoolNd):
    """The inverse of MaxPool3d: values at their indices, zeros elsewhere."""
    dims, unpool = 3, staticmethod(max_unpool3d)
