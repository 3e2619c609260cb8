"""The DRAM-traffic counter on a case computed by hand, and on the released GPT-2 workloads."""

from __future__ import annotations

import gzip

import pytest

from papers.spatten.bert import LayerTrace, Trace
from papers.spatten.traffic import Bits, fetch_bytes, read_workload, trace_traffic, workload_traffic
from tests.params import REPO

WORKLOADS = REPO / "data" / "spatten" / "workloads"


def test_fetch_bytes_by_hand() -> None:
    # head_dim 8 -> one row is 8 values; 3 Q rows at 16 bits = 48 B, 4 K rows at 6 bits = 24 B,
    # their 4 LSBs = 16 B more, 2 V rows at 6 bits = 12 B
    b = fetch_bytes(head_dim=8, queries=3, key_rows=4, value_rows=2,
                    bits=Bits(q=16, k=6, k_lsb=4, v=6), requant=True)  # fmt: skip
    assert b == {"q": 48.0, "k": 40.0, "v": 12.0}


def test_trace_traffic_by_hand() -> None:
    # one sentence of 4 tokens, 2 heads of dim 8; layer 0 dense, layer 1 keeps 2 tokens, 1 head
    trace = Trace([
        LayerTrace(tokens=[4], heads=[2], keys=[4], value_rows=[8], requant_queries=[0],
                   requant_heads=[0]),
        LayerTrace(tokens=[2], heads=[1], keys=[2], value_rows=[1], requant_queries=[1],
                   requant_heads=[1]),
    ])  # fmt: skip
    t = trace_traffic(trace, head_dim=8, heads=2, bits=Bits(q=16, k=8, k_lsb=4, v=8))
    # layer 0: Q 8 rows x 16 B, K 8 rows x 8 B, V 8 rows x 8 B; layer 1: Q 2 x 16, K 2 x (8 + 4), V 1 x 8
    assert (t["q"], t["k"], t["v"]) == (8 * 16 + 2 * 16, 8 * 8 + 2 * 12, 8 * 8 + 8)
    assert t["dense_total"] == 2 * 3 * 8 * 16  # both layers: 8 rows each of Q, K, V at 16 bits
    assert (t["key_rows"], t["value_rows"], t["dense_rows"], t["requant_queries"]) == (10, 9, 16, 1)


def test_released_gpt2_small_workload_fetch_fractions() -> None:
    rows, config = read_workload(WORKLOADS / "summary-gpt2-small-wikitext2-per8.csv.gz")
    assert "requant0p05_inc4_k" in config and len(rows) == 32 * 12 * 12
    t = workload_traffic(rows)
    # the notes' reading of this schedule: K 28%, V 5.5%, K+V about 17% of the dense rows
    assert t["key_rows"] / t["dense_rows"] == pytest.approx(0.28, abs=0.01)
    assert t["value_rows"] / t["dense_rows"] == pytest.approx(0.055, abs=0.003)


def test_a_corrupt_workload_is_one_clear_error(tmp_path) -> None:
    from common.data.checksums import DataError

    bad = tmp_path / "w.csv.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="git checkout -- data/spatten"):
        read_workload(bad)
    bad.write_bytes(gzip.compress(b"a,b\n1,2\nconfig\n"))
    with pytest.raises(DataError, match="not a SpAtten workload"):
        read_workload(bad)
