"""VGG-style networks (Simonyan & Zisserman, ICLR 2015) at laptop scale.

``vgg_small`` keeps what makes AlexNet and VGG-16 the interesting cases of Deep Compression,
most parameters in the fully connected head and 3x3 convolutions in front, at a size that trains
on 32x32 colour digits in minutes on two CPU cores: it is the default profile's stand-in for the
paper's AlexNet and VGG-16 rows. Layers are named like VGG's (``features.N``, ``classifier.N``).
"""

from __future__ import annotations

from torch import Tensor, nn

from common.models import MODELS


class VGG(nn.Module):
    """``cfg`` lists conv widths, with ``"M"`` for a 2x2 max-pool; then a 3-layer classifier."""

    def __init__(
        self,
        cfg: list[int | str],
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        input_size: int = 32,
        hidden: int = 256,
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c, side = in_channels, input_size
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                side //= 2
            else:
                layers.append(nn.Conv2d(c, int(v), 3, padding=1, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(int(v)))
                layers.append(nn.ReLU(inplace=True))
                c = int(v)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(c * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (B, C, side, side)
        return self.classifier(x.flatten(1))  # (B, classes)


@MODELS.register("vgg_small")
def vgg_small(
    num_classes: int = 10,
    in_channels: int = 3,
    input_size: int = 32,
    width: int = 16,
    hidden: int = 256,
) -> VGG:
    """Six 3x3 conv layers (``width``, 2x``width``, 4x``width`` channels, two each) and a 3-layer head."""
    w = width
    return VGG(
        [w, w, "M", 2 * w, 2 * w, "M", 4 * w, 4 * w, "M"],
        num_classes=num_classes,
        in_channels=in_channels,
        input_size=input_size,
        hidden=hidden,
    )


vgg_small.input_shape = (3, 32, 32)
