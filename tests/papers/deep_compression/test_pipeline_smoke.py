"""The Deep Compression pipeline at the smoke profile: files, sizes, errors and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from common.compress import read_compressed
from common.compress.codec import decode_state
from common.data import build_dataset
from common.io import load_masks, read_metrics
from common.report import fmt, load_claims
from common.train import evaluate_dataset
from tests.papers.deep_compression.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("net", ["lenet300", "lenet5", "vgg"])
def test_compressed_file_is_the_reported_size_and_error(smoke_pipeline: Path, net: str) -> None:
    metrics = read_metrics(smoke_pipeline / "metrics/deep_compression" / f"compressed_{net}.json")
    path = smoke_pipeline / "runs/deep_compression/compressed" / net / "model.dcmp"
    assert path.stat().st_size == round(metrics[f"{net}/compressed/size_kb"] * 1000)
    model, info = read_compressed(path)
    assert info["meta"]["network"] == net
    dataset = "colour_digits" if net == "vgg" else "mnist"
    test = build_dataset(
        dataset,
        "test",
        root=smoke_pipeline / "data/prepared" / dataset,
        subset=1000 if net != "vgg" else 500,
        seed=0,
    )
    assert evaluate_dataset(model, test)["error"] == pytest.approx(
        metrics[f"{net}/compressed/test_error"], abs=1e-9
    )
    assert (
        metrics[f"{net}/compressed/test_error"] == metrics[f"{net}/compressed/test_error_in_memory"]
    )


@pytest.mark.parametrize("net", ["lenet300", "lenet5"])
def test_pruning_pattern_survives_quantization(smoke_pipeline: Path, net: str) -> None:
    masks = load_masks(smoke_pipeline / "runs/deep_compression/pruned" / net / "masks.safetensors")
    model, _ = read_compressed(
        smoke_pipeline / "runs/deep_compression/compressed" / net / "model.dcmp"
    )
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        assert torch.equal(modules[name].weight != 0, mask), name
    shared: dict = {}
    decode_state(
        (smoke_pipeline / "runs/deep_compression/compressed" / net / "model.dcmp").read_bytes(),
        shared=shared,
    )
    bits = {
        "lenet300": {"ip1": 6, "ip2": 6, "ip3": 6},
        "lenet5": {"conv1": 8, "conv2": 8, "ip1": 5, "ip2": 5},
    }[net]
    assert {k: v.bits for k, v in shared.items()} == bits
    for name, layer in shared.items():
        assert torch.unique(modules[name].weight.detach()).numel() <= 2**layer.bits


def test_pruned_density_is_the_configured_one(smoke_pipeline: Path) -> None:
    prune = json.loads(
        (smoke_pipeline / "runs/deep_compression/pruned/lenet5/prune.json").read_text()
    )
    assert {x["name"]: round(x["density"], 2) for x in prune["layers"]} == {
        "conv1": 0.66,
        "conv2": 0.12,
        "ip1": 0.08,
        "ip2": 0.19,
    }


def test_report_has_every_claim_and_table(smoke_pipeline: Path) -> None:
    report = smoke_pipeline / "reports/deep_compression"
    claims = json.loads((report / "claims.json").read_text())
    yaml_ids = {c.id for c in load_claims(REPO / "papers/deep_compression/claims.yaml")}
    assert {c["id"] for c in claims["claims"]} == yaml_ids and claims["profile"] == "smoke"
    page = (report / "README.md").read_text()
    for heading in (
        "Table 1",
        "Table 2",
        "Table 3",
        "P → P+Q → P+Q+H",
        "Figure 6",
        "Table 6",
        "Figure 8",
        "Figures 9-10",
        "What was scaled down",
    ):
        assert heading in page, heading
    # The AlexNet/VGG-16 rows do not run at this profile and say so; at smoke the errors miss.
    by_id = {c["id"]: c for c in claims["claims"]}
    assert (
        by_id["table1.alexnet.rate"]["ours"] is None
        and "not measured" in by_id["table1.alexnet.rate"]["note"]
    )
    assert by_id["table1.lenet5.compressed_error"]["reproduced"] is False
    assert "**not reproduced**" in next(
        line for line in page.splitlines() if "table1.lenet5.compressed_error" in line
    )
    for fig in (
        "training.png",
        "sensitivity.png",
        "tradeoff.png",
        "init.png",
        "speedup.png",
        "weights.png",
    ):
        assert (report / "figures" / fig).stat().st_size > 5000, fig
    status = json.loads(
        (smoke_pipeline / "runs/deep_compression/imagenet/alexnet/status.json").read_text()
    )
    assert status["status"] == "not run"


def test_tradeoff_and_bitwidth_cover_their_grids(smoke_pipeline: Path) -> None:
    tradeoff = json.loads(
        (smoke_pipeline / "metrics/deep_compression/tradeoff_lenet300.json").read_text()
    )
    assert {p["method"] for p in tradeoff["points"]} == {"pruning", "quantization", "both"}
    bw = json.loads((smoke_pipeline / "metrics/deep_compression/bitwidth_lenet5.json").read_text())
    assert [(r["conv_bits"], r["fc_bits"]) for r in bw["sweep"]] == [(8, 5), (4, 2)]
    assert len(bw["init"]) == 6
    speed = json.loads((smoke_pipeline / "metrics/deep_compression/speedup.json").read_text())
    assert all(r["speedup_torch"] > 0 and abs(r["density"] - 0.085) < 0.01 for r in speed["layers"])


def test_derived_rates_reach_derived_json_and_the_page(smoke_pipeline: Path) -> None:
    """The staged rates the report shows are written to derived.json, from the stage metrics."""
    m = smoke_pipeline / "metrics/deep_compression"
    derived = read_metrics(m / "derived.json")
    page = (smoke_pipeline / "reports/deep_compression/README.md").read_text()
    for net in ("lenet300", "lenet5", "vgg"):
        total = f"{net}/compressed/total"
        compressed = read_metrics(m / f"compressed_{net}.json")
        assert derived[f"{net}/derived/pruned_rate"] == pytest.approx(
            100 / compressed[f"{total}/kept_pct"]
        )
        assert derived[f"{net}/derived/pq_rate"] == pytest.approx(
            100 / compressed[f"{total}/rate_pq_pct"]
        )
        assert f"({fmt(derived[f'{net}/derived/pq_rate'])}×)" in page, net
    # The analogue's layer table keeps the model's order (features before the classifier).
    assert page.index("| features.0 | 432 |") < page.index("| classifier.0 | 262144 |")


def test_settings_and_architecture_hold_and_only_results_count(smoke_pipeline: Path) -> None:
    """What we set to the paper's values (kept %, bit widths) and the networks' weight counts
    agree with the paper at every profile; the headline counts results only."""
    report = smoke_pipeline / "reports/deep_compression"
    claims = json.loads((report / "claims.json").read_text())["claims"]
    assert {c["kind"] for c in claims} == {"result", "setting", "architecture"}
    checks = [c for c in claims if c["kind"] != "result" and c["ours"] is not None]
    assert len(checks) >= 30
    assert [c["id"] for c in checks if not c["reproduced"]] == []
    results = [c for c in claims if c["kind"] == "result"]
    ok = sum(c["reproduced"] for c in results)
    assert f"**{ok} of {len(results)} results reproduced**" in (report / "README.md").read_text()
