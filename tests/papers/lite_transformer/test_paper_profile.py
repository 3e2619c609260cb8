"""Lite Transformer's ``paper`` profile on tiny fake corpora in the layouts users bring (fairseq's
raw parallel files, WikiText's ``wiki.{split}.tokens``): the profile's own models and schedules,
shrunk to a few steps on the CPU; one model trained under a two-process ``torchrun``."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from papers.lite_transformer import report, tokenizer, train
from tests.params import REPO, repo_profiles, write_params

WORDS = [f"w{i}" for i in range(150)]
RUN = ["mt_transformer_1", "mt_lite_1", "lm_lite_2", "iwslt_lite_1", "cnndm_lite"]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _fake_corpora(root: Path) -> None:
    rng = random.Random(0)
    for folder, (src, tgt), long_src in [
        ("wmt14_en_fr", ("en", "fr"), False),
        ("iwslt14_de_en", ("de", "en"), False),
        ("cnn_dm", ("source", "target"), True),
    ]:
        (root / folder).mkdir(parents=True)
        for split, n in (("train", 120), ("valid", 8), ("test", 6)):
            a = [
                _sentence(rng, rng.randint(30, 60) if long_src else rng.randint(3, 9))
                for _ in range(n)
            ]
            b = [" ".join(reversed(s.split()[:8])) for s in a]
            (root / folder / f"{split}.{src}").write_text("".join(s + "\n" for s in a))
            (root / folder / f"{split}.{tgt}").write_text("".join(s + "\n" for s in b))
    wiki = root / "wikitext-103"
    wiki.mkdir()
    for split, n in (("train", 200), ("valid", 10), ("test", 10)):
        lines = [" = Heading = "] + [_sentence(rng, rng.randint(5, 25)) for _ in range(n)]
        (wiki / f"wiki.{split}.tokens").write_text("".join(f" {t} \n\n" for t in lines))


def _paper_profile(data: Path) -> dict:
    paper = repo_profiles("lite_transformer")["paper"]
    assert set(paper["models"]) >= set(RUN)
    for c in paper["corpora"].values():
        c["root"] = str(data / c["root"])  # absolute: the data root is not this folder
        c["tokenizer"] = {"vocab_size": 100, "model_type": "word" if c["kind"] == "text" else "bpe"}
        if c.get("block_tokens"):
            c["block_tokens"] = 24
        if c.get("truncate_source"):
            c["truncate_source"] = 40
    paper["tokenizer"] = {"vocab_size": 100, "model_type": "bpe"}
    for name, m in list(paper["models"].items()):
        if name not in RUN:
            paper["models"][name] = None
            continue
        m.update(layers=2, max_tokens=256, max_length=48, max_positions=64, update_freq=2)
        if m.get("dim"):
            m["dim"] = 16
        m.pop("budget", None)
        m["budget"] = 2.0e4
        m["train"] = {**m["train"], "steps": 3, "device": "cpu", "checkpoint_every": 0}
        m["train"]["schedule"] = {**m["train"]["schedule"], "warmup_steps": 1}
    paper["models"]["lm_lite_2"].update(dim=None, budget=2.0e4)
    paper["evaluation"].update(beam=2, test_subset=4, bootstrap=20)
    paper["analysis"].update(
        comparisons={"gain_1": ["mt_lite_1", "mt_transformer_1"]}, sentences=4, latency_sentences=1
    )
    return paper


@pytest.fixture(scope="module")
def paper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lite_paper")
    _fake_corpora(root / "corpora")
    write_params(
        root, {"lite_transformer": "paper"},
        sections={"lite_transformer": {"paper": _paper_profile(root / "corpora")}},
    )  # fmt: skip
    rc = tokenizer.main(["--params", str(root / "params.yaml"), "--data", str(root / "unused"),
                         "--out", str(root / "runs" / "tokenizer"),
                         "--metrics", str(root / "metrics" / "tokenizer.json")])  # fmt: skip
    assert rc == 0
    return root


def _args(root: Path, name: str) -> list[str]:
    return [
        "--params", str(root / "params.yaml"), "--name", name, "--data", str(root / "unused"),
        "--tokenizer", str(root / "runs" / "tokenizer"), "--out", str(root / "runs" / "train" / name),
        "--checkpoints", str(root / "ck" / name), "--metrics", str(root / "metrics" / f"train_{name}.json"),
        "--history", str(root / "metrics" / f"train_{name}_history.csv"),
    ]  # fmt: skip


@pytest.mark.slow
def test_paper_profile_trains_and_scores_every_kind_of_corpus(paper_dir: Path) -> None:
    root = paper_dir
    tok = json.loads((root / "metrics" / "tokenizer.json").read_text())
    for corpus in ("wmt14_en_fr", "wikitext103", "iwslt14_de_en", "cnn_dm"):
        assert (root / "runs" / "tokenizer" / corpus / "spm.model").is_file()
        assert tok[f"tokenizer/{corpus}/vocab_size"] > 0
    for name in [
        "mt_transformer_1",
        "mt_lite_1",
        "lm_lite_2",
        "iwslt_lite_1",
        "cnndm_lite",
        "de_lite_1",
    ]:
        assert train.main(_args(root, name)) == 0, name
    m = {n: json.loads((root / "metrics" / f"train_{n}.json").read_text()) for n in RUN}
    assert 0 <= m["mt_lite_1"]["mt_lite_1/bleu"] <= 100
    assert m["mt_lite_1"]["mt_lite_1/test_sentences"] == 4
    assert 0 <= m["cnndm_lite"]["cnndm_lite/rouge_l"] <= 100
    assert m["lm_lite_2"]["lm_lite_2/test_ppl"] > 1
    # The IWSLT model is the lightweight convolution without GLU (the reference config).
    iwslt = json.loads(
        (root / "runs" / "train" / "iwslt_lite_1" / "model.safetensors.json").read_text()
    )
    assert iwslt["arch"]["kwargs"]["conv"] == "lightweight" and not iwslt["arch"]["kwargs"]["glu"]
    # A null model of the profile is recorded as not run, with empty metrics.
    status = json.loads((root / "runs" / "train" / "de_lite_1" / "status.json").read_text())
    assert status["status"] == "not run"
    assert json.loads((root / "metrics" / "train_de_lite_1.json").read_text()) == {}
    # The report derives the absolute scores the paper's claims name.
    out = root / "report"
    assert report.main(["--params", str(root / "params.yaml"),
                        "--claims", str(REPO / "papers/lite_transformer/claims.yaml"),
                        "--metrics-dir", str(root / "metrics"), "--runs", str(root / "runs"),
                        "--out", str(out)]) == 0  # fmt: skip
    derived = json.loads((root / "metrics" / "derived.json").read_text())
    assert derived["wmt14_en_fr/mt_lite_1/bleu"] == m["mt_lite_1"]["mt_lite_1/bleu"]
    assert derived["cnn_dm/cnndm_lite/rouge_l"] == m["cnndm_lite"]["cnndm_lite/rouge_l"]
    assert derived["wikitext103/lm_lite_2/ppl"] == m["lm_lite_2"]["lm_lite_2/test_ppl"]
    text = (out / "README.md").read_text()
    assert "WMT'14 En-Fr" in text and "`de_lite_1`" in text  # corpora and skipped rows named


@pytest.mark.slow
def test_paper_profile_trains_under_two_process_torchrun(paper_dir: Path) -> None:
    root = paper_dir
    args = _args(root, "mt_lite_1")
    args = [a.replace("/train/mt_lite_1", "/ddp/mt_lite_1") for a in args]
    args[args.index("--checkpoints") + 1] = str(root / "ck_ddp")
    args[args.index("--metrics") + 1] = str(root / "ddp.json")
    proc = subprocess.run(
        [sys.executable, "-m", "common.launch", "--nproc", "2", "papers.lite_transformer.train", *args],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((root / "ddp.json").read_text())
    assert 0 <= metrics["mt_lite_1/bleu"] <= 100
    assert (root / "runs" / "ddp" / "mt_lite_1" / "model.safetensors").is_file()


def test_a_corpus_missing_its_files_is_one_clear_line(tmp_path: Path, capsys) -> None:
    paper = _paper_profile(tmp_path / "nothing")
    write_params(
        tmp_path, {"lite_transformer": "paper"}, sections={"lite_transformer": {"paper": paper}}
    )
    rc = tokenizer.main(["--params", str(tmp_path / "params.yaml"), "--data", str(tmp_path),
                         "--out", str(tmp_path / "tok"), "--metrics", str(tmp_path / "m.json")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "train.en is missing" in err and "Fix:" in err and "Traceback" not in err
