"""Sparse 3-D convolution in pure PyTorch, trainable on CPU (the kernels of Fast-LiDARNet /
TorchSparse, without CUDA).

* :mod:`common.sparse.tensor`: :class:`SparseTensor`, features on active voxels ``[batch, x, y,
  z]`` (stride-1 voxel units; multiples of the tensor stride) with a cache of kernel maps shared by
  every tensor derived from the same input.
* :mod:`common.sparse.kmap`: packing coordinates into int64 keys, kernel offsets, kernel maps
  (vectorised with ``searchsorted``, and a naive dict-based builder), strided output sites.
* :mod:`common.sparse.conv`: :class:`SparseConv3d` (submanifold, strided, regular) in three
  implementations, ``"naive"``, ``"reuse"`` (kernel-map reuse) and ``"optimized"`` (reuse + fused
  gather-matmul-scatter); :class:`SparseBatchNorm`, :class:`SparseReLU`; :func:`sparse_macs`.
* :mod:`common.sparse.voxelize`: point clouds to sparse voxels (``VOXEL_FEATURES`` channels),
  sparse to dense grids and bird's-eye views.
* :mod:`common.sparse.bench`: timing of the implementations against dense ``conv3d``.

Modules taking and returning :class:`SparseTensor` compose with ``nn.Sequential``.
"""

from common.sparse.conv import (
    IMPLS,
    SparseBatchNorm,
    SparseConv3d,
    SparseReLU,
    release_workspace,
    sparse_macs,
)
from common.sparse.kmap import (
    KernelMap,
    build_kernel_map,
    build_kernel_map_naive,
    downsample_coords,
    kernel_offsets,
    pack,
    unpack,
)
from common.sparse.tensor import SparseTensor
from common.sparse.voxelize import (
    VOXEL_FEATURES,
    dense_to_bev,
    dense_voxels,
    grid_shape,
    to_bev,
    to_dense,
    voxelize,
)

__all__ = [
    "IMPLS",
    "VOXEL_FEATURES",
    "KernelMap",
    "SparseBatchNorm",
    "SparseConv3d",
    "SparseReLU",
    "SparseTensor",
    "build_kernel_map",
    "build_kernel_map_naive",
    "dense_to_bev",
    "dense_voxels",
    "downsample_coords",
    "grid_shape",
    "kernel_offsets",
    "pack",
    "release_workspace",
    "sparse_macs",
    "to_bev",
    "to_dense",
    "unpack",
    "voxelize",
]
