"""The one training loop every paper uses, over tasks.

The loop is the same for every kind of training; a :class:`~common.train.tasks.Task` says what
a batch is, what one step does and how to evaluate (classification, token sequences, adversarial
training: see :mod:`common.train.tasks`). What the loop guarantees:

* **Reproducible**: the RNGs are re-seeded at the start of every epoch from ``(seed, epoch)`` and
  the batch order of epoch ``e`` depends only on ``(seed, e)``. A run that is interrupted and
  resumed therefore ends with the same weights as an uninterrupted one (bitwise on CPU).
* **Resumable**: after every epoch, and every ``checkpoint_every`` steps inside one, the model,
  the optimizers, the step counter, the history, the task's and the hooks' states (and, inside an
  epoch, the RNG states and the epoch's running sums) are written atomically to
  ``<checkpoint_dir>/last.pt``. Starting the same run again picks up where it stopped, skipping
  the batches already trained on. A checkpoint from a *different* configuration is moved aside,
  never silently mixed in (it is kept as ``last.pt.stale``).
* **Epochs or steps**: ``TrainConfig.epochs`` or ``TrainConfig.steps``; the learning-rate
  schedule is a function of the global step.
* **Extensible through hooks** (:class:`TrainHook`): extra losses (knowledge distillation),
  gradient surgery (pruning masks, weight sharing), per-epoch logging. Papers subclass the hook
  or the task, never copy the loop.
* **Multi-process** under ``torchrun`` (see :mod:`common.train.distributed`): DDP, sharded data,
  rank 0 writes checkpoints.

A mid-epoch resume is bitwise with ``num_workers: 0`` (the default here); with loader workers,
random data augmentation after the resume point can differ from the uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from common.checkpoint import atomic_save, safe_load
from common.config import to_dict
from common.fingerprint import data_digest, source_digest
from common.seed import derive_seed, seed_everything
from common.train.config import TrainConfig
from common.train.distributed import DistContext, all_reduce_sum, barrier, init_distributed
from common.train.optim import lr_factor, set_lr
from common.train.tasks import ClassificationTask, Evaluator, Task

CHECKPOINT_NAME = "last.pt"


class TrainHook:
    """Override any subset of these methods to change what the loop does.

    Hooks run in the order given to :class:`Trainer`. ``trainer`` exposes ``model`` (unwrapped),
    ``optimizer`` (and ``optimizers`` by name), ``epoch``, ``step`` and ``config``. A hook need not
    subclass this: any object with some of these methods works (the loop calls the ones it has).
    ``before_forward`` and ``extra_loss`` are called by the classification task; the others by
    every task.
    """

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first epoch (also after a resume)."""

    def before_forward(
        self, trainer: Trainer, inputs: Tensor, targets: Tensor, pass_index: int
    ) -> Tensor | None:
        """Before each forward pass of a step (``pass_index`` counts the step's passes, see
        ``passes_per_step``): change the model (e.g. pick a sub-network) or return replacement
        inputs (e.g. the batch at another resolution); ``None`` keeps them."""
        return None

    def extra_loss(
        self, trainer: Trainer, inputs: Tensor, targets: Tensor, outputs: Tensor
    ) -> Tensor | dict[str, Tensor] | None:
        """A term (or named terms) added to the task loss, e.g. a distillation loss."""
        return None

    def after_backward(self, trainer: Trainer) -> None:
        """Gradients are ready; the optimizer has not stepped (e.g. zero pruned gradients)."""

    def after_step(self, trainer: Trainer) -> None:
        """The optimizer has stepped (e.g. re-apply masks)."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        """An epoch finished; ``record`` holds its metrics. Runs before the checkpoint is written."""

    def state_dict(self) -> dict[str, Any]:
        """State saved in the checkpoint (tensors, numbers, strings, lists, dicts only)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict[str, float]]
    resumed_from_epoch: int = 0
    seconds: float = 0.0
    final: dict[str, float] = field(default_factory=dict)


def _rng_state() -> dict[str, Any]:
    """Every RNG the loop and its tasks draw from (for a resume inside an epoch)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fingerprint_of(config: Any, model: nn.Module, extra: Any = None, *, data: Any = None) -> str:
    """Hash of what defines a run: a checkpoint is only resumed under the same fingerprint.

    It covers the config, the architecture, the *starting* weights (a run that starts from a
    different model, e.g. another profile's baseline, must not resume this one's checkpoint),
    the data (``data``, e.g. :func:`~common.fingerprint.data_digest` of each dataset), the
    repository code the run depends on (:func:`~common.fingerprint.source_digest`: after an edit
    the finished old run is not resumed) and ``extra``.
    """
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    payload = {
        "config": to_dict(config),
        "model": type(model).__name__,
        "weights": h.hexdigest(),
        "data": data,
        "code": source_digest(),
        "extra": to_dict(extra),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


class Trainer:
    """Train ``model`` on ``train_data`` with ``config``, doing what ``task`` says.

    Args:
        model: the network (moved to the configured device); for adversarial training, the
            generator.
        config: a :class:`~common.train.config.TrainConfig`.
        train_data: a dataset in the task's format (map-style; batch-indexable datasets are
            batched in one call).
        eval_data: evaluated every ``config.eval_every`` epochs and after the last one.
        checkpoint_dir: where ``last.pt`` is kept; ``None`` disables checkpointing.
        task: a :class:`~common.train.tasks.Task`; default a
            :class:`~common.train.tasks.ClassificationTask` built from ``loss_fn``,
            ``evaluator``, ``passes_per_step`` and ``find_unused_parameters`` (see there).
        hooks: :class:`TrainHook` instances.
        param_groups: optimizer parameter groups; default all parameters.
        progress: show a progress bar (on a terminal, rank 0 only).
        fingerprint_extra: anything else that defines the run (data choice, pruning masks...);
            part of the resume fingerprint.
        log: ``log(message)`` for the per-epoch summary line; default prints to stdout.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        *,
        train_data: Dataset,
        eval_data: Dataset | None = None,
        checkpoint_dir: str | Path | None = None,
        task: Task | None = None,
        loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        evaluator: Evaluator | None = None,
        hooks: Sequence[TrainHook] = (),
        param_groups: list[dict[str, Any]] | None = None,
        progress: bool = True,
        fingerprint_extra: Any = None,
        log: Callable[[str], None] | None = None,
        dist_context: DistContext | None = None,
        passes_per_step: int = 1,
        find_unused_parameters: bool = False,
    ) -> None:
        if task is None:
            task = ClassificationTask(
                loss_fn=loss_fn,
                evaluator=evaluator,
                passes_per_step=passes_per_step,
                find_unused_parameters=find_unused_parameters,
            )
        elif (
            loss_fn is not None
            or evaluator is not None
            or passes_per_step != 1
            or find_unused_parameters
        ):
            raise ValueError(
                "loss_fn, evaluator, passes_per_step and find_unused_parameters configure the "
                "default classification task: give them to the task instead"
            )
        self.config = config
        self.model = model
        self.task = task
        self.train_data = train_data
        self.eval_data = eval_data
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.hooks = list(hooks)
        self.param_groups = param_groups
        self.progress = progress
        self.pass_index = 0
        extra = (
            fingerprint_extra
            if task.kind == "classification"
            else {
                "task": task.fingerprint(),
                "extra": fingerprint_extra,
            }
        )
        self.fingerprint = fingerprint_of(
            config,
            model,
            extra,
            data={"train": data_digest(train_data), "eval": data_digest(eval_data)},
        )
        self.log = log or (lambda msg: tqdm.write(msg, file=sys.stdout))
        self.ctx = dist_context
        self.epoch = 0
        self.step = 0
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.ddp_model: nn.Module | None = None
        self._resume: dict[str, Any] | None = None  # the mid-epoch part of a loaded checkpoint

    def hooks_with(self, method: str) -> list[tuple[Any, Callable[..., Any]]]:
        """``(hook, bound method)`` for the hooks that have ``method``, in order."""
        return [(h, getattr(h, method)) for h in self.hooks if callable(getattr(h, method, None))]

    def call_hooks(self, method: str, *args: Any) -> None:
        """Call ``method(self, *args)`` on every hook that has it."""
        for _, fn in self.hooks_with(method):
            fn(self, *args)

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        """The first (for most tasks the only) optimizer."""
        return next(iter(self.optimizers.values()), None)

    # ------------------------------------------------------------------ checkpointing
    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / CHECKPOINT_NAME if self.checkpoint_dir else None

    def _save(
        self,
        history: list[dict[str, float]],
        *,
        batch: int = 0,
        sums: dict[str, Tensor] | None = None,
    ) -> None:
        """Write the checkpoint; ``batch > 0``: inside epoch ``self.epoch``, after that many of
        its batches (with the RNG states and the epoch's running sums)."""
        if self.checkpoint_path is None or not self.ctx.is_main:
            return
        state = {
            "fingerprint": self.fingerprint,
            "epoch": self.epoch,
            "step": self.step,
            "batch": batch,
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "history": history,
            "task": self.task.state_dict(),
            "hooks": [h.state_dict() if hasattr(h, "state_dict") else {} for h in self.hooks],
        }
        if batch:
            state["rng"] = _rng_state()
            state["sums"] = {k: v.detach().cpu() for k, v in (sums or {}).items()}
        atomic_save(state, self.checkpoint_path)

    def _try_resume(self, total_steps: int) -> list[dict[str, float]]:
        path = self.checkpoint_path
        if path is None or not path.is_file():
            return []
        state = safe_load(path, map_location=self.ctx.device)
        if state.get("fingerprint") != self.fingerprint or "optimizers" not in state:
            if self.ctx.is_main:
                # One stale copy is kept (nothing lost by accident), older ones are replaced.
                stale = path.with_name(f"{path.name}.stale")
                path.replace(stale)
                self.log(
                    f"checkpoint {path} was made by another config, code or data "
                    f"(or another starting model); set aside as {stale.name}, starting afresh"
                )
            barrier(self.ctx)
            return []
        self.model.load_state_dict(state["model"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.task.load_state_dict(state.get("task", {}))
        for hook, hook_state in zip(self.hooks, state.get("hooks", []), strict=False):
            if hasattr(hook, "load_state_dict"):
                hook.load_state_dict(hook_state)
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        if state.get("batch"):
            self._resume = {
                "batch": int(state["batch"]),
                "rng": state["rng"],
                "sums": state["sums"],
            }
        if self.ctx.is_main:
            where = (
                f"after step {self.step}/{total_steps} (epoch {self.epoch + 1}, batch {state['batch']})"
                if state.get("batch")
                else f"after epoch {self.epoch} (step {self.step}/{total_steps})"
            )
            self.log(f"resuming from {path} {where}")
        return list(state["history"])

    # ------------------------------------------------------------------ main loop
    def fit(self) -> TrainResult:
        cfg = self.config
        if self.ctx is None:
            self.ctx = init_distributed(cfg.device)
        ctx = self.ctx
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if cfg.batch_size % ctx.world_size:
            raise ValueError(
                f"batch_size {cfg.batch_size} is not divisible by the {ctx.world_size} processes"
            )
        device = ctx.device
        task = self.task
        self.model.to(device)
        task.setup(self)
        # Frozen tensors (requires_grad=False, e.g. a re-parametrised original weight) are skipped.
        self.optimizers = task.build_optimizers(self)
        train_loader = task.train_loader(self, self.train_data)
        steps_per_epoch = len(train_loader)
        if steps_per_epoch == 0:
            raise ValueError("the training data gives no batch: is the dataset empty?")
        total_steps = cfg.steps if cfg.steps is not None else steps_per_epoch * cfg.epochs
        epochs = math.ceil(total_steps / steps_per_epoch)
        history = self._try_resume(total_steps)
        resumed_from = self.epoch
        task.wrap(self)
        eval_loader = task.eval_loader(self, self.eval_data) if self.eval_data is not None else None
        self.call_hooks("on_fit_start")

        start = time.perf_counter()
        while self.step < total_steps:
            epoch = self.epoch
            resume, self._resume = self._resume, None
            first = resume["batch"] if resume else 0
            seed_everything(derive_seed(cfg.seed, "epoch", epoch, "rank", ctx.rank))
            train_loader.batch_sampler_.set_epoch(epoch, first)
            self.model.train()
            self.ddp_model.train()
            t0 = time.perf_counter()
            sums: dict[str, Tensor] = {}
            batches = iter(train_loader)  # creating it draws the loader's seed: before a restore
            if resume:
                _set_rng_state(resume["rng"])
                sums = {k: v.to(device) for k, v in resume["sums"].items()}
            in_epoch = min(steps_per_epoch, total_steps - epoch * steps_per_epoch)
            bar = tqdm(
                total=in_epoch,
                initial=first,
                desc=f"epoch {epoch + 1}/{epochs}",
                disable=None if (self.progress and ctx.is_main) else True,
                leave=False,
                dynamic_ncols=True,
            )
            lr = 0.0
            for batch_index, batch in enumerate(batches, start=first):
                factor = lr_factor(
                    cfg.schedule,
                    self.step,
                    steps_per_epoch=steps_per_epoch,
                    total_steps=total_steps,
                    base_lr=cfg.optimizer.lr,
                )
                lrs = [set_lr(opt, factor) for opt in self.optimizers.values()]
                lr = lrs[0]
                shown = task.train_step(self, batch, sums)
                self.step += 1
                bar.update(1)
                if bar.n % 50 == 0 and not bar.disable:
                    bar.set_postfix(loss=f"{shown:.4f}", lr=f"{lr:.3g}")
                done = batch_index + 1
                if self.step >= total_steps or done >= steps_per_epoch:
                    break
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self._save(history, batch=done, sums=sums)
            bar.close()
            totals = {k: float(all_reduce_sum(v.clone(), ctx)) for k, v in sums.items()}
            record: dict[str, float] = {"epoch": float(epoch + 1), "lr": lr}
            record.update(task.epoch_record(totals))
            last = self.step >= total_steps
            if eval_loader is not None and (
                last or (cfg.eval_every and (epoch + 1) % cfg.eval_every == 0)
            ):
                for key, value in task.evaluate(self, eval_loader).items():
                    record[f"eval_{key}"] = value
            record["epoch_seconds"] = time.perf_counter() - t0
            self.epoch = epoch + 1
            self.call_hooks("on_epoch_end", record)
            history.append(record)
            self._save(history)
            barrier(ctx)
            if ctx.is_main:
                shown_items = "  ".join(
                    f"{k}={v:.4g}" for k, v in record.items() if k not in ("epoch", "epoch_seconds")
                )
                self.log(
                    f"epoch {epoch + 1}/{epochs}  {shown_items}  ({record['epoch_seconds']:.1f}s)"
                )
        seconds = time.perf_counter() - start
        return TrainResult(
            model=self.model,
            history=history,
            resumed_from_epoch=resumed_from,
            seconds=seconds,
            final=history[-1] if history else {},
        )
