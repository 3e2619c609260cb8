"""Microcontroller deployment: int8 graphs with TF-Lite semantics, their reference executor,
TF-Lite import/export, the TF-Lite Micro peer, memory planning and (next) C code generation.

Used by ``papers/mcunet`` and by any paper that deploys a model to a Cortex-M.
"""

from common.mcu.graph import SUPPORTED_OPS, Graph, Op, Tensor, UnsupportedOperatorError

__all__ = ["SUPPORTED_OPS", "Graph", "Op", "Tensor", "UnsupportedOperatorError"]
