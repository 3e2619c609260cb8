"""MobileNetV3-Large's block pattern inside the Once-for-All space: the hand-designed baseline
of the paper's comparisons (Table 1: MobileNetV3-Large 75.2% at 219M MACs vs OFA 76.0%), scaled
like the supernet by width multipliers."""

from __future__ import annotations

from common.ofa import OFAMobileNetV3Config
from common.ofa.training import Arch

# MobileNetV3-Large (Howard et al., 2019) in the OFA space: per stage (kernel, expand) of its
# blocks; expand ratios 72/24, 120/40, 200/80, 184/80 (2.5-3.0) become 3, 240/40 and the 672-960
# blocks' 6 stay 6, 64/16 = 4 stays 4.
MBV3_LARGE: list[list[tuple[int, int]]] = [
    [(3, 4), (3, 3)],
    [(5, 3), (5, 3), (5, 3)],
    [(3, 6), (3, 3), (3, 3), (3, 3)],
    [(3, 6), (3, 6)],
    [(5, 6), (5, 6), (5, 6)],
]


def mbv3_arch(space: OFAMobileNetV3Config) -> Arch:
    """MobileNetV3-Large's pattern as an arch of ``space`` (at its largest resolution)."""
    per_stage = max(space.depths)
    if space.num_stages != len(MBV3_LARGE) or per_stage < 4:
        raise ValueError("the MobileNetV3 pattern needs 5 stages of up to 4 blocks")
    ks, es, ds = [], [], []
    for blocks in MBV3_LARGE:
        ds.append(len(blocks))
        padded = blocks + [blocks[-1]] * (per_stage - len(blocks))  # unused slots
        ks += [k for k, _ in padded]
        es += [e for _, e in padded]
    return {"ks": ks, "e": es, "d": ds, "r": max(space.resolution_choices())}


def family_space(space: OFAMobileNetV3Config, width: float) -> OFAMobileNetV3Config:
    """The space at ``width`` times its width multiplier (other choices unchanged)."""
    return OFAMobileNetV3Config.from_dict(
        {**space.to_dict(), "width_mult": space.width_mult * width}
    )
