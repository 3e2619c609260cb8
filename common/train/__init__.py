"""The shared training loop, its configs, optimizers, schedules, evaluation and DDP support."""

from common.train.config import OptimizerConfig, ScheduleConfig, TrainConfig
from common.train.distributed import DistContext, init_distributed
from common.train.evaluate import evaluate_classifier, evaluate_dataset
from common.train.trainer import Trainer, TrainHook, TrainResult

__all__ = [
    "DistContext",
    "OptimizerConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TrainHook",
    "TrainResult",
    "Trainer",
    "evaluate_classifier",
    "evaluate_dataset",
    "init_distributed",
]
