"""Training and evaluating a Once-for-All supernet (Cai et al., ICLR 2020, Section 3.3).

* :class:`SubnetSampler` is the :class:`~common.train.TrainHook` of progressive shrinking: before
  every forward pass it activates a random sub-network drawn from the choices the current phase
  has made elastic (e.g. kernel {7, 5, 3} with depth and width still at their maximum), and once
  per step it draws the input resolution (elastic resolution, a random size per batch as in the
  reference implementation). With ``Trainer(passes_per_step=n)`` each step accumulates the
  gradients of ``n`` sub-networks (the reference's ``dynamic_batch_size``). Draws are seeded by
  ``(seed, epoch, step, pass)``, so a resumed run samples exactly what an uninterrupted one does.
* :func:`recalibrate_bn_` re-estimates batch-norm statistics for one sub-network (the shared
  running statistics mix every sub-network trained, so each is recalibrated before evaluation).
* :func:`evaluate_arch` extracts a sub-network, recalibrates it, and measures it.
* :class:`SubnetEvaluator` plugs per-epoch evaluation of named sub-networks (e.g. the smallest
  and the largest) into the shared loop.

An *arch* is a JSON-serializable dict ``{"ks": [...], "e": [...], "d": [...], "r": resolution}``
(:meth:`OFAMobileNetV3.active_config` plus the input resolution).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.ofa.elastic import centre_crop
from common.ofa.supernet import OFAMobileNetV3, OFAMobileNetV3Config
from common.seed import derive_seed
from common.train.evaluate import evaluate_classifier
from common.train.trainer import TrainHook

if TYPE_CHECKING:
    from common.train.distributed import DistContext
    from common.train.trainer import Trainer

Arch = dict[str, Any]


@dataclass(frozen=True)
class ElasticChoices:
    """The choices a training phase samples from (a subset of the supernet's space)."""

    kernel_sizes: tuple[int, ...]
    expand_ratios: tuple[int, ...]
    depths: tuple[int, ...]
    resolutions: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("kernel_sizes", "expand_ratios", "depths", "resolutions"):
            values = tuple(int(v) for v in getattr(self, name))
            if not values:
                raise ValueError(f"{name}: at least one choice is needed")
            object.__setattr__(self, name, values)

    def check_within(self, config: OFAMobileNetV3Config) -> None:
        """Raise ``ValueError`` if a choice is outside the supernet's space."""
        for name, space in (
            ("kernel_sizes", config.kernel_sizes),
            ("expand_ratios", config.expand_ratios),
            ("depths", config.depths),
        ):
            extra = sorted(set(getattr(self, name)) - set(space))
            if extra:
                raise ValueError(f"{name} {extra} are not in the supernet's space {space}")

    def sample(self, config: OFAMobileNetV3Config, rng: random.Random) -> Arch:
        """A uniformly random arch within these choices."""
        n_blocks = config.num_stages * max(config.depths)
        return {
            "ks": [rng.choice(self.kernel_sizes) for _ in range(n_blocks)],
            "e": [rng.choice(self.expand_ratios) for _ in range(n_blocks)],
            "d": [rng.choice(self.depths) for _ in range(config.num_stages)],
            "r": rng.choice(self.resolutions),
        }


def full_space(config: OFAMobileNetV3Config) -> ElasticChoices:
    """Every choice of the supernet's space."""
    return ElasticChoices(
        config.kernel_sizes, config.expand_ratios, config.depths, tuple(config.resolution_choices())
    )


def set_arch(net: OFAMobileNetV3, arch: Arch) -> None:
    """Activate ``arch`` (its resolution is applied to the input by the caller)."""
    net.set_active_subnet(ks=arch["ks"], e=arch["e"], d=arch["d"])


def resize_batch(x: Tensor, resolution: int) -> Tensor:
    """Bilinear resize of a ``(B, C, H, W)`` batch (unchanged when already that size)."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    y = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return y.contiguous(memory_format=torch.channels_last) if _is_channels_last(x) else y


def _is_channels_last(x: Tensor) -> bool:
    return x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1


class SubnetSampler(TrainHook):
    """Activates a random sub-network before every forward pass (see the module docstring).

    Args:
        supernet: the network being trained (the unwrapped module).
        choices: what this phase samples from.
        seed: base of the per-pass seeds.
    """

    def __init__(self, supernet: OFAMobileNetV3, choices: ElasticChoices, *, seed: int) -> None:
        choices.check_within(supernet.config)
        self.supernet = supernet
        self.choices = choices
        self.seed = seed
        self._resized: tuple[int, Tensor] | None = None  # (step, resized inputs)

    def before_forward(
        self, trainer: Trainer, inputs: Tensor, targets: Tensor, pass_index: int
    ) -> Tensor:
        rng = random.Random(derive_seed(self.seed, trainer.epoch, trainer.step, pass_index))
        arch = self.choices.sample(self.supernet.config, rng)
        set_arch(self.supernet, arch)
        if pass_index == 0 or self._resized is None or self._resized[0] != trainer.step:
            # One resolution per step, shared by its passes (and by the teacher of distillation).
            r = arch["r"]
            self._resized = (trainer.step, resize_batch(inputs, r))
        return self._resized[1]

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        self.supernet.set_max_net()


# ---------------------------------------------------------------------- BN recalibration
_BN = nn.modules.batchnorm._BatchNorm


@torch.no_grad()
def recalibrate_bn_(model: nn.Module, batches: Iterable[Tensor]) -> nn.Module:
    """Replace every batch norm's running statistics by their average over ``batches``.

    Each BN's statistics are reset and re-accumulated with a cumulative moving average
    (``momentum=None``) in training mode; the weights are not touched. Returns ``model`` in eval
    mode.
    """
    bns = [m for m in model.modules() if isinstance(m, _BN)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    seen = False
    for x in batches:
        model(x)
        seen = True
    if not seen:
        raise ValueError("BN recalibration needs at least one batch")
    for bn, m in zip(bns, momenta, strict=True):
        bn.momentum = m
    return model.eval()


def calibration_batches(
    data: Any, *, images: int, batch_size: int, seed: int, resolution: int | None = None
) -> list[Tensor]:
    """A fixed random subset of ``data`` (a batch-indexable dataset) cut into batches.

    The same seed gives the same images, so every sub-network is recalibrated on the same data.
    """
    n = min(images, len(data))
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data), generator=g)[:n]
    out = []
    for start in range(0, n, batch_size):
        chunk = idx[start : start + batch_size]
        if getattr(data, "supports_batch_indexing", False):
            x, _ = data[chunk]
        else:  # e.g. an ImageFolder: one sample at a time
            x = torch.stack([data[int(i)][0] for i in chunk])
        out.append(resize_batch(x, resolution) if resolution else x)
    return out


@torch.no_grad()
def crop_kernels_for_resolution(net: nn.Module, resolution: int) -> nn.Module:
    """A copy of an :class:`~common.models.mbconv.MBConvNet` for inputs of ``resolution`` px
    whose depthwise kernels larger than their feature map are cropped to the taps that can
    reach it (as :class:`~common.ofa.elastic.ElasticDepthwiseConv2d` does in training).

    The same function up to float summation order, and several times faster on the small
    late-stage maps (oneDNN's 7x7 depthwise on a 2x2 map is slow): evaluation uses it; the saved
    and deployed networks keep their full kernels.
    """
    from common.models.mbconv import MBConv

    out = copy.deepcopy(net)
    h = (resolution - 1) // 2 + 1  # after the stride-2 stem
    for block in out.blocks:
        if not isinstance(block, MBConv):
            raise TypeError(f"expected MBConv blocks, got {type(block).__name__}")
        for layer in block.body:
            conv = layer[0]
            if conv.groups == conv.in_channels and conv.kernel_size[0] > 1:  # the depthwise conv
                k, s = conv.kernel_size[0], conv.stride[0]
                r = min(k // 2, h - 1)
                if r < k // 2:
                    new = nn.Conv2d(
                        conv.in_channels,
                        conv.out_channels,
                        2 * r + 1,
                        s,
                        r,
                        groups=conv.groups,
                        bias=False,
                    ).to(conv.weight.device)
                    new.weight.copy_(centre_crop(conv.weight, 2 * r + 1))
                    layer[0] = new
                h = (h - 1) // s + 1
    return out


def evaluate_arch(
    supernet: OFAMobileNetV3,
    arch: Arch,
    *,
    calibration: Sequence[Tensor],
    eval_loader: Any,
    device: torch.device | str = "cpu",
    ctx: DistContext | None = None,
) -> dict[str, float]:
    """Accuracy of sub-network ``arch`` at its resolution, after BN recalibration.

    ``calibration`` batches are resized to ``arch["r"]``; ``eval_loader`` yields batches at the
    data's native size and is resized the same way. The supernet is left unchanged (the
    sub-network is extracted and recalibrated on its own copy of the weights).
    """
    was = supernet.active_config()
    set_arch(supernet, arch)
    sub = supernet.get_active_subnet()
    supernet.set_active_subnet(ks=was["ks"], e=was["e"], d=was["d"])
    sub.to(device)
    if _is_channels_last(calibration[0]):
        sub = sub.to(memory_format=torch.channels_last)
    r = int(arch["r"])
    sub = crop_kernels_for_resolution(sub, r)
    recalibrate_bn_(sub, (resize_batch(x.to(device), r) for x in calibration))
    return evaluate_classifier(ResizeInput(sub, r), eval_loader, device=device, ctx=ctx)


class ResizeInput(nn.Module):
    """Runs ``net`` on inputs resized to ``resolution``."""

    def __init__(self, net: nn.Module, resolution: int) -> None:
        super().__init__()
        self.net = net
        self.resolution = resolution

    def forward(self, x: Tensor) -> Tensor:
        return self.net(resize_batch(x, self.resolution))


class SubnetEvaluator:
    """A :class:`~common.train.Trainer` evaluator that reports several named sub-networks.

    Args:
        supernet: the network being trained.
        archs: name -> arch, e.g. ``{"max": ..., "min": ...}``.
        calibration: BN recalibration batches (native resolution).

    Returns metrics ``<name>_accuracy``, ``<name>_error`` and ``<name>_loss`` plus ``accuracy`` /
    ``error`` / ``loss`` averaged over the sub-networks (what the loop's summary shows).
    """

    def __init__(
        self, supernet: OFAMobileNetV3, archs: dict[str, Arch], calibration: Sequence[Tensor]
    ) -> None:
        self.supernet = supernet
        self.archs = {k: copy.deepcopy(v) for k, v in archs.items()}
        self.calibration = calibration

    def __call__(
        self, model: nn.Module, loader: Any, device: torch.device, ctx: DistContext
    ) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, arch in self.archs.items():
            m = evaluate_arch(
                self.supernet,
                arch,
                calibration=self.calibration,
                eval_loader=loader,
                device=device,
                ctx=ctx,
            )
            for key in ("accuracy", "error", "loss"):
                out[f"{name}_{key}"] = m[key]
        for key in ("accuracy", "error", "loss"):
            out[key] = sum(out[f"{n}_{key}"] for n in self.archs) / len(self.archs)
        return out


def extreme_archs(config: OFAMobileNetV3Config, choices: ElasticChoices) -> dict[str, Arch]:
    """The largest and smallest sub-networks of ``choices`` at its largest/smallest resolution."""
    n_blocks = config.num_stages * max(config.depths)

    def arch(pick: Any) -> Arch:
        return {
            "ks": [pick(choices.kernel_sizes)] * n_blocks,
            "e": [pick(choices.expand_ratios)] * n_blocks,
            "d": [pick(choices.depths)] * config.num_stages,
            "r": pick(choices.resolutions),
        }

    return {"max": arch(max), "min": arch(min)}
