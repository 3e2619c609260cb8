"""The two LeNets of Deep Compression's Table 1, as defined in Caffe's MNIST examples.

* **LeNet-300-100** (LeCun et al. 1998): fully connected 784-300-100-10 with ReLU;
  266,200 weights + 410 biases = 266,610 parameters (1,066 KB in float32; the paper: 1070 KB).
* **LeNet-5** in Caffe's variant (``examples/mnist/lenet_train_test.prototxt``): conv 5x5x20,
  max-pool 2, conv 5x5x50, max-pool 2, fc 800->500, ReLU, fc 500->10. Note Caffe puts *no* ReLU
  after the convolutions; we keep that so the layer list matches the paper's Table 3 exactly
  (conv1 0.5K, conv2 25K, ip1 400K, ip2 5K weights; 431,080 parameters, 1,724 KB; the paper:
  1720 KB).

Layer names follow the paper's tables (``ip1``...), so per-layer reports line up with them.
"""

from __future__ import annotations

from torch import Tensor, nn

from common.models import MODELS


class LeNet300100(nn.Module):
    def __init__(self, num_classes: int = 10, in_features: int = 784) -> None:
        super().__init__()
        self.ip1 = nn.Linear(in_features, 300)
        self.ip2 = nn.Linear(300, 100)
        self.ip3 = nn.Linear(100, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)  # (B, 784)
        x = self.relu(self.ip1(x))  # (B, 300)
        x = self.relu(self.ip2(x))  # (B, 100)
        return self.ip3(x)  # (B, classes)


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 20, 5)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.pool2 = nn.MaxPool2d(2)
        side = ((input_size - 4) // 2 - 4) // 2  # 28 -> 24 -> 12 -> 8 -> 4
        self.ip1 = nn.Linear(50 * side * side, 500)
        self.relu = nn.ReLU()
        self.ip2 = nn.Linear(500, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(self.conv1(x))  # (B, 20, 12, 12)
        x = self.pool2(self.conv2(x))  # (B, 50, 4, 4)
        x = self.relu(self.ip1(x.flatten(1)))  # (B, 500)
        return self.ip2(x)  # (B, classes)


@MODELS.register("lenet300")
def lenet300(num_classes: int = 10, in_features: int = 784) -> LeNet300100:
    """LeNet-300-100."""
    return LeNet300100(num_classes, in_features)


lenet300.input_shape = (1, 28, 28)


@MODELS.register("lenet5")
def lenet5(num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> LeNet5:
    """LeNet-5 (Caffe variant)."""
    return LeNet5(num_classes, in_channels, input_size)


lenet5.input_shape = (1, 28, 28)
