"""SpAtten's main metric: the DRAM traffic of attention, counted exactly.

One model for every source: per layer and head, the rows of Q, K and V fetched, each row
``head_dim`` values at its bit width. K and V rows are fetched once per head and layer (SpAtten
keeps a head's K and V on chip for all its queries: its K/V SRAMs hold a 1024-token context);
when a head's attention is flat (a query's largest probability below ``tau``) the LSBs of its K
rows are fetched too. The dense baseline fetches every row of every head at 16 bits.

* :func:`fetch_bytes`: the bytes of one (layer, head) fetch;
* :func:`trace_traffic`: the traffic of a forward of our encoder or decoder from its
  :class:`~papers.spatten.bert.Trace`, beside the dense baseline of the same sentences;
* :func:`workload_traffic`: the same counter run on a released SpAtten workload schedule
  (``data/spatten/workloads``: the authors' per-iteration, per-layer, per-head fetch counts).
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

from common.data.checksums import DataError

DENSE_BITS = 16


@dataclass(frozen=True)
class Bits:
    """Bit widths of the fetched rows (``k_lsb``: the extra bits of a K re-fetch)."""

    q: int = DENSE_BITS
    k: int = DENSE_BITS
    k_lsb: int = 0
    v: int = DENSE_BITS


def fetch_bytes(
    *,
    head_dim: int,
    queries: int,
    key_rows: int,
    value_rows: int,
    bits: Bits,
    requant: bool = False,
) -> dict[str, float]:
    """Bytes of one (layer, head): ``queries`` Q rows, ``key_rows`` K rows (plus their LSBs if
    ``requant``) and ``value_rows`` V rows."""
    row = head_dim / 8.0
    return {
        "q": queries * row * bits.q,
        "k": key_rows * row * bits.k + (key_rows * row * bits.k_lsb if requant else 0.0),
        "v": value_rows * row * bits.v,
    }


def _add(total: dict[str, float], part: dict[str, float]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0.0) + v


def trace_traffic(trace, *, head_dim: int, heads: int, bits: Bits) -> dict[str, float]:
    """Bytes fetched by a traced forward (summed over sentences and layers) and the dense
    baseline's: ``{q, k, v, total, dense_q, dense_k, dense_v, dense_total, key_rows,
    value_rows, dense_rows, requant_queries, queries}``."""
    out: dict[str, float] = {}
    first = trace.layers[0]
    for layer in trace.layers:
        for j, n in enumerate(layer.tokens):
            h = layer.heads[j]
            # the LSBs of a head's K: fetched for each head with a flat query
            keys = layer.keys[j]
            for requant, count in (
                (True, layer.requant_heads[j]),
                (False, h - layer.requant_heads[j]),
            ):
                _add(out, fetch_bytes(head_dim=head_dim, queries=n * count, key_rows=keys * count,
                                      value_rows=0, bits=bits, requant=requant))  # fmt: skip
            _add(out, fetch_bytes(head_dim=head_dim, queries=0, key_rows=0,
                                  value_rows=layer.value_rows[j], bits=bits))  # fmt: skip
            # the dense model runs every token and head in every layer
            n0 = trace.lengths[j] if trace.lengths else first.tokens[j]
            dense = fetch_bytes(head_dim=head_dim, queries=n0 * heads, key_rows=n0 * heads,
                                value_rows=n0 * heads, bits=Bits())  # fmt: skip
            _add(out, {f"dense_{k}": v for k, v in dense.items()})
            _add(out, {"key_rows": keys * h, "value_rows": layer.value_rows[j], "token_layers": n,
                       "dense_token_layers": n0,
                       "dense_rows": n0 * heads, "queries": n * h,
                       "requant_queries": layer.requant_queries[j]})  # fmt: skip
    out["total"] = out["q"] + out["k"] + out["v"]
    out["dense_total"] = out["dense_q"] + out["dense_k"] + out["dense_v"]
    return out


WORKLOAD_FIX = "restore the committed files with `git checkout -- data/spatten`"


def read_workload(path: str | Path) -> tuple[list[dict[str, str]], str]:
    """The rows of a released workload CSV (gzip) and the configuration its last line names."""
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path} cannot be read as a gzip CSV ({exc}). Fix: {WORKLOAD_FIX}"
        ) from None
    lines = text.strip().splitlines()
    config = lines[-1].split(",")[0]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[:-1]))))
    needed = {"layer_id", "head_id", "embedding_length_D", "sentence_length_L", "key_fetch_num",
              "value_fetch_num", "quant_key_bit", "quant_query_bit", "quant_value_bit",
              "if_requant", "auto_requant_incre"}  # fmt: skip
    if not rows or needed - set(rows[0]):
        raise DataError(f"{path} is not a SpAtten workload (columns missing). Fix: {WORKLOAD_FIX}")
    return rows, config


def workload_traffic(rows: list[dict[str, str]]) -> dict[str, float]:
    """:func:`fetch_bytes` over every (iteration, layer, head) of a workload: one query per
    generation iteration, ``sentence_length_L`` queries in the first (summarization) one. A
    pruned head has no row in the schedule: the dense baseline still runs it (every layer has
    as many heads as the widest layer of the schedule)."""
    out: dict[str, float] = {}
    first_iteration = rows[0]["iteration_id"]
    per_layer: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["iteration_id"], r["layer_id"])
        per_layer[key] = per_layer.get(key, 0) + 1
    heads = max(per_layer.values())
    for (iteration, _layer), running in per_layer.items():
        sample = next(r for r in rows if r["iteration_id"] == iteration)
        length, d = int(sample["sentence_length_L"]), int(float(sample["embedding_length_D"]))
        queries = length if iteration == first_iteration else 1
        dense = fetch_bytes(head_dim=d, queries=queries, key_rows=length, value_rows=length,
                            bits=Bits())  # fmt: skip
        _add(out, {f"dense_{k}": v * (heads - running) for k, v in dense.items()})
        _add(out, {"dense_rows": length * (heads - running)})
    for r in rows:
        d = int(float(r["embedding_length_D"]))
        length = int(r["sentence_length_L"])
        queries = length if r["iteration_id"] == first_iteration else 1
        bits = Bits(q=int(r["quant_query_bit"]), k=int(r["quant_key_bit"]),
                    k_lsb=int(r["auto_requant_incre"]), v=int(r["quant_value_bit"]))  # fmt: skip
        requant = r["if_requant"] == "True"
        _add(out, fetch_bytes(head_dim=d, queries=queries, key_rows=int(r["key_fetch_num"]),
                              value_rows=int(r["value_fetch_num"]), bits=bits, requant=requant))  # fmt: skip
        dense = fetch_bytes(head_dim=d, queries=queries, key_rows=length, value_rows=length,
                            bits=Bits())  # fmt: skip
        _add(out, {f"dense_{k}": v for k, v in dense.items()})
        _add(out, {"key_rows": int(r["key_fetch_num"]), "value_rows": int(r["value_fetch_num"]),
                   "dense_rows": length, "requant_heads": float(requant), "heads": 1.0})  # fmt: skip
    out["total"] = out["q"] + out["k"] + out["v"]
    out["dense_total"] = out["dense_q"] + out["dense_k"] + out["dense_v"]
    return out


def traces_traffic(traces, *, head_dim: int, heads: int, bits: Bits) -> dict[str, float]:
    """:func:`trace_traffic` summed over several forwards (the batches of a test set)."""
    out: dict[str, float] = {}
    for t in traces:
        _add(out, trace_traffic(t, head_dim=head_dim, heads=heads, bits=bits))
    return out


def trace_macs(traces, *, hidden: int, intermediate: int, heads: int) -> dict[str, float]:
    """Multiply-accumulates of the encoder layers that ran, and of the dense network on the same
    sentences: Q/K/V and output projections of the running heads, the two attention products
    over the keys attended to, and the FFN of the kept tokens (value pruning saves fetches, not
    products, in this count)."""
    d = hidden // heads
    out = {"macs": 0.0, "dense_macs": 0.0}

    def layer_macs(n: int, h: int, keys: int) -> float:
        return n * hidden * 4 * h * d + 2 * h * n * keys * d + 2 * n * hidden * intermediate

    for t in traces:
        first = t.layers[0]
        for layer in t.layers:
            for j, n in enumerate(layer.tokens):
                out["macs"] += layer_macs(n, layer.heads[j], layer.keys[j])
                n0 = t.lengths[j] if t.lengths else first.tokens[j]
                out["dense_macs"] += layer_macs(n0, heads, n0)
    return out


def decode_traffic(
    traces, *, head_dim: int, bits: Bits, generation_only: bool = False
) -> dict[str, float]:
    """The traffic of :class:`~papers.spatten.decoder.PrunedDecoder` runs (their
    ``DecodeTrace``), beside the dense 16-bit decoder on the same tokens, with the share of
    (step, layer, head) that re-fetched K's LSBs. ``generation_only`` leaves out the
    summarization pass (step 0)."""
    out: dict[str, float] = {}
    for trace in traces:
        for s, step in enumerate(trace.steps):
            if generation_only and s == 0:
                continue
            for c in step:
                _add(out, fetch_bytes(head_dim=head_dim, queries=c.queries, key_rows=c.keys,
                                      value_rows=c.values, bits=bits, requant=c.requant))  # fmt: skip
                dense = fetch_bytes(head_dim=head_dim, queries=c.queries, key_rows=c.visible,
                                    value_rows=c.visible, bits=Bits())  # fmt: skip
                _add(out, {f"dense_{k}": v for k, v in dense.items()})
                _add(out, {"key_rows": c.keys, "value_rows": c.values, "dense_rows": c.visible,
                           "requant": float(c.requant), "head_steps": 1.0})  # fmt: skip
    out["total"] = out["q"] + out["k"] + out["v"]
    out["dense_total"] = out["dense_q"] + out["dense_k"] + out["dense_v"]
    return out
