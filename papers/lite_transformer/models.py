"""From a profile's model entry to a network: the width that meets a Mult-Adds budget, the
architecture dict the checkpoint stores, and the forward call the training loop uses."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from common.models import create_model
from common.models.transformer import analytic_mult_adds
from papers.lite_transformer.config import ModelConfig


def _madds(cfg: ModelConfig, dim: int) -> int:
    seq2seq = cfg.task == "translation"
    return analytic_mult_adds(
        dim=dim,
        ffn_dim=round(cfg.ffn_ratio * dim),
        heads=cfg.heads,
        encoder_layers=cfg.layers if seq2seq else 0,
        decoder_layers=cfg.layers,
        mixer=cfg.mixer,
        kernel_sizes=cfg.kernel_sizes,
        conv=cfg.conv,
        glu=cfg.glu,
        cross_attention=seq2seq,
    )


def choose_dim(cfg: ModelConfig, target: float | None = None) -> int:
    """``cfg.dim``, or the width whose layer Mult-Adds are closest to ``target`` (default
    ``cfg.budget``): a multiple of ``heads`` for attention, of ``2 * heads`` for LSRA (each half
    splits into heads)."""
    if cfg.dim is not None:
        return cfg.dim
    target = cfg.budget if target is None else target
    step = cfg.heads if cfg.mixer == "attention" else 2 * cfg.heads
    dims = range(step, 2048 + step, step)
    return min(dims, key=lambda d: abs(_madds(cfg, d) - target))


def resolve_dim(models: dict[str, ModelConfig], name: str) -> int:
    """The width of ``models[name]``, meeting the Mult-Adds of its ``match`` when it has one."""
    cfg = models[name]
    if cfg.match is None:
        return choose_dim(cfg)
    other = models[cfg.match]
    return choose_dim(cfg, _madds(other, choose_dim(other)))


def arch(cfg: ModelConfig, vocab_size: int, dim: int | None = None) -> dict[str, Any]:
    """The registry name and arguments of the network (stored with the weights)."""
    dim = dim or choose_dim(cfg)
    kwargs: dict[str, Any] = {
        "vocab_size": vocab_size,
        "dim": dim,
        "heads": cfg.heads,
        "ffn_dim": round(cfg.ffn_ratio * dim),
        "mixer": cfg.mixer,
        "kernel_sizes": list(cfg.kernel_sizes[: cfg.layers]),
        "conv": cfg.conv,
        "glu": cfg.glu,
        "dropout": cfg.dropout,
        "attention_dropout": cfg.attention_dropout,
        "weight_dropout": cfg.weight_dropout,
        "max_positions": cfg.max_positions,
    }
    if cfg.task == "translation":
        return {
            "name": "transformer_seq2seq",
            "kwargs": {**kwargs, "encoder_layers": cfg.layers, "decoder_layers": cfg.layers},
        }
    return {"name": "transformer_lm", "kwargs": {**kwargs, "layers": cfg.layers}}


def build(
    cfg: ModelConfig, vocab_size: int, dim: int | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    a = arch(cfg, vocab_size, dim)
    return create_model(a["name"], **a["kwargs"]), a


def forward_fn(task: str):
    """``forward(model, batch) -> logits`` for the shared training loop."""
    if task == "translation":
        return _seq2seq_forward
    return _lm_forward


def _seq2seq_forward(model: nn.Module, batch: Any) -> Tensor:
    return model(batch.source, batch.inputs)


def _lm_forward(model: nn.Module, batch: Any) -> Tensor:
    return model(batch.inputs)
