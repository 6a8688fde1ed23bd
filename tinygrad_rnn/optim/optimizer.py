"""The Optimizer base: parameter groups, per-parameter state, and a state_dict in PyTorch's layout.

Subclasses write one method, `update(p, g, state, group)`, that changes `p.array` in place from
the gradient array `g`, taking `xp` from the data so the same rule runs on NumPy and CuPy.

With `foreach` None (the default) or True in a group, as the optimizers here pass it, the rule
runs once per step over all of the group's parameters of one device and dtype (a multi-tensor
step, as torch's foreach): their arrays become views of one flat buffer (`_Flat`), so do their
state's arrays, and `update` gets an object whose `.array` is the flat buffer, the flat state and
the gradients gathered into one array. A subclass that leaves "foreach" out of its defaults, or
foreach=False, gets one call per parameter. Each parameter's state stays its own dict of views, so state_dict() is as before. A step
where some parameter of the group has no gradient, or the parameters' states differ (different
step counts after skipped steps), updates each parameter alone on the same views. Whoever rebinds
a parameter's array (load_state_dict, .to()) or the state (Optimizer.load_state_dict) is noticed
at the next step, which gathers the new arrays into the buffer again.

On CuPy a rule with a kernel (`FUSED`, kernels.py) runs the flat update as that one kernel: the
rule's `fused_arguments` gives the step's scalars computed on the host. The first step (state
not made yet), foreach=False and the per-parameter fallbacks above run the NumPy rule.
"""
import copy
import numbers

import numpy as np

from .. import backend
from ..tensor import Tensor
from . import kernels


class Optimizer:
    """Holds `param_groups` (dicts of hyperparameters with a "params" list) and `state` (by parameter)."""

    FUSED = None  # the rule as one elementwise kernel (kernels.FusedUpdate), for the flat step on CuPy

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}
        self._flat = {}  # ids of a group's parameters of one device and dtype -> their _Flat
        self._scratch = {}
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or of dicts, "
                            f"got a single Tensor; wrap it in a list")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a group; its missing hyperparameters come from the constructor's defaults."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"a parameter group must be a dict with a 'params' entry, got {group!r:.80}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimize Tensors; got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__} can only optimize leaf tensors; "
                                 f"{p.name or 'a tensor'} of shape {p.shape} was computed by an op")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError("some parameters appear in more than one parameter group (or twice in one)")
        filled = {**self.defaults, **group, "params": params}
        if isinstance(filled.get("lr"), Tensor) and filled["lr"].numel() == 1:
            filled["lr"] = float(filled["lr"].item())   # torch takes an lr tensor; the update reads a number
        self.check_hyperparameters(filled)
        self.param_groups.append(filled)

    def check_hyperparameters(self, group):
        """Raise ValueError for an invalid value in `group` (subclasses add their own checks)."""
        for name in ("lr", "weight_decay", "eps"):
            if name in group and not (isinstance(group[name], numbers.Real) and group[name] >= 0):
                raise ValueError(f"{type(self).__name__}: invalid {name} {group[name]!r}; expected a number >= 0")
        if group.get("differentiable"):
            raise ValueError(f"{type(self).__name__}: differentiable=True (a step recorded for autograd) is not "
                             f"supported; the update runs in place on the parameters' arrays")

    # ------------------------------------------------------------------ the update

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.array[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient; `closure` re-evaluates the loss (returned)."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            # parameters without a gradient (frozen, or unused this step) are left as they are
            for params in _by_device_and_dtype([p for p in group["params"] if p.grad is not None]):
                if not self._step_flat(params, group):
                    for p in params:
                        self._step_one(p, group)
        return loss

    def _step_one(self, p, group):
        g = p.grad.array
        if g.dtype != p.dtype:
            g = g.astype(p.dtype)
        if group.get("maximize", False):
            g = -g
        state = self.state.get(p, {})
        self.update(p, g, state, group)
        p._version += 1  # an in-place change: a graph that saved p now refuses to backward
        if state:  # a rule without state (plain SGD) leaves none, as in PyTorch
            self.state[p] = state

    def _step_flat(self, params, group):
        """One update over the flat buffer of `params` (same device and dtype); False where it cannot run."""
        if group.get("foreach", False) is False or len(params) < 2:
            return False
        flat = self._flat.get(tuple(map(id, params)))
        if flat is None or not flat.current(self.state):
            flat = _Flat.gather(params, self.state)
            if flat is None:
                return False
            self._flat[tuple(map(id, params))] = flat
        xp = backend.xp_of(flat.array)
        g = xp.concatenate([p.grad.array.reshape(-1) for p in params]).astype(flat.array.dtype, copy=False)
        if not self._fused_step(flat, g, group):
            if group.get("maximize", False):
                xp.negative(g, out=g)
            self.update(flat, g, flat.state, group)
        flat.scatter_state(self.state)
        for p in params:
            p._version += 1
        return True

    def _fused_step(self, flat, g, group):
        """The flat update as one launch of the rule's kernel; False (nothing changed) where it does not apply."""
        launch = kernels.launcher(flat.array)
        values = self.fused_arguments(flat.state, group) if launch is not None and self.FUSED is not None else None
        if values is None:
            return False
        values.update(p=flat.array, g=g, maximize=group.get("maximize", False))
        arguments = self.FUSED.arguments(values, flat.array)
        if arguments is None:
            return False
        launch(self.FUSED, arguments, flat.array.size)
        self.count_step(flat.state, group)
        return True

    def count_step(self, state, group):
        """After a launch, advance the state's scalars as `update` would have (the step count; a rule with
        more scalar state, such as a decaying rate, advances that too)."""
        if "step" in state:
            state["step"] += 1

    def update(self, p, g, state, group):
        raise NotImplementedError

    def fused_arguments(self, state, group):
        """{name: value} of FUSED's arrays (from `state`), scalars and flags for the step to come (its number
        is state["step"] + 1; the caller counts it after the launch), or None where the NumPy rule must run."""

    def scratch(self, like, slot=0):
        """A scratch array of `like`'s shape, dtype and device, kept for the next steps (its values are garbage);
        a rule that needs two at once asks for slots 0 and 1."""
        key = (type(like), backend.device_of(like), like.dtype, like.shape, slot)
        work = self._scratch.get(key)
        if work is None:
            work = self._scratch[key] = backend.xp_of(like).empty_like(like)
        return work

    # ------------------------------------------------------------------ saving and loading

    def _index(self):
        """Parameters numbered in group order, as PyTorch numbers them in state_dict()."""
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self):
        """{"state": {index: {name: value}}, "param_groups": [{..., "params": [indices]}]}.

        Arrays are host NumPy copies, so the result can be saved with `save_checkpoint` and kept
        while training goes on.
        """
        index = {id(p): i for i, p in enumerate(self._index())}
        groups, start = [], 0
        for group in self.param_groups:
            saved = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            saved["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(saved)
        state = {index[id(p)]: {k: _to_host(v) for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a state_dict() of an optimizer over parameters of the same group sizes and shapes.

        Every mismatch is reported at once and nothing changes on error. Arrays move to each
        parameter's device; floating arrays take its dtype (as PyTorch casts them).
        """
        saved_groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        saved_state = state_dict.get("state") if isinstance(state_dict, dict) else None
        if not isinstance(saved_groups, (list, tuple)) or not isinstance(saved_state, dict):
            raise TypeError(f"{type(self).__name__}.load_state_dict: expected a dict with 'state' and "
                             f"'param_groups', got {type(state_dict).__name__}")
        problems = []
        if len(saved_groups) != len(self.param_groups):
            problems.append(f"the state has {len(saved_groups)} parameter groups, "
                            f"this optimizer {len(self.param_groups)}")
        else:
            for k, (saved, own) in enumerate(zip(saved_groups, self.param_groups)):
                if len(saved["params"]) != len(own["params"]):
                    problems.append(f"group {k} has {len(saved['params'])} parameters in the state, "
                                    f"{len(own['params'])} here")
        by_index = {}
        if not problems:
            for saved, own in zip(saved_groups, self.param_groups):
                by_index.update(zip(saved["params"], own["params"]))
            for i, entries in saved_state.items():
                if i not in by_index:
                    problems.append(f"state for parameter {i}, which no group lists")
                    continue
                p = by_index[i]
                for name, value in entries.items():
                    expected = self.state_shape(p, name)
                    if isinstance(value, np.ndarray) and value.ndim and value.shape != expected:
                        problems.append(f"state[{i}][{name!r}] has shape {value.shape}, "
                                        f"parameter {p.name or i} needs {expected}")
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        self.state = {by_index[i]: {name: _to_param(value, by_index[i]) for name, value in entries.items()}
                      for i, entries in saved_state.items()}
        for saved, own in zip(saved_groups, self.param_groups):
            own.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})

    def state_shape(self, p, name):
        """The shape of the state array `name` of parameter p (the parameter's own, unless a rule factors it)."""
        return p.shape

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            lines += [f"    {name}: {value}" for name, value in sorted(group.items()) if name != "params"]
        return "\n".join(lines) + "\n)"


def _by_device_and_dtype(params):
    """The parameters split by (array type, device, dtype), in order: each part can share one buffer."""
    parts = {}
    for p in params:
        parts.setdefault((type(p.array), p.device, p.dtype), []).append(p)
    return list(parts.values())


class _Flat:
    """Parameters of one device and dtype whose arrays, and their state's arrays, are views of flat buffers.

    `array` is the flat parameter buffer and `state` the flat state, so an update rule sees this
    object as one big parameter. `current(state)` says whether the parameters' arrays and state
    entries are still the views handed out (nobody rebound them since).
    """

    def __init__(self, params, array):
        self.params, self.array = params, array
        self.sizes = [p.array.size for p in params]
        self.views = self._split(array)
        self.state, self.state_views = {}, {}

    def _split(self, array):
        views, start = [], 0
        for p, size in zip(self.params, self.sizes):
            views.append(array[start:start + size].reshape(p.shape))
            start += size
        return views

    @classmethod
    def gather(cls, params, state):
        """Copy the parameters (and their state, when all have the same entries) into flat buffers, or None."""
        states = [state.get(p, {}) for p in params]
        first = states[0]
        for p, s in zip(params, states):
            if s.keys() != first.keys():
                return None
            for name, value in s.items():
                fits = _is_array(value) and value.shape == p.shape if _is_array(first[name]) else \
                    _scalar_equal(value, first[name])
                if not fits:
                    return None
        xp = backend.xp_of(params[0].array)
        flat = cls(params, xp.concatenate([p.array.reshape(-1) for p in params]))
        for p, view in zip(params, flat.views):
            p.array = view  # same values; from now on the parameter lives in the flat buffer
        for name, value in first.items():
            if _is_array(value):
                flat.state[name] = xp.concatenate([s[name].reshape(-1) for s in states]).astype(
                    value.dtype, copy=False)
                flat.state_views[name] = flat._split(flat.state[name])
            else:
                flat.state[name] = value
        for k, s in enumerate(states):  # each parameter's entries become views of the flat state
            for name, views in flat.state_views.items():
                s[name] = views[k]
        return flat

    def current(self, state):
        if any(p.array is not view for p, view in zip(self.params, self.views)):
            return False
        for k, p in enumerate(self.params):
            own = state.get(p, {})
            if own.keys() != self.state.keys():
                return False
            for name, value in own.items():
                views = self.state_views.get(name)
                if (value is not views[k]) if views is not None else not _scalar_equal(value, self.state[name]):
                    return False
        return True

    def scatter_state(self, state):
        """Hand the flat state to each parameter: views of new arrays (made once), scalars every step."""
        for name, value in self.state.items():
            if _is_array(value) and name not in self.state_views:
                self.state_views[name] = self._split(value)
        if not self.state:
            return
        for k, p in enumerate(self.params):
            own = state.setdefault(p, {})
            for name, value in self.state.items():
                own[name] = self.state_views[name][k] if name in self.state_views else value


def _is_array(value):
    return isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__")


def _scalar_equal(a, b):
    return not _is_array(a) and not _is_array(b) and type(a) is type(b) and a == b


def _to_host(value):
    if isinstance(value, (np.ndarray, np.generic)) or hasattr(value, "__cuda_array_interface__"):
        return backend.to_numpy(value).copy()
    return copy.deepcopy(value)


def _to_param(value, p):
    if not isinstance(value, np.ndarray):
        return copy.deepcopy(value)
    if value.dtype.kind == "f":
        value = value.astype(p.dtype)
    return backend.to_device(value, p.device).copy()
