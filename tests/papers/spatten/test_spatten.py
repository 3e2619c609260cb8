"""SpAtten's stages end to end at the smoke profile, in a temporary folder: fine-tuning, the
pruning search and measurements, the decoder, the released workloads and the report; and the
one-line errors a user meets first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.text.corpus import prepare_bible
from papers.spatten import decode, finetune, lm, prune, report, workloads
from tests.params import REPO, write_params


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spatten")
    prepare_bible(REPO / "data" / "bible", root / "prepared", valid_pct=3.0, test_pct=4.0)
    write_params(root, profile="smoke")
    return root


def _common(root: Path) -> list[str]:
    return ["--params", str(root / "params.yaml"), "--data", str(root / "prepared")]


@pytest.mark.slow
def test_stages_end_to_end(workdir: Path) -> None:
    root, m = workdir, workdir / "metrics"
    for task in ("paraphrase", "section"):
        assert finetune.main([*_common(root), "--name", task, "--raw", str(REPO / "data" / "bible"),
                              "--out", str(root / "runs" / "finetune" / task),
                              "--checkpoints", str(root / "ck" / "ft" / task),
                              "--metrics", str(m / f"finetune_{task}.json"),
                              "--history", str(m / f"finetune_{task}_history.csv")]) == 0  # fmt: skip
        assert prune.main([*_common(root), "--name", task, "--raw", str(REPO / "data" / "bible"),
                           "--dense", str(root / "runs" / "finetune" / task),
                           "--out", str(root / "runs" / "prune" / task),
                           "--checkpoints", str(root / "ck" / "pr" / task),
                           "--metrics", str(m / f"prune_{task}.json")]) == 0  # fmt: skip
    s = json.loads((m / "prune_section.json").read_text())
    assert s["section/token_reduction"] >= 1.0 and s["section/dram_reduction"] > 1.0
    assert 0 <= s["section/pruned_test_accuracy"] <= 100
    curves = json.loads((root / "runs" / "prune" / "section" / "curves.json").read_text())
    assert curves["token_cascade"][0]["keep"] == 1.0 and len(curves["token_local"]) == 2
    example = json.loads((root / "runs" / "prune" / "section" / "example.json").read_text())
    assert example["layers"][0]["tokens"][0] == "[CLS]"
    for row in ("verses", "gpt2_ptb"):  # a row the profile does not run is recorded as such
        assert lm.main([*_common(root), "--name", row, "--out", str(root / "runs" / "lm" / row),
                        "--checkpoints", str(root / "ck" / "lm" / row), "--metrics", str(m / f"lm_{row}.json"),
                        "--history", str(m / f"lm_{row}_history.csv")]) == 0  # fmt: skip
        assert decode.main([*_common(root), "--name", row, "--lm", str(root / "runs" / "lm" / row),
                            "--out", str(root / "runs" / "decode" / row),
                            "--metrics", str(m / f"decode_{row}.json")]) == 0  # fmt: skip
    d = json.loads((m / "decode_verses.json").read_text())
    assert d["decoder/dense_ppl"] > 1 and 0 <= d["decoder/requant_fraction"] <= 1
    assert (m / "lm_gpt2_ptb_history.csv").is_file()  # every declared output exists
    status = json.loads((root / "runs" / "decode" / "gpt2_ptb" / "status.json").read_text())
    assert (
        status["status"] == "not run" and json.loads((m / "decode_gpt2_ptb.json").read_text()) == {}
    )
    assert workloads.main(["--data", str(REPO / "data" / "spatten" / "workloads"),
                           "--out", str(root / "runs" / "workloads"),
                           "--metrics", str(m / "workloads.json")]) == 0  # fmt: skip
    out = root / "report"
    assert report.main(["--params", str(root / "params.yaml"),
                        "--claims", str(REPO / "papers" / "spatten" / "claims.yaml"),
                        "--metrics-dir", str(m), "--runs", str(root / "runs"), "--out", str(out)]) == 0  # fmt: skip
    text = (out / "README.md").read_text()
    assert "Bible section" in text and (out / "figures" / "tokens.png").is_file()
    claims = {c["id"]: c for c in json.loads((out / "claims.json").read_text())["claims"]}
    assert claims["workload.gpt2_small.kv_fraction"]["reproduced"] is True
    assert claims["hardware.throughput"]["ours"] is None


def test_a_bad_task_or_checkpoint_is_one_clear_line(workdir: Path, tmp_path: Path, capsys) -> None:
    rc = finetune.main([*_common(workdir), "--name", "nope", "--raw", str(REPO / "data" / "bible"),
                        "--out", str(tmp_path / "o"), "--checkpoints", str(tmp_path / "c"),
                        "--metrics", str(tmp_path / "m.json"), "--history", str(tmp_path / "h.csv")])  # fmt: skip
    assert rc == 2 and "'nope' is not a row" in capsys.readouterr().err
    from papers.spatten.models import checkpoint_folder

    with pytest.raises(Exception, match=r"not a BERT checkpoint folder.*Fix:"):
        checkpoint_folder(str(tmp_path))
