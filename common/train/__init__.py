"""The shared training loop over tasks (classification, token sequences, adversarial), its
configs, optimizers, schedules, evaluation and DDP support."""

from common.train.config import AdversarialConfig, OptimizerConfig, ScheduleConfig, TrainConfig
from common.train.distributed import DistContext, init_distributed
from common.train.evaluate import evaluate_classifier, evaluate_dataset
from common.train.tasks import AdversarialTask, ClassificationTask, Task, TokenTask
from common.train.trainer import Trainer, TrainHook, TrainResult

__all__ = [
    "AdversarialConfig",
    "AdversarialTask",
    "ClassificationTask",
    "DistContext",
    "OptimizerConfig",
    "ScheduleConfig",
    "Task",
    "TokenTask",
    "TrainConfig",
    "TrainHook",
    "TrainResult",
    "Trainer",
    "evaluate_classifier",
    "evaluate_dataset",
    "init_distributed",
]
