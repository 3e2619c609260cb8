"""The feature network of the default profile's metrics: a small classifier of the colour digits.

Inception-v3's weights (what FID is defined on) cannot be downloaded on the machines this
replication runs on, so FID and KID are computed with the standard formulas
(:mod:`common.fid`) on the 128 features before this network's classifier, trained here on the
same colour digits the GAN learns. Its values are not comparable with published FIDs (the report
says so); they rank generators of one run. The same network gives:

* the **class consistency** of a sub-generator with the full one (the digit it reads agrees), the
  analogue of the paper's attribute consistency (40 CelebA attributes, argmax agreement);
* the **perceptual distance** of the consistency loss and of the search, in place of LPIPS-VGG:
  the squared distance of channel-normalised activations, averaged over its layers (LPIPS's form
  without its learnt per-channel weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DigitFeatures(nn.Module):
    """``forward(x in [-1, 1], (B, 3, H, W)) -> logits (B, 10)``; images of other sizes are
    resized to 32 px first."""

    def __init__(self, width: int = 32, classes: int = 10) -> None:
        super().__init__()
        w = width
        self.blocks = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()),
                nn.Sequential(nn.Conv2d(w, 2 * w, 3, padding=1, stride=2), nn.BatchNorm2d(2 * w), nn.ReLU()),
                nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, padding=1, stride=2), nn.BatchNorm2d(4 * w), nn.ReLU()),
            ]
        )  # fmt: skip
        self.fc = nn.Linear(4 * w, 4 * w)
        self.classifier = nn.Linear(4 * w, classes)
        self.width = width

    def activations(self, x: Tensor) -> list[Tensor]:
        if x.shape[-1] != 32:
            x = F.interpolate(x, size=32, mode="bilinear", align_corners=False, antialias=True)
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def features(self, x: Tensor) -> Tensor:
        """The 128 (``4 x width``) features FID and KID are computed on."""
        return F.relu(self.fc(self.activations(x)[-1].mean((2, 3))))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))

    def arch(self) -> dict:
        return {"name": "anycost_digit_features", "kwargs": {"width": self.width}}


def perceptual(net: DigitFeatures, a: Tensor, b: Tensor) -> Tensor:
    """Per image, the mean over ``net``'s layers of the squared distance between channel-
    normalised activations (``(B,)``; 0 for identical images)."""
    total = torch.zeros(a.shape[0], device=a.device)
    acts_a, acts_b = net.activations(a), net.activations(b)
    for fa, fb in zip(acts_a, acts_b, strict=True):
        na = fa / (fa.norm(dim=1, keepdim=True) + 1e-10)
        nb = fb / (fb.norm(dim=1, keepdim=True) + 1e-10)
        total = total + (na - nb).pow(2).sum(1).mean((1, 2))
    return total / len(acts_a)
