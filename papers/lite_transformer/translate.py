"""Translate English to Spanish with a trained model of the pipeline.

    python -m papers.lite_transformer.translate "In the beginning God created the heavens and the earth."
    python -m papers.lite_transformer.translate --model mt_transformer_3 --beam 1 "..." "..."

Prints each translation and the time it took (batch 1, this machine's CPU). The models are the
outputs of ``dvc repro papers/lite_transformer/dvc.yaml`` (``runs/lite_transformer/train/<model>``);
a missing or foreign model file is one line saying how to get it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from common.checkpoint import CheckpointError, load_model
from common.errors import InputError
from common.paths import repo_root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m papers.lite_transformer.translate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("text", nargs="+", help="English sentences (quote each)")
    parser.add_argument("--model", default="mt_lite_3", help="a translation model of the profile")
    parser.add_argument("--runs", type=Path, default=repo_root() / "runs" / "lite_transformer")
    parser.add_argument("--beam", type=int, default=4, help="beam size (1: greedy)")
    parser.add_argument("--length-penalty", type=float, default=0.6)
    args = parser.parse_args(argv)
    fix = "train it first: `dvc repro papers/lite_transformer/dvc.yaml` (or `make repro`)"
    try:
        from common.text.tokenizer import Tokenizer

        weights = args.runs / "train" / args.model / "model.safetensors"
        if not weights.is_file():
            raise CheckpointError(f"{weights} is missing. Fix: {fix}")
        try:  # the corpus, hence the tokenizer, the model was trained with
            saved = json.loads((weights.parent / "config.json").read_text(encoding="utf-8"))
            corpus = str(saved["config"].get("corpus", "bible"))
        except (OSError, ValueError, KeyError, AttributeError):
            corpus = "bible"
        tok = Tokenizer.load(args.runs / "tokenizer" / corpus)
        model, meta = load_model(weights)
        if not hasattr(model, "translate"):
            raise CheckpointError(f"{weights} is a {meta['arch']['name']}, not a translation model")
    except (InputError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(2)
    eos = torch.tensor([tok.eos_id])
    for text in args.text:
        source = torch.cat([torch.tensor(tok.encode([text])[0]), eos])[None]
        start = time.perf_counter()
        ids = model.translate(
            source,
            bos=tok.bos_id,
            eos=tok.eos_id,
            beam=args.beam,
            length_penalty=args.length_penalty,
        )
        elapsed = time.perf_counter() - start
        print(tok.decode(ids)[0])
        print(f"  ({args.model}, beam {args.beam}: {elapsed * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
