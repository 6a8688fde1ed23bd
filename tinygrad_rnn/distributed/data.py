"""Each rank's share of every batch, for the built-in tasks and the text corpus.

Every rank draws the same global batch (the tasks' generators are seeded alike) and keeps one
contiguous block of its sequences: rank r of K takes sequences r*B/K up to (r+1)*B/K. K ranks
therefore see exactly the sequences one process with batch B sees. In stateful language
modelling (truncated BPTT) the batch's columns are streams of text, so rank r reads its own
columns and carries its own hidden state from chunk to chunk.
"""
import numpy as np

from .. import backend
from ..tensor import Tensor

# task -> batch axis of (inputs, targets): inputs are time-major (T, B, ...), the adding problem's
# targets are (B, 1)
BATCH_AXES = {"lm": (1, 1), "copy": (1, 1), "adding": (1, 0)}
STATE_BATCH_AXIS = 1  # h_n and c_n are (num_layers, batch, hidden), as in PyTorch


def check_equal_shards(batch_size, world_size):
    """Averaging the ranks' gradients gives the full batch's only when every rank holds as many samples."""
    if batch_size % world_size:
        raise ValueError(f"batch_size {batch_size} does not split evenly over {world_size} ranks: the mean "
                         f"of the ranks' gradients equals the full batch's only when every rank has the same "
                         f"number of sequences; choose a multiple of {world_size}")
    return batch_size // world_size


def shard_rows(batch_size, rank, world_size):
    """The slice of the batch dimension that `rank` trains on."""
    size = check_equal_shards(batch_size, world_size)
    return slice(rank * size, (rank + 1) * size)


def take_rows(array, rows, axis):
    """array[..., rows, ...] along `axis`, contiguous."""
    index = (slice(None),) * axis + (rows,)
    return backend.xp_of(array).ascontiguousarray(array[index])


def _map_state(fn, state):
    """Apply fn to every array of a carried state: an array or Tensor, None, or tuples of them."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return type(state)(_map_state(fn, s) for s in state)
    return fn(state)


class ShardedTask:
    """A built-in task (train.tasks) whose every batch is cut into equal shards, one per rank.

    Everything but the batches is the task's own: evaluation runs the whole validation set on
    every rank (the same numbers everywhere), baselines and the corpus are unchanged. Its
    state_dict holds the state carried by *all* ranks, gathered after each step, so a checkpoint
    is the one a single process would write and can be resumed on any number of ranks that
    divides the batch.
    """

    def __init__(self, task, comm):
        if task.config.task not in BATCH_AXES:
            raise ValueError(f"no data-parallel split is known for task {task.config.task!r}; "
                             f"known: {', '.join(BATCH_AXES)}")
        self.task, self.comm = task, comm
        self.batch_size = task.config.batch_size
        self.rows = shard_rows(self.batch_size, comm.rank, comm.world_size)
        self.axes = BATCH_AXES[task.config.task]
        self.full_carry = None  # every rank's carried state side by side, as one process would hold it

    def __getattr__(self, name):  # unit, corpus, baseline(), evaluate(), ...: the task's own
        if name == "task":
            raise AttributeError(name)
        return getattr(self.task, name)

    def batch(self):
        return tuple(take_rows(array, self.rows, axis) for array, axis in zip(self.task.batch(), self.axes))

    def loss(self, model, batch):
        loss = self.task.loss(model, batch)
        self.full_carry = _map_state(self._gather, getattr(self.task, "carry", None))
        return loss

    def items(self, batch):
        return self.task.items(batch) * self.comm.world_size  # every shard is the same size

    def state_dict(self):
        state = self.task.state_dict()
        if "carry" in state:
            state["carry"] = _map_state(backend.to_numpy, self.full_carry)
        return state

    def load_state_dict(self, state):
        state = dict(state)
        if state.get("carry") is not None:
            self.full_carry = state["carry"]
            state["carry"] = _map_state(self._own_rows, state["carry"])
        self.task.load_state_dict(state)

    def _gather(self, tensor):
        shard = tensor.array if isinstance(tensor, Tensor) else tensor
        xp = backend.xp_of(shard)
        shard = xp.ascontiguousarray(shard)
        gathered = xp.empty((self.comm.world_size,) + shard.shape, dtype=shard.dtype)
        self.comm.all_gather_into_tensor(gathered, shard)
        return xp.concatenate(list(gathered), axis=STATE_BATCH_AXIS)

    def _own_rows(self, array):
        if np.shape(array)[STATE_BATCH_AXIS] != self.batch_size:
            raise ValueError(f"the carried state in the checkpoint holds {np.shape(array)[STATE_BATCH_AXIS]} "
                             f"sequences (shape {np.shape(array)}), this run's batch has {self.batch_size}")
        return take_rows(np.asarray(array), self.rows, STATE_BATCH_AXIS)
