"""A finished run is never resumed after its code or its data changed (issue: stale resume).

Both reproductions run a real entry module (``python -m papers.stale_probe``) in a temporary copy
of ``common/``: one epoch of LeNet-300-100 with a checkpoint folder that survives between runs, as
DVC's ``persist: true`` folders do. Rerun unchanged, the finished run is resumed (nothing is
trained again); after ``nn.ReLU()`` becomes ``nn.Tanh()`` in ``common/models/lenet.py``, or after
the images change while the labels stay, the checkpoint is set aside and training starts over.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from common.paths import repo_root

PROBE = """
import sys
from pathlib import Path

import torch

from common.config import from_dict
from common.data.arrays import ArrayDataset
from safetensors.torch import save_file
from common.models.lenet import LeNet300100
from common.train import TrainConfig, Trainer

root = Path(sys.argv[1])
images = torch.load(root / "images.pt", weights_only=True)
labels = torch.arange(len(images)) % 10
data = ArrayDataset(images, labels, mean=[0.5], std=[0.25], num_classes=10)
config = from_dict(TrainConfig, {
    "epochs": 1, "batch_size": 16, "optimizer": {"name": "sgd", "lr": 0.1}, "seed": 3,
    "device": "cpu",
})
torch.manual_seed(0)
model = LeNet300100()
trainer = Trainer(model, config, train_data=data, checkpoint_dir=root / "ckpt", progress=False)
trainer.fit()
save_file(model.state_dict(), root / "weights.safetensors")
"""


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """A copy of ``common/`` with a probe stage in ``papers/``, and its images."""
    src = repo_root()
    shutil.copytree(
        src / "common", tmp_path / "common", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "__init__.py").write_text("")
    (tmp_path / "papers" / "stale_probe.py").write_text(PROBE)
    torch.save(
        torch.randint(
            0, 256, (64, 1, 28, 28), generator=torch.Generator().manual_seed(1), dtype=torch.uint8
        ),
        tmp_path / "images.pt",
    )
    return tmp_path


def run(tree: Path) -> tuple[str, dict[str, torch.Tensor]]:
    env = {**os.environ, "PYTHONPATH": str(tree), "EFFML_TRACKING": "off"}
    proc = subprocess.run(
        [sys.executable, "-m", "papers.stale_probe", str(tree)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, load_file(tree / "weights.safetensors")


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_unchanged_rerun_resumes_the_finished_run(tree: Path) -> None:
    _, first = run(tree)
    out, again = run(tree)
    assert "set aside" not in out
    assert "epoch 1/1" not in out  # nothing trained again: the finished run was resumed
    assert same(first, again)


def test_code_change_starts_over(tree: Path) -> None:
    _, relu = run(tree)
    lenet = tree / "common" / "models" / "lenet.py"
    text = lenet.read_text()
    assert "nn.ReLU()" in text
    lenet.write_text(text.replace("nn.ReLU()", "nn.Tanh()"))
    out, tanh = run(tree)
    assert "set aside" in out and "epoch 1/1" in out
    assert not same(relu, tanh)
    (tree / "ckpt" / "last.pt").unlink()
    _, fresh = run(tree)  # what a run from nothing gives with the new code
    assert same(tanh, fresh)


def test_data_change_with_the_same_labels_starts_over(tree: Path) -> None:
    _, before = run(tree)
    images = torch.load(tree / "images.pt", weights_only=True)
    torch.save(images // 2, tree / "images.pt")  # other contrast, same labels
    out, after = run(tree)
    assert "set aside" in out and "epoch 1/1" in out
    assert not same(before, after)
