"""A small training run of one task kind, for the kill-and-resume tests (run as a subprocess).

``python -m tests.common.train.task_worker <kind> <checkpoint dir> <result file> [--kill-at N]``
trains a tiny model of the given kind (classification, tokens, adversarial, or ``module:function``
for a paper's own task: a function ``(checkpoints, hooks) -> Trainer``) with step checkpoints, and writes every learned tensor (model, task state) plus the history to the result
file. ``--epochs N`` makes the run longer (for kills at random moments from outside).
``--kill-at N`` SIGKILLs the process itself right after optimizer step ``N``: a real kill,
at a moment of the test's choosing.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import torch
from torch import nn

from common.config import from_dict
from common.train import AdversarialConfig, TrainConfig, Trainer, TrainHook
from common.train.tasks import AdversarialTask, TokenTask

# Small enough for seconds, long enough for several step checkpoints inside each epoch.
CONFIG = {
    "epochs": 2,
    "batch_size": 16,
    "eval_batch_size": 32,
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "schedule": {"name": "cosine"},
    "seed": 11,
    "device": "cpu",
    "checkpoint_every": 3,
}


class KillAt(TrainHook):
    def __init__(self, step: int) -> None:
        self.step = step

    def after_step(self, trainer: Trainer) -> None:
        if trainer.step + 1 == self.step:  # trainer.step counts the step after the hooks
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)


class TinyLM(nn.Module):
    """Embedding, dropout, GRU, projection: a language model reading a TokenBatch."""

    def __init__(self, vocab: int = 24, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.drop = nn.Dropout(0.2)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.out = nn.Linear(dim, vocab)

    def forward(self, batch) -> torch.Tensor:
        h, _ = self.rnn(self.drop(self.embed(batch.inputs)))
        return self.out(h)


def classification(ckpt: Path, hooks: list[TrainHook]) -> Trainer:
    from common.data.fixtures import tiny_array_dataset

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(28 * 28, 10))
    return Trainer(
        model,
        from_dict(TrainConfig, CONFIG),
        train_data=tiny_array_dataset(80, seed=1),
        eval_data=tiny_array_dataset(32, seed=2),
        checkpoint_dir=ckpt,
        hooks=hooks,
        progress=False,
    )


def tokens(ckpt: Path, hooks: list[TrainHook]) -> Trainer:
    from common.data.tokens import TokenSequences

    g = torch.Generator().manual_seed(5)

    def corpus(n: int) -> TokenSequences:
        lengths = torch.randint(3, 12, (n,), generator=g).tolist()
        return TokenSequences([torch.randint(3, 24, (k,), generator=g) for k in lengths])

    torch.manual_seed(0)
    cfg = from_dict(TrainConfig, {**CONFIG, "label_smoothing": 0.1})
    return Trainer(
        TinyLM(),
        cfg,
        train_data=corpus(60),
        eval_data=corpus(20),
        checkpoint_dir=ckpt,
        task=TokenTask(max_tokens=64),
        hooks=hooks,
        progress=False,
    )


def adversarial(ckpt: Path, hooks: list[TrainHook]) -> Trainer:
    g = torch.Generator().manual_seed(3)
    centres = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0]])
    points = centres[torch.randint(0, 3, (96,), generator=g)] + 0.2 * torch.randn(
        96, 2, generator=g
    )
    torch.manual_seed(0)
    gen = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
    disc = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    cfg = from_dict(TrainConfig, {**CONFIG, "optimizer": {"name": "adam", "lr": 0.002}})
    adv = from_dict(AdversarialConfig, {"latent_dim": 4, "r1_every": 2, "ema_beta": 0.9})
    return Trainer(
        gen,
        cfg,
        train_data=torch.utils.data.TensorDataset(points[:96]),
        eval_data=torch.utils.data.TensorDataset(points[96:]),
        checkpoint_dir=ckpt,
        task=AdversarialTask(disc, adv),
        hooks=hooks,
        progress=False,
    )


KINDS = {"classification": classification, "tokens": tokens, "adversarial": adversarial}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", help=f"{', '.join(KINDS)} or module:function")
    parser.add_argument("checkpoints", type=Path)
    parser.add_argument("result", type=Path)
    parser.add_argument("--kill-at", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=CONFIG["epochs"], help="a longer run")
    args = parser.parse_args()
    CONFIG["epochs"] = args.epochs
    torch.set_num_threads(1)
    hooks: list[TrainHook] = [KillAt(args.kill_at)] if args.kill_at else []
    if ":" in args.kind:
        import importlib

        module, function = args.kind.split(":")
        build = getattr(importlib.import_module(module), function)
    else:
        build = KINDS[args.kind]
    trainer = build(args.checkpoints, hooks)
    result = trainer.fit()
    tensors = {f"model.{k}": v for k, v in trainer.model.state_dict().items()}
    for part, state in trainer.task.state_dict().items():
        tensors.update({f"{part}.{k}": v for k, v in state.items()})
    history = [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in result.history]
    torch.save({"tensors": tensors, "history": history, "steps": trainer.step}, args.result)


def run(kind: str, ckpt: Path, result: Path, kill_at: int = 0) -> int:
    """Run the worker as a subprocess; its return code (-9 when it killed itself)."""
    import subprocess

    repo = Path(__file__).resolve().parents[3]
    cmd = [sys.executable, "-m", "tests.common.train.task_worker", kind, str(ckpt), str(result)]
    if kill_at:
        cmd += ["--kill-at", str(kill_at)]
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600).returncode


def assert_kill_and_resume_is_bitwise(kind: str, tmp_path: Path) -> None:
    """Killed at step 5 (the step checkpoint of step 3 on disk, inside the first epoch), then
    again at step 8 of the resumed run (inside the second epoch, after the checkpoint of step 6),
    then run to the end: every learned tensor, the task's state and the history equal an
    uninterrupted run's."""
    clean = tmp_path / "clean.pt"
    assert run(kind, tmp_path / "ck_clean", clean) == 0
    killed = tmp_path / "killed.pt"
    assert run(kind, tmp_path / "ck", killed, kill_at=5) == -9
    state = torch.load(tmp_path / "ck" / "last.pt", weights_only=True)
    assert state["batch"] == 3 and state["step"] == 3, (state["batch"], state["step"])
    assert run(kind, tmp_path / "ck", killed, kill_at=8) == -9
    assert torch.load(tmp_path / "ck" / "last.pt", weights_only=True)["step"] == 6
    assert run(kind, tmp_path / "ck", killed) == 0
    a = torch.load(clean, weights_only=True)
    b = torch.load(killed, weights_only=True)
    assert a["steps"] == b["steps"]
    assert a["tensors"].keys() == b["tensors"].keys()
    different = [k for k in a["tensors"] if not torch.equal(a["tensors"][k], b["tensors"][k])]
    assert not different, different
    assert a["history"] == b["history"]


if __name__ == "__main__":
    main()
