"""The one training loop every paper uses.

What it guarantees:

* **Reproducible**: the RNGs are re-seeded at the start of every epoch from ``(seed, epoch)`` and
  the batch order of epoch ``e`` depends only on ``(seed, e)``. A run that is interrupted and
  resumed therefore ends with the same weights as an uninterrupted one (bitwise on CPU).
* **Resumable**: after every epoch the model, optimizer, step counter, history and hook states are
  written atomically to ``<checkpoint_dir>/last.pt``. Starting the same run again picks up after
  the last finished epoch. A checkpoint from a *different* configuration is moved aside, never
  silently mixed in
  (it is kept as ``last.pt.stale``).
* **Extensible through hooks** (:class:`TrainHook`): extra losses (knowledge distillation),
  gradient surgery (pruning masks, weight sharing), per-epoch logging. Papers subclass the hook,
  never copy the loop.
* **Multi-process** under ``torchrun`` (see :mod:`common.train.distributed`): DDP, sharded data,
  rank 0 writes checkpoints.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from common.checkpoint import atomic_save, safe_load
from common.config import to_dict
from common.data.loader import build_loader
from common.seed import derive_seed, seed_everything
from common.train.config import TrainConfig
from common.train.distributed import DistContext, all_reduce_sum, barrier, init_distributed
from common.train.evaluate import evaluate_classifier
from common.train.optim import build_optimizer, lr_factor, set_lr

CHECKPOINT_NAME = "last.pt"


class TrainHook:
    """Override any subset of these methods to change what the loop does.

    Hooks run in the order given to :class:`Trainer`. ``trainer`` exposes ``model`` (unwrapped),
    ``optimizer``, ``epoch``, ``step`` and ``config``.
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


Evaluator = Callable[[nn.Module, Any, torch.device, DistContext], dict[str, float]]


def _default_evaluator(
    model: nn.Module, loader: Any, device: torch.device, ctx: DistContext
) -> dict[str, float]:
    return evaluate_classifier(model, loader, device=device, ctx=ctx)


def _dataset_signature(data: Any) -> Any:
    if data is None:
        return None
    sig: dict[str, Any] = {"type": type(data).__name__, "len": len(data)}
    labels = getattr(data, "labels", None)
    if isinstance(labels, Tensor):  # in-memory datasets: which samples, not just how many
        sig["labels"] = hashlib.sha256(labels.cpu().numpy().tobytes()).hexdigest()[:16]
    return sig


def fingerprint_of(config: Any, model: nn.Module, extra: Any = None, *, data: Any = None) -> str:
    """Hash of what defines a run: a checkpoint is only resumed under the same fingerprint.

    It covers the config, the architecture, the *starting* weights (a run that starts from a
    different model, e.g. another profile's baseline, must not resume this one's checkpoint),
    the data and ``extra``.
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
        "extra": to_dict(extra),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


class Trainer:
    """Train ``model`` on ``train_data`` with ``config``.

    Args:
        model: the network (moved to the configured device).
        config: a :class:`~common.train.config.TrainConfig`.
        train_data: a map-style dataset; batch-indexable datasets are batched in one call.
        eval_data: evaluated every ``config.eval_every`` epochs and after the last one.
        checkpoint_dir: where ``last.pt`` is kept; ``None`` disables checkpointing.
        loss_fn: ``loss_fn(outputs, targets) -> Tensor``; default cross-entropy with the
            configured label smoothing.
        evaluator: ``evaluator(model, loader, device, ctx) -> metrics``; default top-1 error.
        hooks: :class:`TrainHook` instances.
        param_groups: optimizer parameter groups; default all parameters.
        progress: show a progress bar (on a terminal, rank 0 only).
        fingerprint_extra: anything else that defines the run (data choice, pruning masks...);
            part of the resume fingerprint.
        passes_per_step: forward/backward passes over each batch before the optimizer steps;
            their gradients add up (each pass is preceded by the hooks' ``before_forward``, so
            the passes can run different sub-networks, as Once-for-All's training does).
        find_unused_parameters: under DDP, allow parameters that a pass does not use (weight
            sharing supernets whose sub-networks skip layers).
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
        if passes_per_step < 1:
            raise ValueError(f"passes_per_step must be >= 1, got {passes_per_step}")
        self.config = config
        self.model = model
        self.train_data = train_data
        self.eval_data = eval_data
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.loss_fn = loss_fn or nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.evaluator = evaluator or _default_evaluator
        self.hooks = list(hooks)
        self.param_groups = param_groups
        self.progress = progress
        self.passes_per_step = passes_per_step
        self.find_unused_parameters = find_unused_parameters
        self.pass_index = 0
        self.fingerprint = fingerprint_of(
            config,
            model,
            fingerprint_extra,
            data={"train": _dataset_signature(train_data), "eval": _dataset_signature(eval_data)},
        )
        self.log = log or (lambda msg: tqdm.write(msg, file=sys.stdout))
        self.ctx = dist_context
        self.epoch = 0
        self.step = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self.ddp_model: nn.Module | None = None

    # ------------------------------------------------------------------ checkpointing
    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / CHECKPOINT_NAME if self.checkpoint_dir else None

    def _save(self, history: list[dict[str, float]]) -> None:
        if self.checkpoint_path is None or not self.ctx.is_main:
            return
        state = {
            "fingerprint": self.fingerprint,
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": history,
            "hooks": [h.state_dict() for h in self.hooks],
        }
        atomic_save(state, self.checkpoint_path)

    def _try_resume(self) -> list[dict[str, float]]:
        path = self.checkpoint_path
        if path is None or not path.is_file():
            return []
        state = safe_load(path, map_location=self.ctx.device)
        if state.get("fingerprint") != self.fingerprint:
            if self.ctx.is_main:
                # One stale copy is kept (nothing lost by accident), older ones are replaced.
                stale = path.with_name(f"{path.name}.stale")
                path.replace(stale)
                self.log(
                    f"checkpoint {path} belongs to a different configuration; moved to {stale.name}, starting afresh"
                )
            barrier(self.ctx)
            return []
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for hook, hook_state in zip(self.hooks, state.get("hooks", []), strict=False):
            hook.load_state_dict(hook_state)
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        if self.ctx.is_main:
            self.log(f"resuming from {path} after epoch {self.epoch}/{self.config.epochs}")
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
        self.model.to(device)
        # Frozen tensors (requires_grad=False, e.g. a re-parametrised original weight) are skipped.
        params = (
            self.param_groups
            if self.param_groups is not None
            else [p for p in self.model.parameters() if p.requires_grad]
        )
        self.optimizer = build_optimizer(params, cfg.optimizer)
        history = self._try_resume()
        resumed_from = self.epoch
        net: nn.Module = self.model
        if ctx.distributed:
            net = nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=self.find_unused_parameters,
            )
        self.ddp_model = net

        train_loader = build_loader(
            self.train_data,
            batch_size=cfg.batch_size // ctx.world_size,
            shuffle=True,
            seed=cfg.seed,
            rank=ctx.rank,
            world_size=ctx.world_size,
            num_workers=cfg.num_workers,
            pin_memory=device.type == "cuda",
        )
        eval_loader = None
        if self.eval_data is not None:
            eval_loader = build_loader(
                self.eval_data,
                batch_size=cfg.eval_batch_size,
                shuffle=False,
                rank=ctx.rank,
                world_size=ctx.world_size,
                num_workers=cfg.num_workers,
            )
        steps_per_epoch = len(train_loader)
        total_steps = steps_per_epoch * cfg.epochs
        for hook in self.hooks:
            hook.on_fit_start(self)

        start = time.perf_counter()
        while self.epoch < cfg.epochs:
            epoch = self.epoch
            seed_everything(derive_seed(cfg.seed, "epoch", epoch, "rank", ctx.rank))
            train_loader.batch_sampler_.set_epoch(epoch)
            net.train()
            t0 = time.perf_counter()
            sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss*n, correct, n
            extra_sums: dict[str, Tensor] = {}
            bar = tqdm(
                total=steps_per_epoch,
                desc=f"epoch {epoch + 1}/{cfg.epochs}",
                disable=None if (self.progress and ctx.is_main) else True,
                leave=False,
                dynamic_ncols=True,
            )
            lr = 0.0
            for inputs, targets in train_loader:
                lr = set_lr(
                    self.optimizer,
                    lr_factor(
                        cfg.schedule,
                        self.step,
                        steps_per_epoch=steps_per_epoch,
                        total_steps=total_steps,
                        base_lr=cfg.optimizer.lr,
                    ),
                )
                inputs = inputs.to(device, non_blocking=True)
                targets = targets.to(device, non_blocking=True)
                self.optimizer.zero_grad(set_to_none=True)
                n = targets.shape[0]
                passes = self.passes_per_step
                for p in range(passes):
                    self.pass_index = p
                    x = inputs
                    for hook in self.hooks:
                        replaced = hook.before_forward(self, x, targets, p)
                        if replaced is not None:
                            x = replaced
                    # DDP all-reduces gradients once per step, after the last pass.
                    last_pass = p == passes - 1
                    sync = (
                        net.no_sync()
                        if ctx.distributed and not last_pass
                        else contextlib.nullcontext()
                    )
                    with sync:
                        outputs = net(x)
                        loss = self.loss_fn(outputs, targets)
                        total = loss
                        for hook in self.hooks:
                            extra = hook.extra_loss(self, x, targets, outputs)
                            if extra is None:
                                continue
                            named = (
                                extra if isinstance(extra, dict) else {type(hook).__name__: extra}
                            )
                            for name, value in named.items():
                                total = total + value
                                extra_sums[name] = (
                                    extra_sums.get(name, 0) + value.detach().double() * n / passes
                                )
                        total.backward()
                    # Per-step averages over the passes (one pass: the plain batch statistics).
                    sums[0] += loss.detach().double() * n / passes
                    if outputs.ndim == 2 and targets.ndim == 1:
                        sums[1] += (outputs.detach().argmax(dim=1) == targets).sum() / passes
                for hook in self.hooks:
                    hook.after_backward(self)
                if cfg.grad_clip_norm:
                    nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip_norm)
                self.optimizer.step()
                for hook in self.hooks:
                    hook.after_step(self)
                self.step += 1
                sums[2] += n
                bar.update(1)
                if bar.n % 50 == 0 and not bar.disable:
                    bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.3g}")
            bar.close()
            all_reduce_sum(sums, ctx)
            count = max(sums[2].item(), 1.0)
            record: dict[str, float] = {
                "epoch": float(epoch + 1),
                "lr": lr,
                "train_loss": sums[0].item() / count,
                "train_error": 100.0 - 100.0 * sums[1].item() / count,
            }
            for name, value in extra_sums.items():
                record[f"train_{name}"] = (
                    float(all_reduce_sum(torch.as_tensor(value, device=device), ctx)) / count
                )
            last = epoch + 1 == cfg.epochs
            if eval_loader is not None and (
                last or (cfg.eval_every and (epoch + 1) % cfg.eval_every == 0)
            ):
                for key, value in self.evaluator(self.model, eval_loader, device, ctx).items():
                    record[f"eval_{key}"] = value
            record["epoch_seconds"] = time.perf_counter() - t0
            self.epoch = epoch + 1
            for hook in self.hooks:
                hook.on_epoch_end(self, record)
            history.append(record)
            self._save(history)
            barrier(ctx)
            if ctx.is_main:
                shown = "  ".join(
                    f"{k}={v:.4g}" for k, v in record.items() if k not in ("epoch", "epoch_seconds")
                )
                self.log(
                    f"epoch {epoch + 1}/{cfg.epochs}  {shown}  ({record['epoch_seconds']:.1f}s)"
                )
        seconds = time.perf_counter() - start
        return TrainResult(
            model=self.model,
            history=history,
            resumed_from_epoch=resumed_from,
            seconds=seconds,
            final=history[-1] if history else {},
        )
