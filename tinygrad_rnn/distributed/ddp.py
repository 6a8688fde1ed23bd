"""DistributedDataParallel: one replica of a model per rank, gradients averaged over the ranks.

    comm = Communicator()                       # under `mpirun -n K`
    ddp = DistributedDataParallel(model, comm)  # every rank now holds rank 0's weights
    loss = loss_fn(ddp(x_shard), y_shard)       # each rank its own equal share of the batch
    loss.backward()
    ddp.average_gradients()                     # p.grad = the mean of the ranks' gradients
    optimizer.step()                            # the same update on every rank

Averaging is exact only in this sense: when the loss is a *mean* over the batch and every rank
holds the same number of samples, the mean of the K shard gradients is the full batch's gradient,
so K ranks with B/K samples each take the same steps as one process with B (up to rounding). A
summed loss would come out K times too small, and unequal shards would weigh samples unequally.

Two departures from torch.nn.parallel.DistributedDataParallel, on purpose:

- Names: `ddp.module` is the model, and `ddp.state_dict()` *is* the model's, with the same names
  (PyTorch prefixes them with `module.`). A checkpoint written from either loads into either,
  and into a run on any number of ranks.
- Averaging finishes in a call, `average_gradients()`, after backward. As in PyTorch, each bucket's
  all-reduce starts during backward, from the parameters' post-accumulate hooks, as soon as backward
  has finished that bucket's gradients (buckets start in bucket order on every rank, so the ranks'
  collectives always match); `average_gradients()` starts the buckets backward did not complete
  (unused parameters), waits for all of them and writes the means. On NCCL a bucket reduces on its
  own stream while backward goes on; on MPI the requests are non-blocking, but Open MPI progresses
  them only inside MPI calls. Several backward passes that accumulate into one step go inside
  `with ddp.no_sync():`, as in PyTorch.
"""
import contextlib

import numpy as np

from .. import backend
from ..nn.module import Module
from ..tensor import Tensor
from .comm import ReduceOp

MB = 1 << 20


def _set_grad(p, array):
    """Give `p` this gradient: in place where it has a plain one (others see the change), else a new one."""
    if p.grad is not None and p.grad.grad_fn is None:
        p.grad.array[...] = array
    else:  # none yet, or one with a graph (backward with create_graph) that must not change under it
        p.grad = Tensor(array.copy(), dtype=array.dtype)


class Bucket:
    """Parameters of one dtype and device whose gradients travel together in one flat buffer."""

    def __init__(self, named_params):
        self.names = [name for name, _ in named_params]
        self.params = [p for _, p in named_params]
        self.dtype, self.device = self.params[0].dtype, self.params[0].device
        stops = np.cumsum([p.numel() for p in self.params])
        self.bounds = list(zip([0, *stops[:-1].tolist()], stops.tolist()))
        self.flat = self.params[0].xp.zeros(int(stops[-1]), dtype=self.dtype)

    def _check(self, name, p):
        if p.dtype != self.dtype or p.device != self.device:
            raise RuntimeError(f"DistributedDataParallel: parameter {name} is now {p.dtype} on {p.device}, "
                               f"it was {self.dtype} on {self.device} when the model was wrapped; move or "
                               f"cast the model before wrapping it")

    def check(self):
        for name, p in zip(self.names, self.params):
            self._check(name, p)

    def pack(self, arrays):
        """Copy the given arrays (None: zeros) into the flat buffer, in order."""
        self.check()
        for p, (start, stop), array in zip(self.params, self.bounds, arrays):
            self.flat[start:stop] = 0 if array is None else array.reshape(-1)

    def views(self):
        """The flat buffer cut back into one view per parameter, in its shape."""
        return [self.flat[start:stop].reshape(p.shape) for p, (start, stop) in zip(self.params, self.bounds)]


def make_buckets(named_params, cap_bytes):
    """Buckets of at most `cap_bytes` (a larger parameter gets one of its own), per dtype and device.

    Parameters go in reverse order, the order in which backward finishes their gradients, as
    PyTorch's DDP orders them (so a backward hook could start the first bucket earliest).
    """
    buckets, open_ = [], {}  # open_: (device, dtype) -> the bucket being filled and its size in bytes
    for name, p in reversed(named_params):
        key = (p.device, p.dtype.str)
        members, size = open_.get(key, ([], 0))
        if members and size + p.array.nbytes > cap_bytes:
            members, size = [], 0
        if not members:
            buckets.append(members)
        members.append((name, p))
        open_[key] = (members, size + p.array.nbytes)
    return [Bucket(members) for members in buckets]


class DistributedDataParallel(Module):
    """`DistributedDataParallel(module, comm, bucket_cap_mb=25)`: see the module's docstring.

    Building it is a collective: every rank must wrap its model at the same point, and rank 0's
    parameters are broadcast to all. `forward` is the model's.
    """

    def __init__(self, module, comm, bucket_cap_mb=25):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a tinygrad_rnn Module, "
                            f"got {type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got {bucket_cap_mb}")
        object.__setattr__(self, "module", module)  # not registered as a child: names stay the model's own
        self.comm = comm
        named = list(module.named_parameters())
        if not named:
            raise ValueError(f"DistributedDataParallel: {type(module).__name__} has no parameters "
                             f"to keep in step")
        on_gpu = [name for name, p in named if p.device == "cuda"]
        if on_gpu and getattr(comm, "backend", "mpi") != "nccl":
            raise backend.DeviceError(f"DistributedDataParallel: parameters such as {on_gpu[0]} are on cuda "
                                      f"but the communicator has no NCCL; create it with "
                                      f"Communicator(device='cuda')")
        self.buckets = make_buckets(named, bucket_cap_mb * MB)
        self._has_grad = np.zeros(len(named), dtype=np.int64)  # per parameter: on how many ranks it got one
        self.broadcast_parameters()
        self._syncing = True
        self._reset_buckets()
        for k, bucket in enumerate(self.buckets):
            for p in bucket.params:
                p.register_post_accumulate_grad_hook(lambda p, k=k: self._gradient_ready(k))

    # ------------------------------------------------------------------ buckets started during backward

    def _reset_buckets(self):
        self._ready = [0] * len(self.buckets)  # per bucket: how many of its gradients backward finished
        self._works = []  # the all-reduces started so far, in bucket order

    def _gradient_ready(self, k):
        if not self._syncing:
            return
        self._ready[k] += 1
        while len(self._works) < len(self.buckets):  # start in bucket order: every rank issues the same
            nxt = len(self._works)
            if self._ready[nxt] < len(self.buckets[nxt].params):
                break
            self._start(nxt)

    def _start(self, k):
        bucket = self.buckets[k]
        bucket.pack([None if p.grad is None else p.grad.array for p in bucket.params])
        self._works.append(self.comm.all_reduce(bucket.flat, ReduceOp.SUM, async_op=True))

    @contextlib.contextmanager
    def no_sync(self):
        """Accumulate gradients over several backward passes without averaging them (as PyTorch)."""
        before, self._syncing = self._syncing, False
        try:
            yield
        finally:
            self._syncing = before

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        yield prefix, self
        yield from self.module.named_modules(memo, prefix, remove_duplicate)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def train(self, mode=True):
        object.__setattr__(self, "training", bool(mode))
        self.module.train(mode)
        return self

    def state_dict(self, *args, **kwargs):
        """The model's own state_dict: the same names, no "module." prefix."""
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict=True):
        return self.module.load_state_dict(state_dict, strict=strict)

    def extra_repr(self):
        return f"world_size={self.comm.world_size}, buckets={len(self.buckets)}"

    def __repr__(self):
        inner = repr(self.module).replace("\n", "\n  ")
        return f"{type(self).__name__}({self.extra_repr()}\n  (module): {inner}\n)"

    # ------------------------------------------------------------------ keeping the replicas equal

    def broadcast_parameters(self, src=0):
        """Overwrite every rank's parameters with rank `src`'s, in place (optimizers keep theirs)."""
        works = []
        for bucket in self.buckets:
            bucket.pack([p.array for p in bucket.params])
            works.append(self.comm.broadcast(bucket.flat, src=src, async_op=True))
        for bucket, work in zip(self.buckets, works):
            work.wait()
            for p, view in zip(bucket.params, bucket.views()):
                p.array[...] = view

    def average_gradients(self):
        """Replace every parameter's gradient by its mean over the ranks; call it after backward.

        A parameter without a gradient on some rank counts as zero there; one without a gradient on
        every rank keeps none (as PyTorch's DDP with find_unused_parameters=True leaves it).
        """
        for bucket in self.buckets:  # the model may have been moved or cast since backward packed it
            bucket.check()
        while len(self._works) < len(self.buckets):  # buckets backward did not complete (unused parameters)
            self._start(len(self._works))
        self._has_grad[:] = [p.grad is not None for bucket in self.buckets for p in bucket.params]
        flags = self.comm.all_reduce(self._has_grad, ReduceOp.SUM, async_op=True)
        works = self._works
        self._reset_buckets()
        flags.wait()
        index = 0
        for bucket, work in zip(self.buckets, works):
            work.wait()
            bucket.flat /= bucket.dtype.type(self.comm.world_size)
            for p, mean in zip(bucket.params, bucket.views()):
                if self._has_grad[index]:
                    _set_grad(p, mean)
                index += 1
