"""Scoring token models on a corpus: perplexity, and translating a test set in batches.

* :func:`perplexity`: ``exp`` of the mean negative log-likelihood per target token (padding
  excluded, the ``eos`` of every sentence included, as fairseq counts), over length-bucketed
  batches, counted as the training loop's evaluation counts.
* :func:`translate_dataset`: decode every source sentence of a
  :class:`~common.data.tokens.TokenSequences` with the model's ``translate`` (beam search or
  greedy), in batches of similar length, returning the detokenized texts in the dataset's order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from common.data.tokens import TokenSequences, build_token_loader, pad_stack


@torch.inference_mode()
def perplexity(
    model: nn.Module,
    data: TokenSequences,
    *,
    forward: Callable[[nn.Module, Any], Tensor],
    max_tokens: int = 8192,
) -> dict[str, float]:
    """``{"nll": mean NLL per token (nats), "ppl": exp(nll), "tokens": count}``."""
    from common.train.tasks import TokenTask

    was_training = model.training
    model.eval()
    device = _device(model)
    nll, tokens = 0.0, 0
    longest = max(data.lengths(), default=1)
    for batch in build_token_loader(data, max_tokens=max(max_tokens, longest), shuffle=False):
        batch = batch.to(device)
        batch_nll, _, n = TokenTask.token_sums(forward(model, batch), batch.targets, batch.pad_id)
        nll += float(batch_nll)
        tokens += n
    model.train(was_training)
    mean = nll / max(tokens, 1)
    return {"nll": mean, "ppl": math.exp(min(mean, 50.0)), "tokens": float(tokens)}


def translate_dataset(
    model: nn.Module,
    data: TokenSequences,
    decode: Callable[[list[list[int]]], list[str]],
    *,
    beam: int = 4,
    length_penalty: float = 0.6,
    batch_sentences: int = 64,
    progress: bool = True,
) -> list[str]:
    """Translations of ``data``'s sources (with their ``eos``), in ``data``'s order."""
    if data.sources is None:
        raise ValueError("translate_dataset needs a dataset with sources")
    eos = torch.tensor([data.eos_id])
    device = _device(model)
    order = sorted(range(len(data)), key=lambda i: (len(data.sources[i]), i))
    out: list[list[int]] = [[] for _ in range(len(data))]
    chunks = [order[i : i + batch_sentences] for i in range(0, len(order), batch_sentences)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(order), desc="translating", unit="sent", leave=False)
    for chunk in chunks:
        source = pad_stack([torch.cat([data.sources[i], eos]) for i in chunk], data.pad_id)
        ids = model.translate(
            source.to(device),
            bos=data.bos_id,
            eos=data.eos_id,
            beam=beam,
            length_penalty=length_penalty,
        )
        for i, seq in zip(chunk, ids, strict=True):
            out[i] = seq
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return decode(out)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
