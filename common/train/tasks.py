"""What a kind of training does, for the one loop in :mod:`common.train.trainer`.

The loop owns what every training shares: epochs or steps, the learning-rate schedule, seeding,
checkpoints (every epoch and every N steps) and resuming, DDP, hooks, progress and history. A
:class:`Task` owns what differs between kinds of training (as detectron2's ``run_step``): the
batch format, the optimizers, one optimisation step and the evaluation.

* :class:`ClassificationTask`: ``(inputs, targets)`` batches, cross-entropy (plus the hooks'
  extra losses, e.g. distillation), several forward passes per step for weight-sharing supernets;
  top-1 error. The behaviour every stage of the first three papers trains with.
* :class:`TokenTask`: :class:`~common.data.tokens.TokenBatch` batches of at most ``max_tokens``
  padded tokens, teacher-forced cross-entropy with label smoothing over the non-padding tokens;
  evaluation by perplexity and token accuracy plus a callback (BLEU, ...).
* :class:`AdversarialTask`: a generator (the trainer's model) and a discriminator with named
  optimizers (``g``, ``d``), alternating D and G steps with the non-saturating loss, lazy R1
  regularisation of D every ``r1_every`` steps, and an exponential moving average of the
  generator; D, the EMA copy and both optimizers are in the checkpoint.

A task's step returns sums for the epoch record (float64 tensors); :meth:`Task.epoch_record`
turns the epoch's sums into the record's ``train_*`` metrics.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.train.config import AdversarialConfig
from common.train.distributed import all_reduce_sum
from common.train.optim import build_optimizer

if TYPE_CHECKING:
    from common.train.trainer import Trainer

Sums = dict[str, Tensor]


def add_(sums: Sums, key: str, value: Tensor | float) -> None:
    """``sums[key] += value`` in float64 (created on first use)."""
    if key in sums:
        sums[key] += value
    else:
        sums[key] = torch.zeros((), dtype=torch.float64, device=_device_of(value)) + value


def _device_of(value: Tensor | float) -> torch.device | str:
    return value.device if isinstance(value, Tensor) else "cpu"


class Task:
    """Base class: override what differs (see the module docstring)."""

    kind = "task"

    def fingerprint(self) -> Any:
        """What defines this task for the resume fingerprint (its settings, not its state)."""
        return {"kind": self.kind}

    def setup(self, trainer: Trainer) -> None:
        """The model is on the device; move the task's own modules there."""

    def build_optimizers(self, trainer: Trainer) -> dict[str, torch.optim.Optimizer]:
        """Named optimizers (the first one is ``trainer.optimizer``)."""
        params = (
            trainer.param_groups
            if trainer.param_groups is not None
            else [p for p in trainer.model.parameters() if p.requires_grad]
        )
        return {"main": build_optimizer(params, trainer.config.optimizer)}

    def wrap(self, trainer: Trainer) -> None:
        """Wrap the model(s) for DDP; sets ``trainer.ddp_model``."""
        trainer.ddp_model = _ddp(trainer, trainer.model, find_unused=False)

    def train_loader(self, trainer: Trainer, data: Any) -> Any:
        from common.data.loader import build_loader

        ctx, cfg = trainer.ctx, trainer.config
        return build_loader(
            data,
            batch_size=cfg.batch_size // ctx.world_size,
            shuffle=True,
            seed=cfg.seed,
            rank=ctx.rank,
            world_size=ctx.world_size,
            num_workers=cfg.num_workers,
            pin_memory=ctx.device.type == "cuda",
        )

    def eval_loader(self, trainer: Trainer, data: Any) -> Any:
        from common.data.loader import build_loader

        ctx, cfg = trainer.ctx, trainer.config
        return build_loader(
            data,
            batch_size=cfg.eval_batch_size,
            shuffle=False,
            rank=ctx.rank,
            world_size=ctx.world_size,
            num_workers=cfg.num_workers,
        )

    def train_step(self, trainer: Trainer, batch: Any, sums: Sums) -> float:
        """One optimisation step on ``batch``; adds to ``sums``; returns the loss to display."""
        raise NotImplementedError

    def epoch_record(self, sums: dict[str, float]) -> dict[str, float]:
        """The epoch's ``train_*`` metrics from its (all-reduced) sums."""
        raise NotImplementedError

    def evaluate(self, trainer: Trainer, loader: Any) -> dict[str, float]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """State saved in the checkpoint (tensors, numbers, strings, lists, dicts only)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


def _split_rows(batch: Any, parts: int) -> list[Any]:
    """A token batch as up to ``parts`` batches of consecutive rows (similar lengths: the rows of
    a length-bucketed batch), each trimmed of all-padding columns."""
    if parts == 1 or len(batch) == 1:
        return [batch]
    from common.data.tokens import TokenBatch

    out = []
    for rows in torch.arange(len(batch)).tensor_split(min(parts, len(batch))):
        t_len = int(batch.targets[rows].ne(batch.pad_id).sum(1).max())
        source = None
        if batch.source is not None:
            s_len = int(batch.source[rows].ne(batch.pad_id).sum(1).max())
            source = batch.source[rows, :s_len]
        out.append(
            TokenBatch(
                batch.inputs[rows, :t_len], batch.targets[rows, :t_len], batch.pad_id, source
            )
        )
    return out


def _ddp(trainer: Trainer, module: nn.Module, *, find_unused: bool) -> nn.Module:
    ctx = trainer.ctx
    if not ctx.distributed:
        return module
    device = ctx.device
    return nn.parallel.DistributedDataParallel(
        module,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=find_unused,
    )


def _clip(trainer: Trainer, module: nn.Module) -> None:
    if trainer.config.grad_clip_norm:
        nn.utils.clip_grad_norm_(module.parameters(), trainer.config.grad_clip_norm)


# ---------------------------------------------------------------------- classification
Evaluator = Callable[[nn.Module, Any, torch.device, Any], dict[str, float]]


class ClassificationTask(Task):
    """Image (or any tensor) classification: the loop the first three papers train with.

    Args:
        loss_fn: ``loss_fn(outputs, targets) -> Tensor``; default cross-entropy with the config's
            label smoothing.
        evaluator: ``evaluator(model, loader, device, ctx) -> metrics``; default top-1 error.
        passes_per_step: forward/backward passes over each batch before the optimizer steps;
            their gradients add up (each pass is preceded by the hooks' ``before_forward``, so
            the passes can run different sub-networks, as Once-for-All's training does).
        find_unused_parameters: under DDP, allow parameters that a pass does not use (weight
            sharing supernets whose sub-networks skip layers).
    """

    kind = "classification"

    def __init__(
        self,
        *,
        loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        evaluator: Evaluator | None = None,
        passes_per_step: int = 1,
        find_unused_parameters: bool = False,
    ) -> None:
        if passes_per_step < 1:
            raise ValueError(f"passes_per_step must be >= 1, got {passes_per_step}")
        self.loss_fn = loss_fn
        self.evaluator = evaluator
        self.passes_per_step = passes_per_step
        self.find_unused_parameters = find_unused_parameters

    def setup(self, trainer: Trainer) -> None:
        if self.loss_fn is None:
            self.loss_fn = nn.CrossEntropyLoss(label_smoothing=trainer.config.label_smoothing)

    def wrap(self, trainer: Trainer) -> None:
        trainer.ddp_model = _ddp(trainer, trainer.model, find_unused=self.find_unused_parameters)

    def train_step(self, trainer: Trainer, batch: Any, sums: Sums) -> float:
        inputs, targets = batch
        device, ctx, net = trainer.ctx.device, trainer.ctx, trainer.ddp_model
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        trainer.optimizer.zero_grad(set_to_none=True)
        n = targets.shape[0]
        passes = self.passes_per_step
        for p in range(passes):
            trainer.pass_index = p
            x = inputs
            for _, before_forward in trainer.hooks_with("before_forward"):
                replaced = before_forward(trainer, x, targets, p)
                if replaced is not None:
                    x = replaced
            # DDP all-reduces gradients once per step, after the last pass.
            last_pass = p == passes - 1
            sync = net.no_sync() if ctx.distributed and not last_pass else contextlib.nullcontext()
            with sync:
                outputs = net(x)
                loss = self.loss_fn(outputs, targets)
                total = loss
                for hook, extra_loss in trainer.hooks_with("extra_loss"):
                    extra = extra_loss(trainer, x, targets, outputs)
                    if extra is None:
                        continue
                    named = extra if isinstance(extra, dict) else {type(hook).__name__: extra}
                    for name, value in named.items():
                        total = total + value
                        key = f"extra/{name}"
                        sums[key] = sums.get(key, 0) + value.detach().double() * n / passes
                total.backward()
            # Per-step averages over the passes (one pass: the plain batch statistics).
            add_(sums, "loss", loss.detach().double() * n / passes)
            if outputs.ndim == 2 and targets.ndim == 1:
                add_(sums, "correct", (outputs.detach().argmax(dim=1) == targets).sum() / passes)
        trainer.call_hooks("after_backward")
        _clip(trainer, trainer.model)
        trainer.optimizer.step()
        trainer.call_hooks("after_step")
        add_(sums, "count", n)
        return loss.item()

    def epoch_record(self, sums: dict[str, float]) -> dict[str, float]:
        count = max(sums.get("count", 0.0), 1.0)
        record = {
            "train_loss": sums.get("loss", 0.0) / count,
            "train_error": 100.0 - 100.0 * sums.get("correct", 0.0) / count,
        }
        for key, value in sums.items():
            if key.startswith("extra/"):
                record[f"train_{key[len('extra/') :]}"] = value / count
        return record

    def evaluate(self, trainer: Trainer, loader: Any) -> dict[str, float]:
        if self.evaluator is not None:
            return self.evaluator(trainer.model, loader, trainer.ctx.device, trainer.ctx)
        from common.train.evaluate import evaluate_classifier

        return evaluate_classifier(
            trainer.model, loader, device=trainer.ctx.device, ctx=trainer.ctx
        )

    def fingerprint(self) -> Any:
        return {"kind": self.kind, "passes_per_step": self.passes_per_step}


# ---------------------------------------------------------------------- token sequences
def default_forward(model: nn.Module, batch: Any) -> Tensor:
    """``model(batch) -> logits [B, T, vocab]``: the model reads what it needs from the batch."""
    return model(batch)


class TokenTask(Task):
    """Teacher-forced sequence training on :class:`~common.data.tokens.TokenBatch` batches.

    The loss of a batch is the label-smoothed cross-entropy summed over its non-padding target
    tokens, divided by their number (fairseq's per-token normalisation). The epoch record gives
    ``train_loss`` (smoothed, per token), ``train_nll`` (unsmoothed), ``train_ppl`` and
    ``train_token_accuracy``; evaluation the same on the evaluation set (``nll``, ``ppl``,
    ``token_accuracy``) plus whatever ``metrics(model, data, device)`` returns (e.g. BLEU from
    decoded translations).

    Args:
        max_tokens: padded tokens per training batch (per process under DDP).
        eval_max_tokens: per evaluation batch (default ``max_tokens``).
        forward: ``forward(model, batch) -> logits`` (default ``model(batch)``).
        metrics: ``metrics(model, eval_data, device) -> dict`` called after the token metrics.
        update_freq: batches of ``max_tokens`` whose gradients add up before the optimizer
            steps (fairseq's ``--update-freq``): a step sees ``update_freq * max_tokens`` padded
            tokens per process, the loss normalised by all its target tokens, with the memory
            of one ``max_tokens`` batch (the step's length-bucketed batch is split by rows).
    """

    kind = "tokens"

    def __init__(
        self,
        *,
        max_tokens: int,
        eval_max_tokens: int | None = None,
        forward: Callable[[nn.Module, Any], Tensor] = default_forward,
        metrics: Callable[[nn.Module, Any, torch.device], dict[str, float]] | None = None,
        update_freq: int = 1,
    ) -> None:
        if update_freq < 1:
            raise ValueError(f"update_freq must be >= 1, got {update_freq}")
        self.update_freq = update_freq
        self.max_tokens = max_tokens
        self.eval_max_tokens = eval_max_tokens or max_tokens
        self.forward = forward
        self.metrics = metrics
        self._eval_data: Any = None

    def fingerprint(self) -> Any:
        out = {"kind": self.kind, "max_tokens": self.max_tokens}
        if self.update_freq > 1:
            out["update_freq"] = self.update_freq
        return out

    def train_loader(self, trainer: Trainer, data: Any) -> Any:
        from common.data.tokens import build_token_loader

        ctx = trainer.ctx
        return build_token_loader(
            data,
            max_tokens=self.max_tokens * self.update_freq,
            shuffle=True,
            seed=trainer.config.seed,
            rank=ctx.rank,
            world_size=ctx.world_size,
            num_workers=trainer.config.num_workers,
        )

    def eval_loader(self, trainer: Trainer, data: Any) -> Any:
        from common.data.tokens import build_token_loader

        self._eval_data = data
        ctx = trainer.ctx
        return build_token_loader(
            data,
            max_tokens=self.eval_max_tokens,
            shuffle=False,
            rank=ctx.rank,
            world_size=ctx.world_size,
            num_workers=trainer.config.num_workers,
        )

    @staticmethod
    def token_sums(logits: Tensor, targets: Tensor, pad: int) -> tuple[Tensor, Tensor, int]:
        """Summed NLL, correct next-token predictions and counted tokens (for evaluation)."""
        flat, tgt = logits.detach().flatten(0, 1), targets.flatten()
        nll = F.cross_entropy(flat.float(), tgt, ignore_index=pad, reduction="sum")
        keep = tgt.ne(pad)
        correct = (flat.argmax(dim=-1).eq(tgt) & keep).sum()
        return nll, correct, int(keep.sum())

    def train_step(self, trainer: Trainer, batch: Any, sums: Sums) -> float:
        batch = batch.to(trainer.ctx.device, non_blocking=True)
        trainer.optimizer.zero_grad(set_to_none=True)
        ntokens = max(batch.ntokens, 1)
        parts = _split_rows(batch, self.update_freq)
        ctx, net = trainer.ctx, trainer.ddp_model
        loss_total = 0.0
        for p, part in enumerate(parts):
            # DDP all-reduces gradients once per step, after the last part.
            last = p == len(parts) - 1
            sync = net.no_sync() if ctx.distributed and not last else contextlib.nullcontext()
            with sync:
                logits = self.forward(net, part)
                # One log-softmax serves the loss, the NLL and the accuracy of the epoch
                # record. With smoothing eps the loss is (1 - eps) * NLL + eps * mean over the
                # vocabulary of -log p, as F.cross_entropy(label_smoothing=eps) defines it.
                lp = F.log_softmax(logits.float(), dim=-1).flatten(0, 1)
                tgt = part.targets.flatten()
                keep = tgt.ne(part.pad_id)
                nll_tok = -lp.gather(1, tgt.unsqueeze(1)).squeeze(1)
                eps = trainer.config.label_smoothing
                loss_tok = nll_tok if eps == 0 else (1 - eps) * nll_tok - eps * lp.mean(dim=-1)
                loss_sum = loss_tok.masked_fill(~keep, 0.0).sum()
                (loss_sum / ntokens).backward()
            with torch.no_grad():
                add_(sums, "loss", loss_sum.detach().double())
                add_(sums, "nll", nll_tok.masked_fill(~keep, 0.0).sum().double())
                add_(sums, "correct", (lp.argmax(dim=-1).eq(tgt) & keep).sum())
            loss_total += loss_sum.item()
        trainer.call_hooks("after_backward")
        _clip(trainer, trainer.model)
        trainer.optimizer.step()
        trainer.call_hooks("after_step")
        add_(sums, "tokens", ntokens)
        add_(sums, "sentences", len(batch))
        return loss_total / ntokens

    @staticmethod
    def _record(prefix: str, sums: dict[str, float]) -> dict[str, float]:
        tokens = max(sums.get("tokens", 0.0), 1.0)
        nll = sums.get("nll", 0.0) / tokens
        return {
            f"{prefix}nll": nll,
            f"{prefix}ppl": math.exp(min(nll, 50.0)),
            f"{prefix}token_accuracy": 100.0 * sums.get("correct", 0.0) / tokens,
        }

    def epoch_record(self, sums: dict[str, float]) -> dict[str, float]:
        tokens = max(sums.get("tokens", 0.0), 1.0)
        return {"train_loss": sums.get("loss", 0.0) / tokens, **self._record("train_", sums)}

    @torch.inference_mode()
    def evaluate(self, trainer: Trainer, loader: Any) -> dict[str, float]:
        model, device = trainer.model, trainer.ctx.device
        was_training = model.training
        model.eval()
        totals = torch.zeros(3, dtype=torch.float64, device=device)  # nll, correct, tokens
        for batch in loader:
            batch = batch.to(device)
            nll, correct, n = self.token_sums(
                self.forward(model, batch), batch.targets, batch.pad_id
            )
            totals += torch.stack([nll.double(), correct.double(), torch.tensor(float(n))])
        all_reduce_sum(totals, trainer.ctx)
        out = self._record(
            "", dict(zip(("nll", "correct", "tokens"), totals.tolist(), strict=True))
        )
        if self.metrics is not None:
            out.update(self.metrics(model, self._eval_data, device))
        model.train(was_training)
        return out


# ---------------------------------------------------------------------- adversarial
def _requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class AdversarialTask(Task):
    """GAN training: the trainer's model is the generator ``G(z)``; ``discriminator(x)`` returns
    one logit per image. Each step: one D step on real and generated images (non-saturating
    logistic loss), every ``r1_every`` steps a lazy R1 penalty on D (``r1_gamma / 2 * |grad|^2``,
    scaled by ``r1_every`` as in StyleGAN2), one G step, then the EMA generator moves toward G
    (``ema_beta``). ``trainer.config.optimizer`` is G's optimizer, ``config.d_optimizer`` D's.

    Batches are real images (a dataset of images, or of ``(image, label)`` pairs: the label is
    ignored). The epoch record has ``train_d_loss``, ``train_g_loss``, ``train_r1``,
    ``train_real_score`` and ``train_fake_score`` (mean D logits). Evaluation calls
    ``metrics(ema_generator, eval_data, device)`` when given (e.g. FID with a feature network),
    else reports the mean D logits on real evaluation images and on the EMA generator's samples.

    Subclass it to change the losses or the generator's call (``generate``), as a paper's
    variant (e.g. sampled sub-generators) needs.
    """

    kind = "adversarial"

    def __init__(
        self,
        discriminator: nn.Module,
        config: AdversarialConfig,
        *,
        metrics: Callable[[nn.Module, Any, torch.device], dict[str, float]] | None = None,
    ) -> None:
        self.discriminator = discriminator
        self.config = config
        self.metrics = metrics
        self.ema: nn.Module | None = None
        self.ddp_d: nn.Module | None = None
        self._eval_data: Any = None

    def fingerprint(self) -> Any:
        from common.config import to_dict

        h = {k: list(v.shape) for k, v in self.discriminator.state_dict().items()}
        return {"kind": self.kind, "config": to_dict(self.config), "discriminator": h}

    def setup(self, trainer: Trainer) -> None:
        self.discriminator.to(trainer.ctx.device)
        self.ema = copy.deepcopy(trainer.model).eval()
        _requires_grad(self.ema, False)

    def build_optimizers(self, trainer: Trainer) -> dict[str, torch.optim.Optimizer]:
        g = [p for p in trainer.model.parameters() if p.requires_grad]
        d = [p for p in self.discriminator.parameters() if p.requires_grad]
        return {
            "g": build_optimizer(g, trainer.config.optimizer),
            "d": build_optimizer(d, self.config.d_optimizer),
        }

    def wrap(self, trainer: Trainer) -> None:
        trainer.ddp_model = _ddp(trainer, trainer.model, find_unused=False)
        self.ddp_d = _ddp(trainer, self.discriminator, find_unused=False)

    def latent(
        self, n: int, device: torch.device, generator: torch.Generator | None = None
    ) -> Tensor:
        return torch.randn(n, self.config.latent_dim, device=device, generator=generator)

    def generate(self, generator: nn.Module, z: Tensor) -> Tensor:
        return generator(z)

    @staticmethod
    def _real(batch: Any) -> Tensor:
        return batch[0] if isinstance(batch, (tuple, list)) else batch

    def train_step(self, trainer: Trainer, batch: Any, sums: Sums) -> float:
        cfg, device = self.config, trainer.ctx.device
        g_net, d_net = trainer.ddp_model, self.ddp_d
        g_opt, d_opt = trainer.optimizers["g"], trainer.optimizers["d"]
        real = self._real(batch).to(device, non_blocking=True)
        n = real.shape[0]
        # Discriminator
        _requires_grad(trainer.model, False)
        _requires_grad(self.discriminator, True)
        for _ in range(cfg.d_steps):
            with torch.no_grad():
                fake = self.generate(g_net, self.latent(n, device))
            real_logits, fake_logits = d_net(real), d_net(fake)
            d_loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            _clip(trainer, self.discriminator)
            d_opt.step()
        if cfg.r1_every and trainer.step % cfg.r1_every == 0 and cfg.r1_gamma > 0:
            x = real.detach().requires_grad_(True)
            out = d_net(x)
            (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            d_opt.zero_grad(set_to_none=True)
            (cfg.r1_gamma / 2 * r1 * cfg.r1_every + 0 * out.mean()).backward()
            d_opt.step()
            add_(sums, "r1", r1.detach().double())
            add_(sums, "r1_steps", 1)
        # Generator
        _requires_grad(trainer.model, True)
        _requires_grad(self.discriminator, False)
        fake = self.generate(g_net, self.latent(n, device))
        g_loss = F.softplus(-d_net(fake)).mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        _clip(trainer, trainer.model)
        g_opt.step()
        _requires_grad(self.discriminator, True)
        trainer.call_hooks("after_step")
        self.update_ema(trainer.model)
        add_(sums, "d_loss", d_loss.detach().double() * n)
        add_(sums, "g_loss", g_loss.detach().double() * n)
        add_(sums, "real_score", real_logits.detach().double().sum())
        add_(sums, "fake_score", fake_logits.detach().double().sum())
        add_(sums, "count", n)
        return g_loss.item()

    @torch.no_grad()
    def update_ema(self, model: nn.Module) -> None:
        beta = self.config.ema_beta
        for pe, p in zip(self.ema.parameters(), model.parameters(), strict=True):
            pe.lerp_(p.detach(), 1.0 - beta)
        for be, b in zip(self.ema.buffers(), model.buffers(), strict=True):
            be.copy_(b)

    def epoch_record(self, sums: dict[str, float]) -> dict[str, float]:
        count = max(sums.get("count", 0.0), 1.0)
        record = {
            "train_d_loss": sums.get("d_loss", 0.0) / count,
            "train_g_loss": sums.get("g_loss", 0.0) / count,
            "train_real_score": sums.get("real_score", 0.0) / count,
            "train_fake_score": sums.get("fake_score", 0.0) / count,
        }
        if sums.get("r1_steps"):
            record["train_r1"] = sums["r1"] / sums["r1_steps"]
        return record

    def eval_loader(self, trainer: Trainer, data: Any) -> Any:
        self._eval_data = data
        return super().eval_loader(trainer, data)

    @torch.no_grad()
    def evaluate(self, trainer: Trainer, loader: Any) -> dict[str, float]:
        device = trainer.ctx.device
        if self.metrics is not None:
            return self.metrics(self.ema, self._eval_data, device)
        g = torch.Generator(device=device).manual_seed(trainer.config.seed)
        totals = torch.zeros(3, dtype=torch.float64, device=device)  # real, fake, count
        self.discriminator.eval()
        for batch in loader:
            real = self._real(batch).to(device)
            fake = self.generate(self.ema, self.latent(real.shape[0], device, g))
            totals += torch.stack(
                [
                    self.discriminator(real).double().sum(),
                    self.discriminator(fake).double().sum(),
                    torch.tensor(float(real.shape[0]), dtype=torch.float64, device=device),
                ]
            )
        self.discriminator.train()
        all_reduce_sum(totals, trainer.ctx)
        count = max(totals[2].item(), 1.0)
        return {"real_score": totals[0].item() / count, "fake_score": totals[1].item() / count}

    def state_dict(self) -> dict[str, Any]:
        return {"discriminator": self.discriminator.state_dict(), "ema": self.ema.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.ema.load_state_dict(state["ema"])
