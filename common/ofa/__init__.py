"""Once-for-All (Cai et al., ICLR 2020): the elastic machinery of a weight-sharing supernet.

One MobileNetV3-style network is trained once and holds every sub-network of its space (the
paper's "architecture space"): five elastic stages, each running its first ``d`` blocks
(``d`` in {2, 3, 4}); every block picks a depthwise kernel size in {3, 5, 7} and an expand ratio
in {3, 4, 6}; the input resolution is elastic thanks to global pooling. Pieces:

* :mod:`common.ofa.elastic` (the paper's "elastic kernel size" and "elastic width"):
  :class:`ElasticDepthwiseConv2d` derives 5x5 and 3x3 kernels from the centre of the 7x7 one
  through per-layer kernel-transformation matrices (25x25, 9x9, identity-initialised, shared by
  all channels); :class:`ElasticConv2d` and :class:`ElasticBatchNorm2d` run on the first
  channels; :func:`sort_middle_channels_` reorders expanded channels by the L1 norm of the
  projection weights so the channels every narrower sub-network keeps are the important ones.
* :mod:`common.ofa.supernet` ("elastic depth", resolution and deployment of sub-networks):
  :class:`OFAMobileNetV3` with ``set_active_subnet`` / ``sample_active_subnet`` /
  ``active_config`` and extraction of the active sub-network as a
  :class:`common.models.mbconv.MBConvNetSpec` plus weights (:func:`build_static_subnet`);
  :func:`analytic_macs` gives a sub-network's MACs from its config alone.

Progressive shrinking, BN recalibration, the accuracy predictor and the evolutionary search
build on these pieces and are not here.
"""

from common.ofa.elastic import (
    ACTIVATIONS,
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticDepthwiseConv2d,
    ElasticMBConvBlock,
    build_activation,
    middle_channel_importance,
    sort_middle_channels_,
)
from common.ofa.supernet import (
    OFAMobileNetV3,
    OFAMobileNetV3Config,
    analytic_macs,
    build_static_subnet,
    subnet_spec,
)

__all__ = [
    "ACTIVATIONS",
    "ElasticBatchNorm2d",
    "ElasticConv2d",
    "ElasticDepthwiseConv2d",
    "ElasticMBConvBlock",
    "OFAMobileNetV3",
    "OFAMobileNetV3Config",
    "analytic_macs",
    "build_activation",
    "build_static_subnet",
    "middle_channel_importance",
    "sort_middle_channels_",
    "subnet_spec",
]
