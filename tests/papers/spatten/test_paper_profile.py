"""SpAtten's ``paper`` profile on randomly initialised small models and tiny fake benchmarks in the
layouts users bring (GLUE's TSV folders, SQuAD v2.0 JSON, a GPT-2 folder, WikiText's raw files):
the profile's own rows and recipes, shrunk to a few steps on the CPU; one row fine-tuned under a
two-process ``torchrun``. And the GPT-2 port against ``transformers``."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from papers.spatten import decode, finetune, lm, prune, report
from papers.spatten.benchmarks import token_f1
from tests.params import REPO, repo_profiles, write_params

WORDS = [f"word{i}" for i in range(60)]
RUN_TASKS = ["base_sst2", "base_mnli", "base_cola", "base_squad2"]
RUN_LMS = ["gpt2_wikitext2"]


def _sentence(rng: random.Random, n: int = 8) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _fake_glue(root: Path, rng: random.Random) -> None:
    for split, n in (("train", 40), ("dev", 12)):
        sst = root / "SST-2"
        sst.mkdir(parents=True, exist_ok=True)
        rows = [f"{_sentence(rng)}\t{i % 2}" for i in range(n)]
        (sst / f"{split}.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
        cola = root / "CoLA"
        cola.mkdir(exist_ok=True)
        rows = [f"src\t{i % 2}\t\t{_sentence(rng)}" for i in range(n)]
        (cola / f"{split}.tsv").write_text("\n".join(rows) + "\n")
        mnli = root / "MNLI"
        mnli.mkdir(exist_ok=True)
        head = "index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tgold_label"
        labels = ("contradiction", "entailment", "neutral")
        rows = [f"{i}\t0\t0\tfic\t{_sentence(rng)}\t{_sentence(rng, 5)}\t{labels[i % 3]}"
                for i in range(n)]  # fmt: skip
        name = "train.tsv" if split == "train" else "dev_matched.tsv"
        (mnli / name).write_text(head + "\n" + "\n".join(rows) + "\n")


def _fake_squad(root: Path, rng: random.Random) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 12), ("dev", 4)):
        paragraphs = []
        for p in range(n):
            words = [rng.choice(WORDS) for _ in range(60)]  # longer than one window
            context = " ".join(words)
            qas = []
            for q in range(3):
                i = rng.randrange(0, 55)
                answer = " ".join(words[i : i + 2])
                start = len(" ".join(words[:i])) + (1 if i else 0)
                qas.append({"id": f"{split}{p}.{q}", "question": _sentence(rng, 4),
                            "answers": [{"text": answer, "answer_start": start}],
                            "is_impossible": False})  # fmt: skip
            qas.append({"id": f"{split}{p}.x", "question": _sentence(rng, 4), "answers": [],
                        "is_impossible": True})  # fmt: skip
            paragraphs.append({"context": context, "qas": qas})
        data = {"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]}
        (root / f"{split}-v2.0.json").write_text(json.dumps(data))


def _tiny_bert(folder: Path) -> None:
    from transformers import BertTokenizerFast

    from papers.spatten.bert import BertConfig, BertEncoder

    folder.mkdir(parents=True, exist_ok=True)
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *WORDS,
        *"abcdefghijklmnopqrstuvwxyz0123456789",
    ]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(str(folder))
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=4,
                     num_attention_heads=4, intermediate_size=64, max_position_embeddings=128)  # fmt: skip
    torch.manual_seed(0)
    from safetensors.torch import save_file

    save_file(BertEncoder(cfg).state_dict(), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({**asdict(cfg), "model_type": "bert"}))


def _tiny_gpt2(folder: Path, texts: list[str]) -> None:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=300, special_tokens=["<|endoftext|>"])
    tok = GPT2TokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>",
                            bos_token="<|endoftext|>", unk_token="<|endoftext|>")  # fmt: skip
    tok.save_pretrained(str(folder))
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=96, n_embd=32, n_layer=4, n_head=4,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)  # fmt: skip
    GPT2LMHeadModel(cfg).save_pretrained(str(folder))


def _paper_profile(data: Path) -> dict:
    paper = repo_profiles("spatten")["paper"]
    assert set(RUN_TASKS) <= set(paper["tasks"]) and set(RUN_LMS) <= set(paper["lms"])
    paper["encoder"] = {"checkpoint": str(data / "bert"), "max_length": 48}
    for name, t in list(paper["tasks"].items()):
        if name not in RUN_TASKS:
            paper["tasks"][name] = None
            continue
        t["root"] = str(data / t["root"])
        t["valid_subset"] = 8
        t["train"] = {**t["train"], "epochs": 1, "batch_size": 8, "device": "cpu"}
        if t.get("encoder"):
            t["encoder"] = {"checkpoint": str(data / "bert"), "max_length": 40}
            t["doc_stride"] = 16
    paper["prune"].update(token_keep=[0.6], head_keep=[0.75], value_keep=[0.5], bootstrap=20,
                          latency_sentences=2, latency_repeats=1)  # fmt: skip
    paper["prune"]["finetune"] = {**paper["prune"]["finetune"], "batch_size": 8, "device": "cpu"}
    for name, m in list(paper["lms"].items()):
        if name not in RUN_LMS:
            paper["lms"][name] = None
            continue
        m.update(checkpoint=str(data / "gpt2"), root=str(data / m["root"]), device="cpu",
                 block_tokens=32, max_tokens=256, prompt=20, generate=4, passages=2,
                 token_keep=[0.5], value_keep=[0.5], tau=[0.0, 0.05], kv_budgets=[12],
                 bootstrap=20)  # fmt: skip
        m["train"] = {**m["train"], "steps": 2, "device": "cpu"}
    return paper


@pytest.fixture(scope="module")
def paper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spatten_paper")
    data, rng = root / "data", random.Random(0)
    _fake_glue(data / "glue_data", rng)
    _fake_squad(data / "squad", rng)
    _tiny_bert(data / "bert")
    wiki = data / "wikitext-2-raw"
    wiki.mkdir(parents=True)
    for split, n in (("train", 60), ("valid", 10), ("test", 20)):
        (wiki / f"wiki.{split}.raw").write_text("\n".join(_sentence(rng, 12) for _ in range(n)))
    _tiny_gpt2(data / "gpt2", [_sentence(rng, 12) for _ in range(200)])
    write_params(root, {"spatten": "paper"}, sections={"spatten": {"paper": _paper_profile(data)}})
    return root


def _task_args(root: Path, stage: str, name: str) -> list[str]:
    args = ["--params", str(root / "params.yaml"), "--name", name, "--data", str(root / "unused"),
            "--raw", str(root / "unused"), "--out", str(root / "runs" / stage / name),
            "--checkpoints", str(root / "ck" / stage / name),
            "--metrics", str(root / "metrics" / f"{stage}_{name}.json")]  # fmt: skip
    if stage == "finetune":
        args += ["--history", str(root / "metrics" / f"finetune_{name}_history.csv")]
    else:
        args += ["--dense", str(root / "runs" / "finetune" / name)]
    return args


@pytest.mark.slow
def test_paper_profile_runs_glue_squad_and_gpt2(paper_dir: Path) -> None:
    root, m = paper_dir, paper_dir / "metrics"
    for name in [*RUN_TASKS, "large_rte"]:
        assert finetune.main(_task_args(root, "finetune", name)) == 0, name
        assert prune.main(_task_args(root, "prune", name)) == 0, name
    sst = json.loads((m / "prune_base_sst2.json").read_text())
    assert 0 <= sst["base_sst2/pruned_test_accuracy"] <= 100
    dense = json.loads((m / "finetune_base_mnli.json").read_text())
    assert dense["base_mnli/test_examples"] == 12 and dense["base_mnli/train_examples"] == 32
    squad = json.loads((m / "prune_base_squad2.json").read_text())
    assert 0 <= squad["base_squad2/pruned_test_accuracy"] <= 100
    assert squad["base_squad2/token_reduction"] >= 1.0
    assert json.loads((root / "runs" / "prune" / "large_rte" / "status.json").read_text())[
        "status"] == "not run"  # fmt: skip
    for name in [*RUN_LMS, "gpt2m_ptb"]:
        common = [
            "--params",
            str(root / "params.yaml"),
            "--name",
            name,
            "--data",
            str(root / "unused"),
        ]
        assert lm.main([*common, "--out", str(root / "runs" / "lm" / name),
                        "--checkpoints", str(root / "ck" / "lm" / name),
                        "--metrics", str(m / f"lm_{name}.json"),
                        "--history", str(m / f"lm_{name}_history.csv")]) == 0  # fmt: skip
        assert decode.main([*common, "--lm", str(root / "runs" / "lm" / name),
                            "--out", str(root / "runs" / "decode" / name),
                            "--metrics", str(m / f"decode_{name}.json")]) == 0  # fmt: skip
    d = json.loads((m / "decode_gpt2_wikitext2.json").read_text())
    assert d["gpt2_wikitext2/dense_ppl"] > 1 and 0 <= d["gpt2_wikitext2/requant_fraction"] <= 1
    out = root / "report"
    assert report.main(["--params", str(root / "params.yaml"),
                        "--claims", str(REPO / "papers" / "spatten" / "claims.yaml"),
                        "--metrics-dir", str(m), "--runs", str(root / "runs"), "--out", str(out)]) == 0  # fmt: skip
    derived = json.loads((m / "derived.json").read_text())
    assert derived["summary/decoder_kv_reduction_mean"] == d["gpt2_wikitext2/kv_reduction"]
    assert "BERT-base squad2 (F1)" in (out / "README.md").read_text()


@pytest.mark.slow
def test_paper_profile_fine_tunes_under_two_process_torchrun(paper_dir: Path) -> None:
    root = paper_dir
    args = _task_args(root, "finetune", "base_sst2")
    args = [a.replace("finetune/base_sst2", "ddp/base_sst2") for a in args]
    args[args.index("--metrics") + 1] = str(root / "ddp.json")
    proc = subprocess.run(
        [sys.executable, "-m", "common.launch", "--nproc", "2", "papers.spatten.finetune", *args],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 0 <= json.loads((root / "ddp.json").read_text())["base_sst2/dense_test_accuracy"] <= 100
    assert (root / "runs" / "ddp" / "base_sst2" / "model.safetensors").is_file()


def test_gpt2_port_equals_transformers_and_the_pruned_decoder(tmp_path: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    from papers.spatten.decoder import PrunedDecoder
    from papers.spatten.gpt2 import GPT2LM

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=97, n_positions=64, n_embd=32, n_layer=3, n_head=4))
    hf.eval().save_pretrained(str(tmp_path))
    ours = GPT2LM.from_pretrained(tmp_path).eval()
    x = torch.randint(0, 97, (2, 20))
    with torch.no_grad():
        assert torch.allclose(hf(x).logits, ours(x), atol=1e-5)
        full = torch.nn.functional.cross_entropy(
            ours(x[:1, :-1])[0, 9:], x[0, 10:], reduction="sum"
        )
    nll, n = PrunedDecoder(ours).score(x[0], 10)  # summarise 10 tokens, then one at a time
    assert n == 10 and abs(nll - float(full)) < 1e-4


def test_squad_scoring_is_the_official_one() -> None:
    assert token_f1("the Big cat.", "big cat") == 1.0
    assert token_f1("a big dog", "big cat") == 0.5


def test_missing_benchmark_or_checkpoint_is_one_clear_line(
    paper_dir: Path, tmp_path: Path, capsys
) -> None:
    params = json.loads(json.dumps(repo_profiles("spatten")["paper"]))
    params["tasks"] = {
        "base_sst2": {**params["tasks"]["base_sst2"], "root": str(tmp_path / "none")}
    }
    params["encoder"] = {"checkpoint": str(paper_dir / "data" / "bert"), "max_length": 32}
    params["lms"] = {}
    write_params(tmp_path, {"spatten": "paper"}, sections={"spatten": {"paper": params}})
    args = _task_args(tmp_path, "finetune", "base_sst2")
    assert finetune.main(args) != 0
    err = capsys.readouterr().err
    assert "SST-2/train.tsv is missing" in err and "Traceback" not in err
    from papers.spatten.gpt2 import GPT2LM

    with pytest.raises(Exception, match=r"not a GPT-2 checkpoint folder.*Fix:"):
        GPT2LM.from_pretrained(tmp_path)
