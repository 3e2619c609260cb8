"""The three model families, on the same inputs and with the same map branch and control head.

Every network maps one batch of LiDAR scans (a list of ``(N_i, 3)`` point clouds in the vehicle
frame) and the rasterised topometric map ``(B, 2, H, W)`` to a Normal-Inverse-Gamma distribution
over the curvature now and at ``horizon`` future control steps (:mod:`common.evidential`).

* ``sparse3d``, Fast-LiDARNet as far as it is known (abstract, Fig. 1, contribution list): the
  points are voxelised and processed by **sparse** 3D convolutions (only the occupied voxels are
  computed: :mod:`common.sparse`), collapsed to a bird's-eye view and finished by a small 2D CNN.
  The exact layers, voxel size and widths of the paper could not be read: ours are chosen by the
  hardware-aware design stage (``design.py``) by measured latency on this CPU.
* ``resnet2d``, the paper's "2D ResNet" baseline: ResNet-18's layout (a stride-2 stem and
  max-pool, four stages of two basic blocks) on the bird's-eye raster of the same voxel features
  (every pixel computed, occupied or not). Which 2D input the paper's
  ResNet took (range image or BEV) is not known; the BEV keeps the same geometry for all three.
* ``dense3d``, the paper's "3D MinkowskiNet" baseline (MinkowskiNet is a deep residual 3D network;
  it is sparse in its own library, but without kernel optimisation every site of the grid costs
  as a dense one, which is what this baseline measures): 3D residual blocks over the **dense**
  voxel grid.

Design decisions of ours (the paper's are unknown): the map branch is a three-layer strided CNN;
the fused features go through one hidden layer to the evidential head; BatchNorm everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from common.evidential import NIG, NormalInverseGamma
from common.sparse import (
    VOXEL_FEATURES,
    SparseBatchNorm,
    SparseConv3d,
    SparseReLU,
    SparseTensor,
    dense_to_bev,
    dense_voxels,
    grid_shape,
    to_bev,
    voxelize,
)
from papers.fast_lidarnet.config import ModelConfig


@dataclass(frozen=True)
class Geometry:
    """What every family needs to know about its inputs."""

    bounds: tuple[float, ...]  # xmin, xmax, ymin, ymax, zmin, zmax (metres, vehicle frame)
    horizon: int  # future control steps predicted besides the current one
    map_channels: int = 2
    map_size: int = 32

    def grid(self, voxel: float) -> tuple[int, int, int]:
        return grid_shape(voxel, self.bounds)  # type: ignore[arg-type]


class MapBranch(nn.Module):
    """The rasterised route and roads ``(B, 2, H, W)`` -> ``(B, out)``."""

    def __init__(self, channels: int, width: int, size: int, out: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = channels
        for i in range(3):  # 32 -> 16 -> 8 -> 4
            layers += [
                nn.Conv2d(c, width * 2**i, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width * 2**i),
                nn.ReLU(inplace=True),
            ]
            c = width * 2**i
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.fc = nn.Linear(c * 16, out)

    def forward(self, m: Tensor) -> Tensor:
        return torch.relu(self.fc(self.body(m)))


class ControlHead(nn.Module):
    """LiDAR features + map features -> NIG over ``horizon + 1`` curvatures."""

    def __init__(self, lidar: int, map_out: int, hidden: int, outputs: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(lidar + map_out, hidden), nn.ReLU(inplace=True))
        self.nig = NormalInverseGamma(hidden, outputs)

    def forward(self, lidar: Tensor, map_features: Tensor) -> NIG:
        return self.nig(self.fc(torch.cat([lidar, map_features], dim=1)))


# The bird's-eye features are pooled to POOL x POOL cells before the head (8 was tried: a 4x
# larger head learned slower and drove worse at the default profile's training length).
POOL = 4


def _bev_tail(channels: int, width: int) -> nn.Sequential:
    """The 2D part after the bird's-eye collapse (shared by sparse3d and dense3d): two strided
    3x3 convolutions, then a POOL x POOL grid (where the kerbs and the road are, relative to the
    car, is what steers: a global pool would lose it)."""
    return nn.Sequential(
        nn.Conv2d(channels, width, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(POOL),
        nn.Flatten(),
    )


class SparseResBlock(nn.Module):
    """Two submanifold 3x3x3 convolutions with a residual connection (same sites, same stride:
    both reuse one kernel map)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = SparseConv3d(in_channels=c, out_channels=c, kernel_size=3)
        self.bn1 = SparseBatchNorm(c)
        self.conv2 = SparseConv3d(in_channels=c, out_channels=c, kernel_size=3)
        self.bn2 = SparseBatchNorm(c)
        self.relu = SparseReLU()

    def forward(self, x: SparseTensor) -> SparseTensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y.replace(y.feats + x.feats))


class LidarNet(nn.Module):
    """Base: the map branch and the head; subclasses encode the points into ``(B, features)``."""

    family = ""

    def __init__(self, cfg: ModelConfig, geo: Geometry, features: int) -> None:
        super().__init__()
        self.cfg, self.geo = cfg, geo
        self.map_branch = MapBranch(geo.map_channels, cfg.map_width, geo.map_size, cfg.hidden)
        self.head = ControlHead(features, cfg.hidden, cfg.hidden, geo.horizon + 1)

    def encode(self, points: list[Tensor]) -> Tensor:
        raise NotImplementedError

    def forward(self, points: list[Tensor], maps: Tensor) -> NIG:
        return self.head(self.encode(points), self.map_branch(maps))


class SparseLidarNet(LidarNet):
    """Fast-LiDARNet (reconstructed): sparse 3D stages -> BEV -> 2D -> head."""

    family = "sparse3d"

    def __init__(self, cfg: ModelConfig, geo: Geometry) -> None:
        w, blocks = cfg.width, cfg.blocks
        stride = 2 ** (len(blocks) - 1)
        channels = w * stride
        z = -(-geo.grid(cfg.voxel_size)[2] // stride)
        super().__init__(cfg, geo, channels * POOL * POOL)
        layers: list[nn.Module] = [
            SparseConv3d(in_channels=VOXEL_FEATURES, out_channels=w, kernel_size=3),
            SparseBatchNorm(w),
            SparseReLU(),
        ]
        c = w
        for i, n in enumerate(blocks):
            if i > 0:  # downsample: 2x2x2 stride-2 convolution, twice the channels
                layers += [
                    SparseConv3d(in_channels=c, out_channels=2 * c, kernel_size=2, stride=2),
                    SparseBatchNorm(2 * c),
                    SparseReLU(),
                ]
                c *= 2
            layers += [SparseResBlock(c) for _ in range(n)]
        self.body = nn.Sequential(*layers)
        self.tail = _bev_tail(c * z, channels)

    def encode(self, points: list[Tensor]) -> Tensor:
        x = voxelize(points, voxel_size=self.cfg.voxel_size, bounds=self.geo.bounds)
        x = self.body(x)
        return self.tail(to_bev(x))  # (B, C*Z', X', Y') -> (B, channels * POOL^2)


class BasicBlock2d(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.short(x))


class ResNet2d(LidarNet):
    """The 2D ResNet baseline on the bird's-eye raster (every z-slice's features as channels)."""

    family = "resnet2d"

    def __init__(self, cfg: ModelConfig, geo: Geometry) -> None:
        w, blocks = cfg.width, cfg.blocks
        c_last = w * 2 ** (len(blocks) - 1)
        super().__init__(cfg, geo, c_last * 16)
        z = geo.grid(cfg.voxel_size)[2]
        # ResNet's stem: a stride-2 convolution and a stride-2 max-pool (3x3 instead of
        # ResNet's 7x7 convolution: the raster has VOXEL_FEATURES x Z channels, not 3).
        layers: list[nn.Module] = [
            nn.Conv2d(VOXEL_FEATURES * z, w, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        ]
        c = w
        for i, n in enumerate(blocks):
            cout = w * 2**i
            for j in range(max(n, 1)):
                layers.append(BasicBlock2d(c, cout, 2 if (j == 0 and i > 0) else 1))
                c = cout
        # ResNet's last stage is 1/32 of its input (4x4 cells at 0.25 m voxels): pooled to 4x4.
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())

    def encode(self, points: list[Tensor]) -> Tensor:
        x = voxelize(points, voxel_size=self.cfg.voxel_size, bounds=self.geo.bounds)
        return self.body(to_bev(x))  # (B, C*Z, X, Y): every pixel computed


class BasicBlock3d(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        k, p = (2, 0) if stride == 2 else (3, 1)
        self.conv1 = nn.Conv3d(cin, cout, k, stride=stride, padding=p, bias=False)
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = nn.Conv3d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(cout)
        self.short = (
            nn.Sequential(nn.Conv3d(cin, cout, k, stride=stride, padding=p, bias=False),
                          nn.BatchNorm3d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.short(x))


class Dense3d(LidarNet):
    """The MinkowskiNet-style baseline: 3D residual stages over the dense voxel grid."""

    family = "dense3d"

    def __init__(self, cfg: ModelConfig, geo: Geometry) -> None:
        w, blocks = cfg.width, cfg.blocks
        stride = 2 ** (len(blocks) - 1)
        channels = w * stride
        z = -(-geo.grid(cfg.voxel_size)[2] // stride)
        super().__init__(cfg, geo, channels * POOL * POOL)
        self.stride = stride
        layers: list[nn.Module] = [
            nn.Conv3d(VOXEL_FEATURES, w, 3, padding=1, bias=False),
            nn.BatchNorm3d(w),
            nn.ReLU(inplace=True),
        ]
        c = w
        for i, n in enumerate(blocks):
            cout = w * 2**i
            for j in range(max(n, 1)):
                layers.append(BasicBlock3d(c, cout, 2 if (j == 0 and i > 0) else 1))
                c = cout
        self.body = nn.Sequential(*layers)
        self.tail = _bev_tail(c * z, channels)

    def encode(self, points: list[Tensor]) -> Tensor:
        v = dense_voxels(points, voxel_size=self.cfg.voxel_size, bounds=self.geo.bounds)
        # Pad each axis to a multiple of the total stride, so that the strided convolutions
        # keep a partial last slice, as the sparse network's downsampling does.
        pad = [p for n in reversed(v.shape[2:]) for p in (0, -n % self.stride)]
        v = self.body(torch.nn.functional.pad(v, pad))  # (B, C, X', Y', Z')
        return self.tail(dense_to_bev(v))


class WithPoints(nn.Module):
    """``model`` with one batch of points bound, called with the maps alone: the single-tensor
    signature :func:`common.measure.measure_latency` times."""

    def __init__(self, model: nn.Module, points: list[Tensor]) -> None:
        super().__init__()
        self.model, self.points = model, points

    def forward(self, maps: Tensor) -> NIG:
        return self.model(self.points, maps)


FAMILY_CLASSES: dict[str, type[LidarNet]] = {
    cls.family: cls for cls in (SparseLidarNet, ResNet2d, Dense3d)
}


def build_model(cfg: ModelConfig, geo: Geometry) -> LidarNet:
    """The network of ``cfg.family`` (see the module docstring)."""
    return FAMILY_CLASSES[cfg.family](cfg, geo)
