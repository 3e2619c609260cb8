"""Building blocks that more than one model uses (timm's ``layers`` idea): model files import them
instead of redefining them.

* :mod:`common.layers.conv1d`: lightweight and dynamic convolutions over token sequences (Lite
  Transformer's short-range branch), pure PyTorch, with incremental decoding.
* :mod:`common.layers.attention`: multi-head attention with a causal mask, incremental decoding
  and the attention weights on request.
"""

from common.layers.attention import MultiheadAttention
from common.layers.conv1d import DynamicConv1d, LightweightConv1d

__all__ = ["DynamicConv1d", "LightweightConv1d", "MultiheadAttention"]
