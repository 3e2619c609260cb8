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

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DigitFeatures(nn.Module):
    """``forward(x in [-1, 1], (B, 3, H, W)) -> logits (B, 10)``; images of other sizes are
    resized to 32 px first. Four convolution blocks (32, 16, 8, 4 px) and a fully connected
    layer over the whole 4x4 map, so the features see the entire digit."""

    def __init__(self, width: int = 32, classes: int = 10) -> None:
        super().__init__()
        w = width

        def block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1, stride=stride),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            )

        self.blocks = nn.ModuleList(
            [block(3, w, 1), block(w, 2 * w, 2), block(2 * w, 4 * w, 2), block(4 * w, 4 * w, 2)]
        )
        self.fc = nn.Linear(4 * w * 16, 4 * w)
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
        return F.relu(self.fc(self.activations(x)[-1].flatten(1)))

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


class InceptionFeatures(nn.Module):
    """Inception-v3's 2048 pool features (the paper profile's FID): torchvision's architecture
    with weights read from a file, images resized to 299 px and normalised as ImageNet's. The
    standard FID network (TF's 2015 Inception graph) differs slightly from torchvision's; its
    ported weights load here as long as they are in torchvision's layout."""

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        self.net = inception_v3(weights=None, aux_logits=False, init_weights=False)
        if weights is not None:
            from common.checkpoint import CheckpointError, safe_load

            state = safe_load(weights)
            state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
            try:
                self.net.load_state_dict(state)
            except RuntimeError as exc:
                raise CheckpointError(
                    f"{weights} is not torchvision's inception_v3 state dict ({str(exc)[:200]}). "
                    "Fix: features.weights must point at inception_v3 weights in its layout"
                ) from None
        self.net.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _prep(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, size=299, mode="bilinear", align_corners=False)
        return ((x + 1) / 2 - self.mean) / self.std

    def features(self, x: Tensor) -> Tensor:
        n = self.net
        x = self._prep(x)
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1",
                     "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c",
                     "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                     "Mixed_7a", "Mixed_7b", "Mixed_7c"):  # fmt: skip
            x = getattr(n, name)(x)
        return torch.flatten(n.avgpool(x), 1)

    def activations(self, x: Tensor) -> list[Tensor]:
        n = self.net
        x = self._prep(x)
        out = []
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1",
                     "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2", "Mixed_5b"):  # fmt: skip
            x = getattr(n, name)(x)
            if name in ("Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5b"):
                out.append(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.net.fc(self.features(x))


def feature_network(cfg, folder=None) -> nn.Module:
    """The profile's feature network (``cfg``: its ``features`` section): the colour-digit
    classifier the features stage trained into ``folder`` (``runs/anycost_gan/features``), or
    Inception-v3 from ``cfg.weights`` (relative to the data root unless absolute)."""
    if cfg.kind == "inception":
        from papers.anycost_gan.data import user_path

        return load_features("inception", user_path(cfg.weights or ""))
    if folder is None:
        from common.errors import InputError

        raise InputError(
            "the colour-digit feature network is needed here: pass --features "
            "runs/anycost_gan/features (the anycost_gan_features stage's output)"
        )
    return load_features("digits", Path(folder) / "model.safetensors")


def load_features(kind: str, path) -> nn.Module:
    """The feature network of the evaluation: the trained colour-digit network (``path``: its
    ``model.safetensors``) or Inception-v3 (``path``: its weights file)."""
    if kind == "inception":
        return InceptionFeatures(str(path)).eval()
    from common.checkpoint import load_model

    model, _ = load_model(path, build=lambda arch: DigitFeatures(**arch["kwargs"]))
    return model.eval()
