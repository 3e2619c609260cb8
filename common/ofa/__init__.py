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

* :mod:`common.ofa.training` (progressive shrinking): :class:`SubnetSampler` draws a sub-network
  of the current phase's choices before every forward pass (with elastic resolution), BN
  recalibration (:func:`recalibrate_bn_`) and evaluation of a sub-network (:func:`evaluate_arch`).
  Distillation from the full network is :class:`common.train.distill.DistillationHook`.
* :mod:`common.ofa.predictor`: the architecture encoding and the MLP accuracy predictor.
* :mod:`common.ofa.efficiency`: MACs, a latency lookup table measured on this machine, and the
  peak SRAM of the MCU engine's memory plan. Import it (and :mod:`common.ofa.mcu_cost`) from the
  module itself: the package does not, so what trains the supernet does not depend on the MCU
  engine (a change there does not retrain it).
* :mod:`common.ofa.mcu_cost`: instruction counts on the MCU engine's emulated Cortex-M7 (whole
  sub-networks measured with a per-operator profile) and the per-operator instruction lookup
  table built from them.
* :mod:`common.ofa.search`: the evolutionary search under a constraint (resumable, seeded).

The paper's pipeline (schedules, tables, report) is in ``papers/once_for_all``.
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
from common.ofa.predictor import AccuracyPredictor, ArchEncoder, fit_predictor
from common.ofa.search import EvolutionConfig, EvolutionSearch, SearchError, SearchResult
from common.ofa.supernet import (
    OFAMobileNetV3,
    OFAMobileNetV3Config,
    analytic_macs,
    build_static_subnet,
    subnet_spec,
)
from common.ofa.training import (
    ElasticChoices,
    SubnetEvaluator,
    SubnetSampler,
    evaluate_arch,
    full_space,
    recalibrate_bn_,
)

__all__ = [
    "ACTIVATIONS",
    "AccuracyPredictor",
    "ArchEncoder",
    "ElasticBatchNorm2d",
    "ElasticChoices",
    "ElasticConv2d",
    "ElasticDepthwiseConv2d",
    "ElasticMBConvBlock",
    "EvolutionConfig",
    "EvolutionSearch",
    "OFAMobileNetV3",
    "OFAMobileNetV3Config",
    "SearchError",
    "SearchResult",
    "SubnetEvaluator",
    "SubnetSampler",
    "analytic_macs",
    "build_activation",
    "build_static_subnet",
    "evaluate_arch",
    "fit_predictor",
    "full_space",
    "middle_channel_importance",
    "recalibrate_bn_",
    "sort_middle_channels_",
    "subnet_spec",
]
