"""torchvision's ImageNet classifiers used by the papers' ``paper`` profiles, through the registry.

Pretrained weights are downloaded by torchvision only when a config asks for them
(``weights: IMAGENET1K_V1``); the builders here create the architecture, so a compressed file can
be decoded into it without any download.
"""

from __future__ import annotations

from torch import nn

from common.models import MODELS


@MODELS.register("alexnet")
def alexnet(num_classes: int = 1000, weights: str | None = None) -> nn.Module:
    """AlexNet as in torchvision (the one-GPU variant of Krizhevsky et al., 61M parameters)."""
    import torchvision  # imported here: it takes seconds, and most stages never build these

    return torchvision.models.alexnet(weights=weights, num_classes=num_classes)


@MODELS.register("vgg16")
def vgg16(num_classes: int = 1000, weights: str | None = None) -> nn.Module:
    """VGG-16 without batch norm (138M parameters), as in torchvision."""
    import torchvision

    return torchvision.models.vgg16(weights=weights, num_classes=num_classes)


alexnet.input_shape = (3, 224, 224)
vgg16.input_shape = (3, 224, 224)
