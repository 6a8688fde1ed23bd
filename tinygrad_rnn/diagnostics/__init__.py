"""Why plain RNNs forget and gated ones remember, measured on a user's own model.

- sensitivity: ||d output(t) / d x(s)||, the lecture's sensitivity curve (`sensitivity`,
  `jacobian_norms`, `decay_rate`);
- gradients: ||dL/dh(t)|| and ||dL/dc(t)|| per step of a training loss (`state_gradient_norms`,
  `step_gradient_norms`);
- spectrum: eigenvalues and spectral radius of a recurrent weight, ||W^t h(0)||
  (`eigenvalues`, `spectral_radius`, `linear_recurrence_norms`, `recurrent_weights`);
- landscape: the loss along a line or a plane through the weights, and training runs with and
  without gradient clipping from one start (`loss_along_line`, `loss_on_plane`, `clipping_runs`);
- curvature: Hessian-vector products and the Hessian's dominant eigenvalue by power iteration,
  at one point or along a training run (`hvp`, `top_eigenvalue`, `curvature_along`,
  `parameter_function`).
"""
from .curvature import curvature_along, hvp, parameter_function, top_eigenvalue
from .gradients import state_gradient_norms, step_gradient_norms
from .landscape import (
    axis_direction,
    clipping_runs,
    gradient_direction,
    loss_along_line,
    loss_on_plane,
    plane_coordinates,
    random_direction,
    train,
)
from .sensitivity import decay_rate, jacobian_norms, sensitivity
from .spectrum import content_block, eigenvalues, linear_recurrence_norms, recurrent_weights, spectral_radius

__all__ = [
    "axis_direction", "clipping_runs", "content_block", "curvature_along", "decay_rate", "eigenvalues",
    "gradient_direction", "hvp", "jacobian_norms", "linear_recurrence_norms", "loss_along_line",
    "loss_on_plane", "parameter_function", "plane_coordinates", "random_direction", "recurrent_weights",
    "sensitivity", "spectral_radius", "state_gradient_norms", "step_gradient_norms", "top_eigenvalue", "train",
]
