"""A StyleGAN2-style generator whose every convolution can run on its first ``k`` channels, as
Anycost GAN needs, and whose intermediate ToRGB outputs are the low resolutions.

The layout follows StyleGAN2 (Karras et al., CVPR 2020) as the reference implementation builds it
on ``rosinality/stylegan2-pytorch``: a mapping network (pixel norm, ``n_mlp`` equalised linear
layers with a 0.01 learning-rate multiplier), a learnt 4x4 constant, modulated and demodulated
3x3 convolutions (the upsampling one a stride-2 transposed convolution followed by a [1, 3, 3, 1]
blur), per-pixel noise with a learnt strength, a bias and a scaled leaky ReLU after each, and a
modulated 1x1 ToRGB (no demodulation) at every resolution whose outputs add up through
upsampling skips. Weights are equalised (scaled at run time by ``1 / sqrt(fan_in)``).

Anycost's additions live here too: ``config`` (one width per convolution,
:mod:`papers.anycost_gan.channels`) runs a sub-generator on the first channels of every layer,
``target_res`` stops at a lower resolution (its ToRGB output is the image), ``return_rgbs``
returns every resolution's image, and :func:`sort_channels` reorders every layer's channels by
importance (the full generator's function is unchanged) so that the first channels are the ones
worth keeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from papers.anycost_gan import channels as ch

SQRT2 = math.sqrt(2.0)


def _blur_kernel() -> Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = k[:, None] * k[None, :]
    return k / k.sum()


def blur(x: Tensor, pad: tuple[int, int], gain: float = 1.0) -> Tensor:
    """The [1, 3, 3, 1] low-pass filter per channel, padded ``(before, after)`` on both axes (a
    grouped convolution: on a CPU its backward pass is ~20x faster than folding the channels into
    the batch)."""
    c = x.shape[1]
    k = (_blur_kernel() * gain).to(x)[None, None].expand(c, 1, 4, 4)
    return F.conv2d(F.pad(x, (pad[0], pad[1], pad[0], pad[1])), k, groups=c)


def upsample(x: Tensor) -> Tensor:
    """2x upsampling with the blur kernel (zero insertion, then the filter x 4): the ToRGB skips."""
    c = x.shape[1]
    k = (_blur_kernel() * 4).to(x)[None, None].expand(c, 1, 4, 4)
    return F.conv_transpose2d(x, k, stride=2, padding=1, groups=c)


def leaky(x: Tensor, bias: Tensor | None = None) -> Tensor:
    """StyleGAN2's fused bias + leaky ReLU (slope 0.2), scaled by sqrt(2)."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.dim() - 2)))
    return F.leaky_relu(x, 0.2) * SQRT2


class EqualLinear(nn.Module):
    def __init__(
        self, n_in: int, n_out: int, *, bias_init: float = 0.0, lr_mul: float = 1.0,
        activation: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((n_out,), float(bias_init)))
        self.scale, self.lr_mul, self.activation = lr_mul / math.sqrt(n_in), lr_mul, activation

    def forward(self, x: Tensor) -> Tensor:
        if self.activation:
            return leaky(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class ModulatedConv2d(nn.Module):
    """``forward(x, style, out_channels=None)``: the convolution with its input channels scaled
    by the style (``modulation(style)``), its output channels demodulated (unit expected norm),
    on ``x``'s channels and the first ``out_channels`` filters. ``fused=True`` folds the style
    into per-sample weights (a grouped convolution, StyleGAN2's default on GPUs); ``False`` scales
    the activations instead (the same function; one batched convolution, much faster on a CPU).
    ``fused=None`` takes the module's ``fused`` attribute (default ``False``)."""

    fused = False

    def __init__(
        self, n_in: int, n_out: int, kernel: int, style_dim: int, *, demodulate: bool = True,
        upsample: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, n_out, n_in, kernel, kernel))
        self.modulation = EqualLinear(style_dim, n_in, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(n_in * kernel * kernel)
        self.kernel, self.demodulate, self.upsample = kernel, demodulate, upsample
        self.n_in, self.n_out = n_in, n_out

    def forward(
        self,
        x: Tensor,
        style: Tensor,
        out_channels: int | None = None,
        *,
        fused: bool | None = None,
    ) -> Tensor:
        fused = self.fused if fused is None else fused
        b, c_in, h, w = x.shape
        c_out = out_channels or self.n_out
        s = self.modulation(style)[:, :c_in]  # (B, in)
        base = self.scale * self.weight[:, :c_out, :c_in]  # (1, out, in, k, k)
        demod = None
        if self.demodulate:  # sum over in, k of (w s)^2 = s^2 @ sum over k of w^2: (B, out)
            demod = torch.rsqrt(s.pow(2) @ base[0].pow(2).sum((2, 3)).t() + 1e-8)
        if not fused:  # the reference: scale the activations, convolve, demodulate the outputs
            y = self._conv(x * s[:, :, None, None], base[0], groups=1)
            return y if demod is None else y * demod[:, :, None, None]
        weight = base * s[:, None, :, None, None]
        if demod is not None:
            weight = weight * demod[:, :, None, None, None]
        weight = weight.reshape(b * c_out, c_in, self.kernel, self.kernel)
        y = self._conv(x.reshape(1, b * c_in, h, w), weight, groups=b)
        return y.reshape(b, c_out, y.shape[-2], y.shape[-1])

    def _conv(self, x: Tensor, weight: Tensor, groups: int) -> Tensor:
        if not self.upsample:
            return F.conv2d(x, weight, padding=self.kernel // 2, groups=groups)
        out, c_in = weight.shape[0] // groups, weight.shape[1]
        w = weight.view(groups, out, c_in, self.kernel, self.kernel).transpose(1, 2)
        w = w.reshape(groups * c_in, out, self.kernel, self.kernel)
        y = F.conv_transpose2d(x, w, stride=2, groups=groups)  # (2H + 1)^2
        return blur(y, (1, 1), gain=4.0)


class StyledConv(nn.Module):
    def __init__(self, n_in: int, n_out: int, style_dim: int, *, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(n_in, n_out, 3, style_dim, upsample=upsample)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(
        self, x: Tensor, style: Tensor, noise: Tensor, out_channels: int | None = None
    ) -> Tensor:
        y = self.conv(x, style, out_channels)
        y = y + self.noise_strength * noise
        return leaky(y, self.bias[: y.shape[1]])


class ToRGB(nn.Module):
    def __init__(self, n_in: int, style_dim: int, *, upsample: bool = True) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(n_in, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.upsample = upsample

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(x, style) + self.bias
        return out if skip is None else out + upsample(skip)


@dataclass(frozen=True)
class GeneratorConfig:
    """The generator's shape: output ``size``, style width, mapping depth and the channel table
    (``min(cap, int(base[res] * multiplier))``; ``base`` None = StyleGAN2 config-F's)."""

    size: int = 32
    style_dim: int = 512
    n_mlp: int = 8
    multiplier: float = 2.0
    cap: int = 512
    base: dict[int, int] | None = None
    lr_mlp: float = 0.01

    def widths(self, ratio: float = 1.0) -> list[int]:
        return ch.uniform(
            self.size, ratio, multiplier=self.multiplier, cap=self.cap, base=self.base
        )


class Generator(nn.Module):
    """``forward(z, ...) -> image (B, 3, R, R)`` (and with ``return_rgbs`` the list of every
    resolution's image up to ``R``). See the module doc for ``config`` and ``target_res``."""

    def __init__(self, cfg: GeneratorConfig | dict | None = None, **kw) -> None:
        super().__init__()
        cfg = cfg if isinstance(cfg, GeneratorConfig) else GeneratorConfig(**(cfg or {}), **kw)
        self.cfg = cfg
        res = ch.resolutions(cfg.size)
        full = ch.full_channels(cfg.size, multiplier=cfg.multiplier, cap=cfg.cap, base=cfg.base)
        layers = [EqualLinear(cfg.style_dim, cfg.style_dim, lr_mul=cfg.lr_mlp, activation=True)
                  for _ in range(cfg.n_mlp)]  # fmt: skip
        self.style = nn.Sequential(*layers)
        self.input = nn.Parameter(torch.randn(1, full[4], 4, 4))
        self.conv1 = StyledConv(full[4], full[4], cfg.style_dim)
        self.to_rgb1 = ToRGB(full[4], cfg.style_dim, upsample=False)
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        prev = full[4]
        for r in res[1:]:
            self.convs.append(StyledConv(prev, full[r], cfg.style_dim, upsample=True))
            self.convs.append(StyledConv(full[r], full[r], cfg.style_dim))
            self.to_rgbs.append(ToRGB(full[r], cfg.style_dim))
            prev = full[r]
        self.n_latent = 2 * len(res)
        self.resolutions = res

    def full_config(self) -> list[int]:
        return self.cfg.widths(1.0)

    def mapping(self, z: Tensor) -> Tensor:
        z = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)  # pixel norm
        return self.style(z)

    def make_noise(self, batch: int, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> list[Tensor]:  # fmt: skip
        """One noise map per convolution (``generator`` seeds it: the same noise for a teacher
        and a student)."""
        return [torch.randn(batch, 1, r, r, generator=generator, device=device)
                for r in ch.layer_resolutions(self.cfg.size)]  # fmt: skip

    def mean_latent(self, n: int = 4096, seed: int = 0) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.cfg.style_dim, generator=g).to(self.input)
        return self.mapping(z).mean(0, keepdim=True)

    def forward(
        self,
        z: Tensor | list[Tensor],
        *,
        config: list[int] | None = None,
        target_res: int | None = None,
        return_rgbs: bool = False,
        noise: list[Tensor] | None = None,
        input_is_w: bool = False,
        truncation: float = 1.0,
        truncation_latent: Tensor | None = None,
        inject_index: int | None = None,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        if input_is_w and isinstance(z, Tensor) and z.dim() == 3:  # W+: one style per layer
            return self._synthesis(z, config, target_res, return_rgbs, noise)
        zs = z if isinstance(z, (list, tuple)) else [z]
        ws = list(zs) if input_is_w else [self.mapping(x) for x in zs]
        if truncation < 1.0:
            if truncation_latent is None:
                raise ValueError("truncation needs truncation_latent (see mean_latent)")
            ws = [truncation_latent + truncation * (w - truncation_latent) for w in ws]
        n = self.n_latent
        if len(ws) == 1:
            latent = ws[0][:, None].expand(-1, n, -1)
        else:  # style mixing: the first styles up to inject_index, the second after
            cut = inject_index if inject_index is not None else n // 2
            latent = torch.cat(
                [ws[0][:, None].expand(-1, cut, -1), ws[1][:, None].expand(-1, n - cut, -1)], 1
            )
        return self._synthesis(latent, config, target_res, return_rgbs, noise)

    def _synthesis(
        self, latent: Tensor, config: list[int] | None, target_res: int | None,
        return_rgbs: bool, noise: list[Tensor] | None,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:  # fmt: skip
        if latent.shape[1] != self.n_latent:
            raise ValueError(f"W+ latents need {self.n_latent} styles, got {latent.shape[1]}")
        b = latent.shape[0]
        widths = config or self.full_config()
        if len(widths) != ch.n_convs(self.cfg.size):
            raise ValueError(f"config has {len(widths)} widths; the generator has "
                             f"{ch.n_convs(self.cfg.size)} convolutions")  # fmt: skip
        noise = noise if noise is not None else self.make_noise(b, device=latent.device)
        target = target_res or self.cfg.size
        if target not in self.resolutions:
            raise ValueError(f"target_res must be one of {self.resolutions}, got {target}")
        x = self.input[:, : widths[0]].expand(b, -1, -1, -1)
        x = self.conv1(x, latent[:, 0], noise[0], widths[0])
        skip = self.to_rgb1(x, latent[:, 1])
        rgbs = [skip]
        for i, r in enumerate(self.resolutions[1:]):
            if r > target:
                break
            c1, c2, to_rgb = self.convs[2 * i], self.convs[2 * i + 1], self.to_rgbs[i]
            x = c1(x, latent[:, 2 * i + 1], noise[2 * i + 1], widths[2 * i + 1])
            x = c2(x, latent[:, 2 * i + 2], noise[2 * i + 2], widths[2 * i + 2])
            skip = to_rgb(x, latent[:, 2 * i + 3], skip)
            rgbs.append(skip)
        return (skip, rgbs) if return_rgbs else skip


@torch.no_grad()
def sort_channels(g: Generator) -> None:
    """Reorder every layer's channels by importance, largest first, without changing what the
    full generator computes: a convolution's output channel matters by the summed magnitude of
    its filter; the constant input's channels by the magnitude of the first convolution's weights
    that read them. Each permutation moves the producer's filters and bias and the consumers'
    input columns and modulation rows."""
    convs = [g.conv1, *g.convs]
    # the constant input feeds conv1: sort it by the weights that read each channel
    order = g.conv1.conv.weight.abs().sum((0, 1, 3, 4)).argsort(descending=True)
    g.input.copy_(g.input[:, order])
    _permute_inputs(g.conv1.conv, order)
    for i, layer in enumerate(convs):
        w = layer.conv.weight  # (1, out, in, k, k)
        order = w.abs().sum((0, 2, 3, 4)).argsort(descending=True)
        w.copy_(w[:, order])
        layer.bias.copy_(layer.bias[order])
        consumers = []
        if i + 1 < len(convs):
            consumers.append(convs[i + 1].conv)
        if i == 0:
            consumers.append(g.to_rgb1.conv)
        elif i % 2 == 0:  # the second convolution of a resolution feeds its ToRGB
            consumers.append(g.to_rgbs[i // 2 - 1].conv)
        for c in consumers:
            _permute_inputs(c, order)


def _permute_inputs(conv: ModulatedConv2d, order: Tensor) -> None:
    conv.weight.copy_(conv.weight[:, :, order])
    conv.modulation.weight.copy_(conv.modulation.weight[order])
    conv.modulation.bias.copy_(conv.modulation.bias[order])


# ---------------------------------------------------------------------- discriminator
class EqualConv2d(nn.Module):
    def __init__(
        self, n_in: int, n_out: int, kernel: int, *, stride: int = 1, padding: int = 0,
        bias: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        self.scale = 1.0 / math.sqrt(n_in * kernel * kernel)
        self.stride, self.padding = stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, self.stride, self.padding)


class ConvLayer(nn.Module):
    """An equalised convolution, with StyleGAN2's blur before a stride-2 one, then (optionally)
    the fused bias + leaky ReLU."""

    def __init__(
        self, n_in: int, n_out: int, kernel: int, *, downsample: bool = False,
        activate: bool = True, bias: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        self.downsample, self.activate = downsample, activate
        self.pad = ((4 - 2) + (kernel - 1)) // 2 if downsample else 0
        self.conv = EqualConv2d(n_in, n_out, kernel, stride=2 if downsample else 1,
                                padding=0 if downsample else kernel // 2,
                                bias=bias and not activate)  # fmt: skip
        self.act_bias = nn.Parameter(torch.zeros(n_out)) if activate and bias else None

    def forward(self, x: Tensor) -> Tensor:
        if self.downsample:
            x = blur(x, (self.pad, self.pad))
        x = self.conv(x)
        return leaky(x, self.act_bias) if self.activate else x


class ResBlock(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(n_in, n_in, 3)
        self.conv2 = ConvLayer(n_in, n_out, 3, downsample=True)
        self.skip = ConvLayer(n_in, n_out, 1, downsample=True, activate=False, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


class Discriminator(nn.Module):
    """StyleGAN2's residual discriminator, ``forward(image, arch=None) -> logits (B,)``.

    * Multi-resolution (``n_res > 1``): an image of any of the ``n_res`` highest resolutions enters
      through that resolution's own fromRGB layer and the shared residual trunk from there on, as
      the reference's ``DiscriminatorMultiRes``.
    * Generator-conditioned (``arch_dim > 0``): ``arch`` (the sampled sub-generator's one-hot
      ratios, :func:`papers.anycost_gan.channels.arch_one_hot`) modulates the last features,
      ``h * (1 + W_w arch) + W_b arch`` (zero-initialised: the unconditioned network at first).
    """

    def __init__(
        self, size: int = 32, *, multiplier: float = 2.0, cap: int = 512,
        base: dict[int, int] | None = None, n_res: int = 1, arch_dim: int = 0,
        stddev_group: int = 4,
    ) -> None:  # fmt: skip
        super().__init__()
        width = ch.full_channels(size, multiplier=multiplier, cap=cap, base=base)
        res = ch.resolutions(size)
        if not 1 <= n_res <= len(res) - 1:
            raise ValueError(f"n_res must be in 1..{len(res) - 1}, got {n_res}")
        self.size, self.n_res, self.stddev_group = size, n_res, stddev_group
        self.inputs = [size // 2**i for i in range(n_res)]
        self.from_rgb = nn.ModuleDict({str(r): ConvLayer(3, width[r], 1) for r in self.inputs})
        self.blocks = nn.ModuleDict(
            {str(r): ResBlock(width[r], width[r // 2]) for r in reversed(res[1:])}
        )
        c4 = width[4]
        self.final_conv = ConvLayer(c4 + 1, c4, 3)
        self.final_linear = EqualLinear(c4 * 16, c4, activation=True)
        self.out = EqualLinear(c4, 1)
        self.arch_dim = arch_dim
        if arch_dim:
            self.cond = nn.ModuleList(nn.Linear(arch_dim, 2 * c4) for _ in range(2))
            for lin in self.cond:
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)

    def _condition(self, h: Tensor, arch: Tensor | None, i: int) -> Tensor:
        if not self.arch_dim:
            return h
        if arch is None:
            raise ValueError("this discriminator is generator-conditioned: give arch")
        scale, shift = self.cond[i](arch.to(h)).chunk(2, dim=1)
        view = (-1, h.shape[1]) + (1,) * (h.dim() - 2)
        return h * (1 + scale.view(view)) + shift.view(view)

    def forward(self, image: Tensor, arch: Tensor | None = None) -> Tensor:
        r = image.shape[-1]
        if str(r) not in self.from_rgb:
            raise ValueError(f"the discriminator reads {self.inputs} px images, got {r} px")
        x = self.from_rgb[str(r)](image)
        while r > 4:
            x = self.blocks[str(r)](x)
            r //= 2
        b, c, h, w = x.shape
        g = min(b, self.stddev_group)
        if b % g:
            g = 1
        y = x.view(g, -1, 1, c, h, w)
        y = torch.sqrt(y.var(0, unbiased=False) + 1e-8).mean((2, 3, 4), keepdim=True).squeeze(2)
        x = torch.cat([x, y.repeat(g, 1, h, w)], 1)
        x = self._condition(self.final_conv(x), arch, 0)
        x = self._condition(self.final_linear(x.flatten(1)), arch, 1)
        return self.out(x).squeeze(1)
