"""Inference solvers: minimise the energy over the activities (or, for ePC, the errors)."""

from .base import (
    InferenceResult as InferenceResult,
    InferenceSolver as InferenceSolver,
    activity_lr_from_batch_mean as activity_lr_from_batch_mean,
)
from .continuous import ContinuousInference as ContinuousInference
from .discrete import DiscreteInference as DiscreteInference
from .error import ErrorInference as ErrorInference
from .langevin import LangevinInference as LangevinInference
from .sequential import SequentialInference as SequentialInference
