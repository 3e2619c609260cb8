"""Lite Transformer's stages end to end at a reduced smoke profile, in a temporary folder: the
tokenizer, training (translation and language model), the analysis, the compression chain (sizes
equal to the bytes written), the report, resuming after a kill, and the translate command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from common.compress import read_compressed
from common.text.corpus import prepare_bible
from papers.lite_transformer import analysis, compress, report, tokenizer, train, translate
from tests.params import REPO, repo_profiles, write_params

MODELS = ["mt_transformer_1", "mt_lite_1", "lm_lite_1"]


def _profile(**train_overrides) -> dict:
    smoke = repo_profiles("lite_transformer")["smoke"]
    smoke["models"] = {k: smoke["models"][k] for k in MODELS}
    for m in smoke["models"].values():
        m["train"] = {**m["train"], **train_overrides}
    smoke["analysis"]["comparisons"] = {"gain_1": ["mt_lite_1", "mt_transformer_1"]}
    return smoke


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prepared corpus, params and a trained tokenizer, shared by the tests of this module."""
    root = tmp_path_factory.mktemp("lite")
    prepare_bible(REPO / "data" / "bible", root / "data", valid_pct=3.0, test_pct=4.0)
    params = write_params(
        root, profile="smoke", sections={"lite_transformer": {"smoke": _profile()}}
    )
    rc = tokenizer.main(["--params", str(params), "--data", str(root / "data"),
                         "--out", str(root / "runs" / "tokenizer"),
                         "--metrics", str(root / "metrics" / "tokenizer.json")])  # fmt: skip
    assert rc == 0
    return root


def _train_args(root: Path, params: Path, name: str, out: Path | None = None) -> list[str]:
    out = out or root
    return [
        "--params", str(params), "--name", name, "--data", str(root / "data"),
        "--tokenizer", str(root / "runs" / "tokenizer"), "--out", str(out / "runs" / "train" / name),
        "--checkpoints", str(out / "ck" / name), "--metrics", str(out / "metrics" / f"train_{name}.json"),
        "--history", str(out / "metrics" / f"train_{name}_history.csv"),
    ]  # fmt: skip


def test_stages_end_to_end(workdir: Path, capsys) -> None:
    root, params = workdir, workdir / "params.yaml"
    for name in MODELS:
        assert train.main(_train_args(root, params, name)) == 0
    m = json.loads((root / "metrics" / "train_mt_lite_1.json").read_text())
    assert 0 <= m["mt_lite_1/bleu"] <= 100 and m["mt_lite_1/bleu"] == pytest.approx(
        m["mt_lite_1/sacrebleu"]
    )
    assert m["mt_lite_1/test_sentences"] == 6
    assert (
        len((root / "runs" / "train" / "mt_lite_1" / "hypotheses.txt").read_text().splitlines())
        == 6
    )
    lm = json.loads((root / "metrics" / "train_lm_lite_1.json").read_text())
    assert lm["lm_lite_1/test_ppl"] > 1

    rc = analysis.main(["--params", str(params), "--data", str(root / "data"),
                        "--tokenizer", str(root / "runs" / "tokenizer"), "--runs", str(root / "runs" / "train"),
                        "--out", str(root / "runs" / "analysis"),
                        "--metrics", str(root / "metrics" / "analysis.json")])  # fmt: skip
    assert rc == 0
    a = json.loads((root / "metrics" / "analysis.json").read_text())
    assert a["mt_lite_1/attention_distance"] > 0 and a["mt_transformer_1/latency_ms"] > 0
    assert 0 < a["mt_transformer_1/ffn_share"] < 1
    assert a["compare/gain_1/difference"] == pytest.approx(
        m["mt_lite_1/bleu"]
        - json.loads((root / "metrics" / "train_mt_transformer_1.json").read_text())[
            "mt_transformer_1/bleu"
        ]
    )

    rc = compress.main(["--params", str(params), "--name", "mt_lite_1",
                        "--baseline", str(root / "runs" / "train" / "mt_lite_1"), "--data", str(root / "data"),
                        "--tokenizer", str(root / "runs" / "tokenizer"), "--out", str(root / "runs" / "compress"),
                        "--checkpoints", str(root / "ck" / "compress"),
                        "--metrics", str(root / "metrics" / "compress.json")])  # fmt: skip
    assert rc == 0
    c = json.loads((root / "metrics" / "compress.json").read_text())
    folder = root / "runs" / "compress"
    # every reported size is the size of the file written, and each file decodes to a model
    for step, file in [("baseline", "baseline"), ("quant", "quant"), ("quant_prune", "quant_prune"),
                       ("quant_prune_huffman", "quant_prune_huffman")]:  # fmt: skip
        assert c[f"compress/{step}_bytes"] == (folder / f"{file}.dcmp").stat().st_size
    quant, info = read_compressed(folder / "quant.dcmp")
    assert info["arch"]["name"] == "transformer_seq2seq"
    assert len(set(quant.encoder[0].ffn.fc1.weight.flatten().tolist())) <= 256
    pruned, _ = read_compressed(folder / "quant_prune.dcmp")
    assert c["compress/density"] < 1
    assert (
        sum(int((p == 0).sum()) for n, p in pruned.named_parameters() if n.endswith("weight")) > 0
    )
    # (at this size the 256-entry codebooks outweigh the weights, so no order of sizes is asserted)

    out = root / "report"
    rc = report.main(["--params", str(params), "--claims", str(Path(train.__file__).with_name("claims.yaml")),
                      "--metrics-dir", str(root / "metrics"), "--runs", str(root / "runs"),
                      "--out", str(out)])  # fmt: skip
    assert rc == 0
    text = (out / "README.md").read_text()
    assert "mt_lite_1" in text and (out / "figures" / "tradeoff.png").is_file()
    claims = json.loads((out / "claims.json").read_text())
    assert claims["paper"] == "lite_transformer"
    derived = json.loads((root / "metrics" / "derived.json").read_text())
    assert derived["compression/quant_ratio"] == pytest.approx(
        c["compress/baseline_bytes"] / c["compress/quant_bytes"]
    )

    # the translate command on the trained model
    rc = translate.main(["--runs", str(root / "runs"), "--model", "mt_lite_1", "--beam", "2",
                         "In the beginning God created the heavens and the earth."])  # fmt: skip
    printed = capsys.readouterr().out
    assert rc == 0 and "ms)" in printed
    assert translate.main(["--runs", str(root / "runs"), "--model", "lm_lite_1", "x"]) == 2
    assert "not a translation model" in capsys.readouterr().err
    assert translate.main(["--runs", str(root / "nowhere"), "x"]) == 2
    assert "dvc repro" in capsys.readouterr().err


def test_a_bad_model_name_is_one_clear_line(workdir: Path, capsys) -> None:
    rc = train.main(_train_args(workdir, workdir / "params.yaml", "nope", workdir / "bad"))
    assert rc == 2
    assert "has no 'nope'; it has mt_transformer_1" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_training_resumes_to_the_same_weights(workdir: Path, tmp_path: Path) -> None:
    """SIGKILL the real stage process mid-run; re-running it ends with exactly the weights of an
    uninterrupted run."""
    smoke = _profile(steps=None, epochs=3, checkpoint_every=0)
    params = write_params(
        tmp_path / "p", profile="smoke", sections={"lite_transformer": {"smoke": smoke}}
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "papers.lite_transformer.train"]
    ref = subprocess.run(cmd + _train_args(workdir, params, "mt_lite_1", tmp_path / "ref"),
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert ref.returncode == 0, ref.stderr[-2000:]
    args = _train_args(workdir, params, "mt_lite_1", tmp_path / "run")
    proc = subprocess.Popen(cmd + args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    seen = []
    for line in proc.stdout:  # type: ignore[union-attr]
        seen.append(line)
        if line.startswith("epoch 1/3"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    resumed = subprocess.run(
        cmd + args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout and "epoch 1/3" not in resumed.stdout
    a = load_file(tmp_path / "ref" / "runs" / "train" / "mt_lite_1" / "model.safetensors")
    b = load_file(tmp_path / "run" / "runs" / "train" / "mt_lite_1" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
