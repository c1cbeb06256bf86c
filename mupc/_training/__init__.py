"""Trainers: predictive coding and backprop, one compiled step each."""

from .base import (
    StepMetrics as StepMetrics,
    Trainer as Trainer,
    TrainState as TrainState,
    apply_gradients as apply_gradients,
    trainable as trainable,
)
from .bp import BPTrainer as BPTrainer
from .pc import Inferred as Inferred, PCTrainer as PCTrainer
