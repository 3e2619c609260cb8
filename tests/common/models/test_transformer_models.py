"""The token models: causal decoders, incremental decoding equal to the full pass, beam 1 equal to
greedy, Mult-Adds equal to the analytic count, and every registered model runs on its inputs."""

from __future__ import annotations

import pytest
import torch

from common.models import MODELS, create_model, example_inputs
from common.models.transformer import (
    DecoderLM,
    Seq2SeqTransformer,
    analytic_mult_adds,
    mult_adds,
    reorder_cache,
)

VOCAB = 50
MIXERS = [
    {"mixer": "attention", "ffn_dim": 64},
    {"mixer": "lsra", "conv": "dynamic", "glu": True},
    {"mixer": "lsra", "conv": "lightweight", "glu": False},
]


def _seq2seq(**kw) -> Seq2SeqTransformer:
    torch.manual_seed(0)
    return Seq2SeqTransformer(VOCAB, 16, encoder_layers=2, decoder_layers=2, heads=2,
                              kernel_sizes=(3, 5), dropout=0.0, **kw).eval()  # fmt: skip


def _lm(**kw) -> DecoderLM:
    torch.manual_seed(0)
    return DecoderLM(VOCAB, 16, layers=2, heads=2, kernel_sizes=(3, 5), dropout=0.0, **kw).eval()


def _tokens(b: int, t: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(3, VOCAB, (b, t), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kw", MIXERS, ids=lambda k: f"{k['mixer']}-{k.get('conv', '')}")
def test_decoders_are_causal(kw: dict) -> None:
    """Changing the token at t+1 leaves every output up to t unchanged (and changes t+1's)."""
    src, tgt = _tokens(2, 7), _tokens(2, 9)
    changed = tgt.clone()
    changed[:, 5] = (changed[:, 5] + 1 - 3) % (VOCAB - 3) + 3
    for model, args in ((_seq2seq(**kw), (src,)), (_lm(**kw), ())):
        with torch.no_grad():
            a, b = model(*args, tgt), model(*args, changed)
        torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=1e-6)
        assert not torch.allclose(a[:, 5], b[:, 5])


@pytest.mark.parametrize("kw", MIXERS, ids=lambda k: f"{k['mixer']}-{k.get('conv', '')}")
def test_incremental_decoding_equals_the_full_pass(kw: dict) -> None:
    src, tgt = _tokens(3, 6), _tokens(3, 8)
    model = _seq2seq(**kw)
    with torch.no_grad():
        full = model(src, tgt)
        memory, mask, _ = model.encode(src)
        cache: dict = {}
        steps = [model._decode(tgt[:, t : t + 1], memory, mask, cache)[0] for t in range(8)]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-4, atol=1e-5)
    lm = _lm(**kw)
    with torch.no_grad():
        full = lm(tgt)
        cache = {}
        # two positions, then one at a time: chunks of any size continue the same sequence
        steps = [lm(tgt[:, :2], cache=cache)] + [
            lm(tgt[:, t : t + 1], cache=cache) for t in range(2, 8)
        ]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-4, atol=1e-5)


def test_reordering_the_cache_follows_the_rows() -> None:
    """After reordering, each row continues the sequence of the row it was taken from."""
    model = _lm(mixer="lsra")
    seq = _tokens(3, 6)
    order = torch.tensor([2, 0, 0])
    with torch.no_grad():
        cache: dict = {}
        model(seq[:, :4], cache=cache)
        reorder_cache(cache, order)
        step = model(seq[order, 4:5], cache=cache)
        full = model(seq[order, :5])
    torch.testing.assert_close(step[:, 0], full[:, 4], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kw", MIXERS[:2], ids=["attention", "lsra"])
def test_beam_one_is_greedy_and_greedy_follows_the_full_pass(kw: dict) -> None:
    model = _seq2seq(**kw)
    src = _tokens(4, 5)
    greedy = model.translate(src, bos=1, eos=2, beam=1, max_len_a=1.0, max_len_b=3)
    # Re-derive greedy from full (uncached) passes: append the argmax one token at a time.
    for i, out in enumerate(greedy):
        prefix = torch.tensor([[1]])
        ref = []
        for _ in range(len(out) + (0 if len(out) == 8 else 1)):
            with torch.no_grad():
                nxt = int(model(src[i : i + 1], prefix)[0, -1].argmax())
            if nxt == 2:
                break
            ref.append(nxt)
            prefix = torch.cat([prefix, torch.tensor([[nxt]])], 1)
        assert out == ref
    beam = model.translate(src, bos=1, eos=2, beam=4, max_len_a=1.0, max_len_b=3)
    assert len(beam) == 4 and all(len(b) <= 8 for b in beam)


CONFIGS = [
    dict(mixer="attention", dim=32, ffn_dim=128, heads=4, conv="dynamic", glu=True),
    dict(mixer="lsra", dim=48, ffn_dim=48, heads=4, conv="dynamic", glu=True),
    dict(mixer="lsra", dim=40, ffn_dim=40, heads=4, conv="lightweight", glu=False),
    dict(mixer="lsra", dim=32, ffn_dim=128, heads=2, conv="dynamic", glu=False),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c['mixer']}-{c['dim']}-{c['conv']}")
@pytest.mark.parametrize("seq2seq", [True, False], ids=["seq2seq", "lm"])
def test_mult_adds_equal_the_analytic_count(cfg: dict, seq2seq: bool) -> None:
    kernels = (3, 7, 15)
    if seq2seq:
        model = Seq2SeqTransformer(500, cfg["dim"], encoder_layers=3, decoder_layers=2,
                                   heads=cfg["heads"], ffn_dim=cfg["ffn_dim"], mixer=cfg["mixer"],
                                   kernel_sizes=kernels, conv=cfg["conv"], glu=cfg["glu"])  # fmt: skip
    else:
        model = DecoderLM(500, cfg["dim"], layers=3, heads=cfg["heads"], ffn_dim=cfg["ffn_dim"],
                          mixer=cfg["mixer"], kernel_sizes=kernels, conv=cfg["conv"], glu=cfg["glu"])  # fmt: skip
    counted = mult_adds(model, tokens=30)
    expected = analytic_mult_adds(
        dim=cfg["dim"], ffn_dim=cfg["ffn_dim"], heads=cfg["heads"],
        encoder_layers=3 if seq2seq else 0, decoder_layers=2 if seq2seq else 3,
        mixer=cfg["mixer"], kernel_sizes=kernels, conv=cfg["conv"], glu=cfg["glu"],
        cross_attention=seq2seq, tokens=30,
    )  # fmt: skip
    assert counted["layers"] == expected
    assert counted["output"] == 30 * cfg["dim"] * 500  # the tied projection, kept apart


def test_paper_smallest_wmt_model_is_about_90m_mult_adds() -> None:
    """The convention reproduces the paper's number: embed 200, 6+6 layers, kernels
    [3,7,15,31,31,31], dynamic convolution with GLU (its WMT config) -> ~90M Mult-Adds."""
    madds = analytic_mult_adds(dim=200, ffn_dim=200, heads=4, encoder_layers=6, decoder_layers=6,
                               mixer="lsra", kernel_sizes=(3, 7, 15, 31, 31, 31))  # fmt: skip
    assert 85e6 < madds < 100e6


@pytest.mark.parametrize("name", [n for n in MODELS if hasattr(MODELS.get(n), "example_inputs")])
def test_registered_token_models_run_on_their_example_inputs(name: str) -> None:
    model = create_model(name).eval()
    with torch.no_grad():
        out = model(*example_inputs(name, batch=2))
    assert out.shape[:2] == (2, 12) and torch.isfinite(out).all()


def test_too_long_a_sequence_is_a_clear_error() -> None:
    model = DecoderLM(VOCAB, 16, layers=1, heads=2, kernel_sizes=(3,), max_positions=8)
    with pytest.raises(ValueError, match="longer than max_positions=8"):
        model(_tokens(1, 9))
