"""Building blocks that more than one model uses (timm's ``layers`` idea): model files import them
instead of redefining them.

* :mod:`common.layers.conv1d`: lightweight and dynamic convolutions over token sequences (Lite
  Transformer's short-range branch), pure PyTorch, with incremental decoding.
* :mod:`common.layers.attention`: multi-head attention with a causal mask, incremental decoding
  and the attention weights on request.
* :mod:`common.layers.transformer`: pre-norm encoder and decoder layers whose token mixer is
  attention or Lite Transformer's long-short range attention (LSRA), and the feed-forward network.
"""

from common.layers.attention import MultiheadAttention
from common.layers.conv1d import DynamicConv1d, LightweightConv1d
from common.layers.transformer import (
    ConvBranch,
    DecoderLayer,
    EncoderLayer,
    FeedForward,
    LongShortRange,
)

__all__ = [
    "ConvBranch",
    "DecoderLayer",
    "DynamicConv1d",
    "EncoderLayer",
    "FeedForward",
    "LightweightConv1d",
    "LongShortRange",
    "MultiheadAttention",
]
