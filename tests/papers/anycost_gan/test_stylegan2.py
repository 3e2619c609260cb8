"""Anycost GAN's networks and cost model: the paper's config-F generator's MACs (counted, not
trained), the uniform-ratio rule with its cap, channel sorting and sub-generators, the modulated
convolution against its unfused form, the multi-resolution and generator-conditioned
discriminator; and FID/KID's formulas."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from common.fid import fid, kid
from common.measure import count_macs
from papers.anycost_gan import channels as ch
from papers.anycost_gan.macs import generator_macs, uniform_table
from papers.anycost_gan.stylegan2 import Discriminator, Generator, ModulatedConv2d, sort_channels

SMALL = {"size": 32, "style_dim": 32, "n_mlp": 2, "multiplier": 0.125, "cap": 64}


def test_config_f_macs_are_the_papers_and_the_notes_grid() -> None:
    full = ch.uniform(1024, 1.0)
    assert ch.full_channels(1024) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256,
                                      256: 128, 512: 64, 1024: 32}  # fmt: skip
    assert round(generator_macs(1024, full) / 1e9, 1) == 143.0  # the paper: 144G
    grid = {
        k: {r: round(v / 1e9, 1) for r, v in row.items()} for k, row in uniform_table(1024).items()
    }
    assert grid[1.0] == {128: 55.6, 256: 84.8, 512: 113.9, 1024: 143.0}
    assert grid[0.5] == {128: 21.4, 256: 28.7, 512: 36.0, 1024: 43.3}
    assert grid[0.25] == {128: 7.2, 256: 9.1, 512: 10.9, 1024: 12.7}


@pytest.mark.parametrize(("ratio", "target"), [(1.0, None), (0.5, 256), (0.25, 1024)])
def test_the_shared_counter_sees_what_the_formula_says(ratio: float, target: int | None) -> None:
    """Built at full size on the meta device (no memory, no arithmetic) and counted by the shared
    counter: every multiply the code performs, equal to the formula's 'performed' convention."""
    with torch.device("meta"):
        g = Generator(size=1024)
        widths = ch.uniform(1024, ratio)
        report = count_macs(g, torch.randn(1, 512), config=widths, target_res=target,
                            noise=g.make_noise(1, device="meta"))  # fmt: skip
    assert report.total == generator_macs(
        1024, widths, target_res=target, convention="performed", full=g.full_config()
    )


def test_a_uniform_ratio_does_not_narrow_the_capped_layers() -> None:
    half = ch.uniform(1024, 0.5)
    by_res = dict(zip(ch.layer_resolutions(1024), half, strict=True))
    assert [by_res[r] for r in (4, 8, 16, 32)] == [512] * 4  # capped before and after
    assert [by_res[r] for r in (64, 128, 1024)] == [256, 128, 16]  # halved
    rng = random.Random(0)
    floor = ch.uniform(1024, 0.25)
    for _ in range(20):
        cfg = ch.sample(1024, "flexible", rng)
        assert all(lo <= c <= f for c, lo, f in zip(cfg, floor, ch.uniform(1024, 1.0), strict=True))
        assert all(c % 4 == 0 for c in cfg)


def test_ratio_one_is_the_full_generator_and_sorting_changes_nothing() -> None:
    torch.manual_seed(0)
    g = Generator(**SMALL).eval()
    with torch.no_grad():  # non-zero noise strengths and biases, as after training
        for layer in [g.conv1, *g.convs]:
            layer.noise_strength.fill_(0.3)
            layer.bias.normal_()
        z = torch.randn(4, 32)
        noise = g.make_noise(4, torch.Generator().manual_seed(1))
        full = g(z, noise=noise)
        assert torch.equal(full, g(z, noise=noise, config=g.cfg.widths(1.0)))
        half = g(z, noise=noise, config=g.cfg.widths(0.5))
        importance_before = g.convs[-1].conv.weight.abs().sum((0, 2, 3, 4))
        sort_channels(g)
        assert torch.allclose(full, g(z, noise=noise), atol=1e-4)
        after = g.convs[-1].conv.weight.abs().sum((0, 2, 3, 4))
        assert torch.allclose(after, importance_before.sort(descending=True).values)
        assert not torch.allclose(half, g(z, noise=noise, config=g.cfg.widths(0.5)))


def test_low_resolutions_are_the_intermediate_outputs() -> None:
    torch.manual_seed(0)
    g = Generator(**SMALL).eval()
    z = torch.randn(2, 32)
    noise = g.make_noise(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        img, rgbs = g(z, noise=noise, return_rgbs=True)
        assert [r.shape[-1] for r in rgbs] == [4, 8, 16, 32] and torch.equal(img, rgbs[-1])
        assert torch.equal(g(z, noise=noise, target_res=16), rgbs[2])


@pytest.mark.parametrize("upsample", [False, True])
def test_modulated_convolution_equals_its_unfused_form(upsample: bool) -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(8, 6, 3, 16, upsample=upsample)
    x, s = torch.randn(3, 8, 5, 5), torch.randn(3, 16)
    for out in (None, 4):
        fused, ref = conv(x, s, out, fused=True), conv(x, s, out, fused=False)
        assert fused.shape == (3, out or 6, 10 if upsample else 5, 10 if upsample else 5)
        assert torch.allclose(fused, ref, atol=1e-5)
    # demodulation: unit-variance outputs for unit-variance inputs, whatever the style's scale
    big = ModulatedConv2d(64, 64, 3, 16)
    y = big(torch.randn(8, 64, 16, 16), 10 * torch.randn(8, 16)).detach()
    assert 0.8 < float(y[:, :, 2:-2, 2:-2].std()) < 1.2


def test_discriminator_reads_every_resolution_and_starts_unconditioned() -> None:
    torch.manual_seed(0)
    kw = {"multiplier": 0.125, "cap": 64}
    d = Discriminator(32, n_res=2, arch_dim=28, **kw)
    plain = Discriminator(32, n_res=2, **kw)
    plain.load_state_dict({k: v for k, v in d.state_dict().items() if not k.startswith("cond")})
    x = torch.randn(4, 3, 32, 32)
    arch = torch.tensor([ch.arch_one_hot(ch.uniform(32, 0.5, **kw), ch.uniform(32, 1.0, **kw))] * 4)
    assert torch.equal(d(x, arch), plain(x))
    assert d(torch.randn(4, 3, 16, 16), arch).shape == (4,)
    with pytest.raises(ValueError, match="reads"):
        d(torch.randn(4, 3, 8, 8), arch)
    with pytest.raises(ValueError, match="give arch"):
        d(x)


def test_fid_is_zero_on_itself_and_the_squared_shift_under_a_shift() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 16))
    assert abs(fid(a, a)) < 1e-6
    shift = np.full(16, 0.5)
    assert fid(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    assert fid(a, 2 * a) > fid(a, 1.1 * a) > 0
    same, _ = kid(a, a, subsets=5, subset_size=200)
    moved, _ = kid(a, a + 1.0, subsets=5, subset_size=200)
    assert abs(same) < 0.05 < moved


def test_the_feature_network_reads_any_size_and_its_distance_is_zero_on_itself() -> None:
    from papers.anycost_gan.features import DigitFeatures, perceptual

    torch.manual_seed(0)
    net = DigitFeatures(width=8).eval()
    a, b = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 3, 32, 32) * 2 - 1
    assert net(a).shape == (4, 10) and net.features(a[:, :, ::2, ::2]).shape == (4, 32)
    with torch.no_grad():
        assert torch.equal(perceptual(net, a, a), torch.zeros(4))
        assert bool((perceptual(net, a, b) > 0).all())


def test_projection_with_the_consistency_term_fits_the_sub_generator_better() -> None:
    from papers.anycost_gan.project import project

    torch.manual_seed(0)
    g = Generator(size=16, style_dim=16, n_mlp=1, multiplier=0.03, cap=16).eval()
    with torch.no_grad():
        target = g(torch.randn(2, 16), noise=g.make_noise(2, torch.Generator().manual_seed(5)))
    small = ch.uniform(16, 0.25, multiplier=0.03, cap=16)
    noise = g.make_noise(2, torch.Generator().manual_seed(0))

    def sub_error(w: torch.Tensor) -> float:
        with torch.no_grad():
            return float((g(w, input_is_w=True, config=small, noise=noise) - target).pow(2).mean())

    plain, hist = project(g, target, steps=60, lr=0.1)
    both, _ = project(g, target, subs=[small], alpha=1.0, steps=60, lr=0.1)
    assert hist[-1] < hist[0]  # the projection fits
    assert sub_error(both) < sub_error(plain)  # the consistency term is what keeps the sub close
    assert all(p.requires_grad for p in g.parameters())  # the generator is left trainable
