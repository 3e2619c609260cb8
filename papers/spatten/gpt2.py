"""GPT-2 with the module layout :class:`~papers.spatten.decoder.PrunedDecoder` runs, loading
Hugging Face's GPT-2 checkpoints (``gpt2``, ``gpt2-medium``: ``config.json`` +
``model.safetensors``) for the paper profile.

The house decoder (``common.models.transformer.DecoderLM``) and this one expose the same parts:
``embed(tokens, offset)``, the layers in ``decoder`` (each with ``mix_norm``, a ``mixer`` holding
``q_proj``/``k_proj``/``v_proj``/``out_proj``, ``heads`` and ``head_dim``, and ``_feed_forward``),
``decoder_norm`` and ``output``. GPT-2's fused ``c_attn`` (a ``Conv1D``: ``x @ W``) is split into
the three projections when loading. Without pruning the logits equal ``transformers``'
``GPT2LMHeadModel`` (the tests hold them to 1e-5).

:class:`HFTokenizer` gives a Hugging Face tokenizer the interface of the house's SentencePiece
tokenizer (``encode``, ``bos_id``, ``eos_id``, ``pad_id``, ``vocab_size``) so that the shared
corpora and perplexity code read GPT-2's text: BOS and EOS are ``<|endoftext|>``, and padding is an
id past the vocabulary, which the model embeds as ``<|endoftext|>`` and the losses ignore.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.checkpoint import CheckpointError
from common.errors import InputError
from common.text.tokenizer import Tokenizer


@dataclass(frozen=True)
class GPT2Config:
    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    layer_norm_epsilon: float = 1e-5

    @classmethod
    def from_json(cls, path: str | Path) -> GPT2Config:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        if raw.get("model_type", "gpt2") != "gpt2":
            raise ValueError(f"model_type is {raw.get('model_type')!r}, not 'gpt2'")
        act = raw.get("activation_function", "gelu_new")
        if act != "gelu_new":
            raise ValueError(f"activation_function {act!r} is not GPT-2's gelu_new")
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


class _Embed(nn.Module):
    def __init__(self, c: GPT2Config) -> None:
        super().__init__()
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.n_positions, c.n_embd)
        self.max_positions = c.n_positions

    def forward(self, tokens: Tensor, offset: int = 0) -> Tensor:
        if offset + tokens.shape[1] > self.max_positions:
            raise ValueError(
                f"{offset + tokens.shape[1]} positions: GPT-2 has {self.max_positions}"
            )
        pos = torch.arange(offset, offset + tokens.shape[1], device=tokens.device)
        # padding ids (past the vocabulary) read <|endoftext|>; their targets are ignored
        return self.wte(tokens.clamp_max(self.wte.num_embeddings - 1)) + self.wpe(pos)[None]


class _Attention(nn.Module):
    def __init__(self, c: GPT2Config) -> None:
        super().__init__()
        self.heads, self.head_dim = c.n_head, c.n_embd // c.n_head
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            nn.Linear(c.n_embd, c.n_embd) for _ in range(4)
        )

    def forward(self, x: Tensor) -> Tensor:
        b, t, e = x.shape

        def split(y: Tensor) -> Tensor:
            return y.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, e))


class GPT2Block(nn.Module):
    def __init__(self, c: GPT2Config) -> None:
        super().__init__()
        inner = c.n_inner or 4 * c.n_embd
        self.mix_norm = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.mixer = _Attention(c)
        self.ffn_norm = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.fc = nn.Linear(c.n_embd, inner)
        self.proj = nn.Linear(inner, c.n_embd)

    def _feed_forward(self, x: Tensor) -> Tensor:
        return x + self.proj(F.gelu(self.fc(self.ffn_norm(x)), approximate="tanh"))

    def forward(self, x: Tensor) -> Tensor:
        return self._feed_forward(x + self.mixer(self.mix_norm(x)))


class GPT2LM(nn.Module):
    """``model(inputs (B, T)) -> next-token logits (B, T, vocab)`` (causal)."""

    mixer = "attention"

    def __init__(self, config: GPT2Config | dict) -> None:
        super().__init__()
        c = config if isinstance(config, GPT2Config) else GPT2Config(**config)
        self.config = c
        self.embed = _Embed(c)
        self.decoder = nn.ModuleList(GPT2Block(c) for _ in range(c.n_layer))
        self.decoder_norm = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)

    def output(self, h: Tensor) -> Tensor:
        """The vocabulary logits, tied to the token embedding as GPT-2's ``lm_head``."""
        return F.linear(h, self.embed.wte.weight)

    def forward(self, inputs: Tensor) -> Tensor:
        x = self.embed(inputs)
        for layer in self.decoder:
            x = layer(x)
        return self.output(self.decoder_norm(x))

    def arch(self) -> dict[str, Any]:
        return {"name": "spatten_gpt2", "kwargs": {"config": asdict(self.config)}}

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> GPT2LM:
        """A GPT-2 checkpoint in Hugging Face's layout (``GPT2LMHeadModel`` or ``GPT2Model``)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = checkpoint_folder(folder)
        try:
            config = GPT2Config.from_json(folder / "config.json")
            state = load_file(str(folder / "model.safetensors"))
        except (OSError, ValueError, TypeError, KeyError, SafetensorError) as exc:
            raise CheckpointError(
                f"{folder} does not hold a readable GPT-2 checkpoint ({exc}). Fix: point the "
                "profile's lms.<name>.checkpoint at a Hugging Face GPT-2 folder"
            ) from None
        state = {k.removeprefix("transformer."): v for k, v in state.items()}
        model = cls(config)
        e = config.n_embd
        own: dict[str, Tensor] = {}
        try:
            own["embed.wte.weight"] = state["wte.weight"]
            own["embed.wpe.weight"] = state["wpe.weight"]
            for n in ("weight", "bias"):
                own[f"decoder_norm.{n}"] = state[f"ln_f.{n}"]
            for i in range(config.n_layer):
                h, d = f"h.{i}.", f"decoder.{i}."
                for n in ("weight", "bias"):
                    own[d + f"mix_norm.{n}"] = state[h + f"ln_1.{n}"]
                    own[d + f"ffn_norm.{n}"] = state[h + f"ln_2.{n}"]
                w, b = state[h + "attn.c_attn.weight"], state[h + "attn.c_attn.bias"]
                for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
                    own[d + f"mixer.{name}.weight"] = w[:, j * e : (j + 1) * e].t()
                    own[d + f"mixer.{name}.bias"] = b[j * e : (j + 1) * e]
                own[d + "mixer.out_proj.weight"] = state[h + "attn.c_proj.weight"].t()
                own[d + "mixer.out_proj.bias"] = state[h + "attn.c_proj.bias"]
                own[d + "fc.weight"] = state[h + "mlp.c_fc.weight"].t()
                own[d + "fc.bias"] = state[h + "mlp.c_fc.bias"]
                own[d + "proj.weight"] = state[h + "mlp.c_proj.weight"].t()
                own[d + "proj.bias"] = state[h + "mlp.c_proj.bias"]
            model.load_state_dict({k: v.contiguous() for k, v in own.items()})
        except (KeyError, RuntimeError) as exc:
            first = str(exc).splitlines()[0][:200]
            raise CheckpointError(
                f"{folder} is not a GPT-2 checkpoint of its config.json ({first})"
            ) from None
        return model


def checkpoint_folder(name: str | Path) -> Path:
    """A GPT-2 folder of the profile (relative to the data root unless absolute)."""
    from papers.spatten.config import user_path

    folder = user_path(str(name))
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise InputError(
            f"{folder} is not a GPT-2 checkpoint folder (config.json + model.safetensors). Fix: "
            "download one with `huggingface-cli download gpt2 --local-dir <folder>` and set the "
            "profile's lms.<name>.checkpoint to that folder"
        )
    return folder


class HFTokenizer(Tokenizer):
    """A Hugging Face tokenizer with the house tokenizer's interface (see the module doc); a
    subclass so that the shared corpora take it as they take the house's."""

    def __init__(self, folder: str | Path) -> None:  # no SentencePiece model: not super()
        from transformers import AutoTokenizer

        folder = checkpoint_folder(folder)
        try:
            self.hf = AutoTokenizer.from_pretrained(str(folder))
        except (OSError, ValueError, TypeError) as exc:
            raise InputError(
                f"{folder} has no readable tokenizer ({str(exc).splitlines()[0][:160]}). Fix: "
                "download the checkpoint with its tokenizer files (vocab.json + merges.txt or "
                "tokenizer.json)"
            ) from None
        if self.hf.eos_token_id is None:
            raise InputError(f"{folder}: the tokenizer has no end-of-text token")
        self.bos_id = self.eos_id = int(self.hf.eos_token_id)
        self.vocab_size = len(self.hf)
        self.pad_id = self.vocab_size  # never a real token (see the module doc)

    def encode(self, lines: list[str]) -> list[list[int]]:
        return [list(ids) for ids in self.hf(list(lines), add_special_tokens=False)["input_ids"]]

    def decode(self, ids: list[list[int]]) -> list[str]:
        return [self.hf.decode(i) for i in ids]
