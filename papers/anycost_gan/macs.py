"""Multiply-accumulates of a (sub-)generator, in two conventions, by formula.

* ``paper``: the modulated 3x3 convolutions and the 1x1 ToRGB layers only, the stride-2
  transposed convolution counted on its ``(2H + 1)^2`` output as if every output position took a
  full 3x3 window (what common profilers report for a transposed convolution). With it the full
  1024 px config-F generator comes to 143.0G, the paper's "144G", and the reference repository's
  own ``macs`` of its searched sub-generators (``assets/evolve_configs``) within 0.2-1.5%.
* ``performed``: every multiply the code performs, as the shared counter
  (:func:`common.measure.count_macs`) sees it: the transposed convolution's ``H^2`` input pixels
  times its 3x3 window, plus the blur filters, the ToRGB skips' upsampling, the style modulations,
  the demodulations (squared styles times summed squared weights) and the mapping network. The tests hold this formula equal to the shared counter, so the paper
  convention differs from a measured count only in the documented transposed-convolution term.
"""

from __future__ import annotations

from papers.anycost_gan import channels as ch


def generator_macs(
    size: int,
    widths: list[int],
    *,
    target_res: int | None = None,
    convention: str = "paper",
    style_dim: int = 512,
    n_mlp: int = 8,
    full: list[int] | None = None,
) -> int:
    """MACs of one image (batch 1) from the widths of every convolution (``full``: the full
    generator's, which size the style modulations; default ``widths``)."""
    if convention not in ("paper", "performed"):
        raise ValueError(f"convention must be 'paper' or 'performed', got {convention!r}")
    if len(widths) != ch.n_convs(size):
        raise ValueError(f"{len(widths)} widths for {ch.n_convs(size)} convolutions")
    full = full or widths
    target = target_res or size
    performed = convention == "performed"
    res = [r for r in ch.resolutions(size) if r <= target]
    # 4 px: the constant (widths[0] channels) through conv1, then its ToRGB
    total = widths[0] * widths[0] * 9 * 16 + widths[0] * 3 * 16
    if performed:
        total += n_mlp * style_dim * style_dim  # the mapping network
        total += style_dim * full[0] * 2  # conv1's and to_rgb1's modulations (input width)
        total += widths[0] * widths[0]  # conv1's demodulation: squared styles x squared weights
    prev = widths[0]
    for i, r in enumerate(res[1:]):
        c1, c2 = widths[2 * i + 1], widths[2 * i + 2]
        h = r // 2
        if performed:
            total += prev * c1 * 9 * h * h  # the transposed convolution, per input pixel
            total += c1 * 16 * r * r  # its blur
            total += 3 * 16 * h * h  # the ToRGB skip's upsampling
            # modulations: the upsampling conv reads the previous width, the second conv and
            # the ToRGB the first's and the second's full widths
            total += style_dim * (full[2 * i] + full[2 * i + 1] + full[2 * i + 2])
            total += prev * c1 + c1 * c2  # the two demodulations
        else:
            total += prev * c1 * 9 * (r + 1) * (r + 1)
        total += c1 * c2 * 9 * r * r + c2 * 3 * r * r
        prev = c2
    return total


def uniform_table(
    size: int, ratios: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25), **kw
) -> dict[float, dict[int, int]]:
    """The paper-convention MACs of config-F's uniform sub-generators: ratio -> output
    resolution -> MACs (the grid of the notes)."""
    out: dict[float, dict[int, int]] = {}
    for ratio in ratios:
        widths = ch.uniform(size, ratio, **kw)
        out[ratio] = {
            r: generator_macs(size, widths, target_res=r)
            for r in ch.resolutions(size)
            if r >= 128 or size < 128
        }
    return out
