"""Compression transforms, usable on any ``nn.Module``.

* :mod:`~common.compress.prune`: magnitude pruning with masks kept through retraining.
* :mod:`~common.compress.quantize`: trained quantization by k-means weight sharing.
* :mod:`~common.compress.huffman`: canonical Huffman coding.
* :mod:`~common.compress.sparse`: relative sparse indices with filler zeros.
* :mod:`~common.compress.codec`: the compressed model file (write, read, exact byte accounting).

Deep Compression (``papers/deep_compression``) chains them; later papers reuse them.
"""

from common.compress.codec import CodecReport, LayerStorage, read_compressed, write_compressed
from common.compress.prune import (
    MagnitudePruneConfig,
    MaskHook,
    PruneReport,
    apply_masks_,
    prune_,
    sensitivity_scan,
)
from common.compress.quantize import (
    KMeansQuantConfig,
    QuantReport,
    bake_,
    kmeans_quantize_,
    quantized_layers,
    shared_state,
)

__all__ = [
    "CodecReport",
    "KMeansQuantConfig",
    "LayerStorage",
    "MagnitudePruneConfig",
    "MaskHook",
    "PruneReport",
    "QuantReport",
    "apply_masks_",
    "bake_",
    "kmeans_quantize_",
    "prune_",
    "quantized_layers",
    "read_compressed",
    "sensitivity_scan",
    "shared_state",
    "write_compressed",
]
