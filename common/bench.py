"""``make bench``: the shared training loop beside a bare PyTorch loop, for each kind of task.

For each task kind the shared :class:`~common.train.Trainer` and a textbook PyTorch loop train the
same model from the same weights on the same batches with the same optimizer and losses, in the
same process:

* ``classification``: LeNet-5 on MNIST (cross-entropy, SGD with momentum);
* ``tokens``: a two-layer Transformer language model on token sequences batched by token count
  (label-smoothed cross-entropy over the non-padding tokens, Adam);
* ``adversarial``: an MLP generator and discriminator on MNIST (non-saturating loss, lazy R1
  every 16 steps, an EMA generator, two Adam optimizers).

The shared loop runs as the stages use it (checkpoint at the end of the epoch, running sums for
the epoch record, hooks, schedule), minus evaluation, which the bare loop does not do either.
Runs alternate (bare, shared, shared, bare, ...) so that machine noise hits both alike, each run
lasts seconds, and the verdict is the median of the per-pair ratios shared / bare; the spread of
the ratios is printed so a reader can see whether the answer could flip. Overhead must stay at or
below 10% for every kind.

``python -m common.bench [--kinds classification tokens adversarial] [--repeats 7] [--scale 1.0]``

``python -m common.bench --startup [--tree PATH]`` measures instead what every stage process pays
before its first line of work, stage module by stage module (of the pipeline in this checkout),
in a fresh interpreter each time: from the process start to the module imported (interpreter,
imports), then opening the stage's MLflow run as the stage does (``common.tracking.stage_run``),
then the first optimizer step (which imports ``torch._dynamo``). ``--tree`` runs the same probe
against another checkout (e.g. a ``git worktree`` of an older commit), for a before/after.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from common.config import from_dict
from common.data.loader import build_loader
from common.train import AdversarialConfig, TrainConfig, Trainer
from common.train.optim import build_optimizer
from common.train.tasks import AdversarialTask, TokenTask


def _config(**train: Any) -> TrainConfig:
    return from_dict(
        TrainConfig,
        {"epochs": 1, "schedule": {"name": "constant"}, "device": "cpu", "seed": 0, **train},
    )


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------------- classification
class Classification:
    name = "classification"

    def __init__(self, scale: float) -> None:
        from common.data import build_dataset
        from common.models import create_model

        self.create = lambda: create_model("lenet5")
        self.data = build_dataset("mnist", "train", subset=int(25600 * scale), seed=0)
        self.cfg = _config(
            batch_size=128,
            optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
        )
        self.unit = f"LeNet-5, {len(self.data):,} MNIST images, batch 128"

    def bare(self) -> float:
        torch.manual_seed(0)
        model = self.create()
        opt = build_optimizer(model.parameters(), self.cfg.optimizer)
        loader = build_loader(self.data, batch_size=self.cfg.batch_size, shuffle=True, seed=0)
        loss_fn = nn.CrossEntropyLoss()

        def run() -> None:
            model.train()
            for x, y in loader:
                opt.zero_grad(set_to_none=True)
                loss_fn(model(x), y).backward()
                opt.step()

        return _timed(run)

    def shared(self, ckpt: Path) -> float:
        torch.manual_seed(0)
        trainer = Trainer(
            self.create(),
            self.cfg,
            train_data=self.data,
            checkpoint_dir=ckpt,
            progress=False,
            log=lambda _m: None,
        )
        return _timed(trainer.fit)


# ---------------------------------------------------------------------- tokens
class _TransformerLM(nn.Module):
    def __init__(self, vocab: int = 1000, dim: int = 128) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        layer = nn.TransformerEncoderLayer(dim, 4, 4 * dim, dropout=0.1, batch_first=True)
        self.body = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.out = nn.Linear(dim, vocab)

    def forward(self, batch: Any) -> torch.Tensor:
        t = batch.inputs.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool).triu(1)  # True: may not attend
        h = self.body(
            self.embed(batch.inputs), mask=causal, src_key_padding_mask=batch.target_padding_mask
        )
        return self.out(h)


class Tokens:
    name = "tokens"

    def __init__(self, scale: float) -> None:
        from common.data.tokens import TokenSequences

        g = torch.Generator().manual_seed(0)
        n = int(3000 * scale)
        lengths = torch.randint(8, 64, (n,), generator=g).tolist()
        self.data = TokenSequences([torch.randint(3, 1000, (k,), generator=g) for k in lengths])
        self.max_tokens = 2048
        self.cfg = _config(optimizer={"name": "adam", "lr": 5e-4}, label_smoothing=0.1)
        self.unit = (
            f"2-layer Transformer LM, {sum(lengths):,} tokens, {self.max_tokens} tokens a batch"
        )

    def bare(self) -> float:
        from common.data.tokens import build_token_loader

        torch.manual_seed(0)
        model = _TransformerLM()
        opt = build_optimizer(model.parameters(), self.cfg.optimizer)
        loader = build_token_loader(self.data, max_tokens=self.max_tokens, shuffle=True, seed=0)

        def run() -> None:
            model.train()
            for batch in loader:
                opt.zero_grad(set_to_none=True)
                logits = model(batch)
                loss = F.cross_entropy(
                    logits.flatten(0, 1),
                    batch.targets.flatten(),
                    ignore_index=batch.pad_id,
                    label_smoothing=0.1,
                    reduction="sum",
                )
                (loss / batch.ntokens).backward()
                opt.step()

        return _timed(run)

    def shared(self, ckpt: Path) -> float:
        torch.manual_seed(0)
        trainer = Trainer(
            _TransformerLM(),
            self.cfg,
            train_data=self.data,
            checkpoint_dir=ckpt,
            task=TokenTask(max_tokens=self.max_tokens),
            progress=False,
            log=lambda _m: None,
        )
        return _timed(trainer.fit)


# ---------------------------------------------------------------------- adversarial
def _mlp(sizes: list[int], last: nn.Module | None = None) -> nn.Module:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
    layers = layers[:-1] + ([last] if last is not None else [])
    return nn.Sequential(*layers)


class Adversarial:
    name = "adversarial"

    def __init__(self, scale: float) -> None:
        from common.data import build_dataset

        images = build_dataset("mnist", "train", subset=int(25600 * scale), seed=0).images
        self.data = torch.utils.data.TensorDataset(images.flatten(1).float() / 127.5 - 1)
        self.cfg = _config(
            batch_size=64, optimizer={"name": "adam", "lr": 2e-4, "betas": [0.5, 0.99]}
        )
        self.adv = from_dict(
            AdversarialConfig, {"latent_dim": 64, "r1_every": 16, "ema_beta": 0.99}
        )
        self.unit = f"MLP GAN, {len(self.data):,} MNIST images, batch 64, R1 every 16, EMA"

    def models(self) -> tuple[nn.Module, nn.Module]:
        torch.manual_seed(0)
        return _mlp([64, 256, 256, 784], nn.Tanh()), _mlp([784, 256, 256, 1])

    def bare(self) -> float:
        import copy

        gen, disc = self.models()
        ema = copy.deepcopy(gen)
        g_opt = build_optimizer(gen.parameters(), self.cfg.optimizer)
        d_opt = build_optimizer(disc.parameters(), self.adv.d_optimizer)
        loader = build_loader(self.data, batch_size=self.cfg.batch_size, shuffle=True, seed=0)
        cfg = self.adv

        def run() -> None:
            for step, (real,) in enumerate(loader):
                n = real.shape[0]
                gen.requires_grad_(False)
                disc.requires_grad_(True)
                with torch.no_grad():
                    fake = gen(torch.randn(n, cfg.latent_dim))
                d_loss = F.softplus(disc(fake)).mean() + F.softplus(-disc(real)).mean()
                d_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                d_opt.step()
                if step % cfg.r1_every == 0:
                    x = real.detach().requires_grad_(True)
                    out = disc(x)
                    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
                    r1 = grad.pow(2).flatten(1).sum(1).mean()
                    d_opt.zero_grad(set_to_none=True)
                    (cfg.r1_gamma / 2 * r1 * cfg.r1_every + 0 * out.mean()).backward()
                    d_opt.step()
                gen.requires_grad_(True)
                disc.requires_grad_(False)
                g_loss = F.softplus(-disc(gen(torch.randn(n, cfg.latent_dim)))).mean()
                g_opt.zero_grad(set_to_none=True)
                g_loss.backward()
                g_opt.step()
                disc.requires_grad_(True)
                with torch.no_grad():
                    for pe, p in zip(ema.parameters(), gen.parameters(), strict=True):
                        pe.lerp_(p, 1 - cfg.ema_beta)

        return _timed(run)

    def shared(self, ckpt: Path) -> float:
        gen, disc = self.models()
        trainer = Trainer(
            gen,
            self.cfg,
            train_data=self.data,
            checkpoint_dir=ckpt,
            task=AdversarialTask(disc, self.adv),
            progress=False,
            log=lambda _m: None,
        )
        return _timed(trainer.fit)


KINDS = {k.name: k for k in (Classification, Tokens, Adversarial)}


def bench(kind: Any, repeats: int, ckpt: Path) -> dict[str, Any]:
    """Alternating bare/shared runs (after one warm-up of each); ratios per pair."""

    def shared() -> float:
        for f in ckpt.glob("*"):
            f.unlink()
        return kind.shared(ckpt)

    kind.bare()
    shared()
    bare_s, shared_s = [], []
    for i in range(repeats):
        pair = (kind.bare, shared) if i % 2 == 0 else (shared, kind.bare)
        first, second = pair[0](), pair[1]()
        b, s = (first, second) if i % 2 == 0 else (second, first)
        bare_s.append(b)
        shared_s.append(s)
    ratios = sorted(s / b for s, b in zip(shared_s, bare_s, strict=True))
    return {"bare": bare_s, "shared": shared_s, "ratios": ratios}


# One stage's start-up, measured in a fresh interpreter (the same probe for any checkout).
STARTUP_PROBE = r"""
import json, os, sys, time
def started():
    with open("/proc/self/stat") as fh:
        ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as fh:
        boot = next(int(l.split()[1]) for l in fh if l.startswith("btime "))
    return boot + ticks / os.sysconf("SC_CLK_TCK")
t0 = started()
import importlib
importlib.import_module(sys.argv[1])
t1 = time.time()
from common.tracking import stage_run
with stage_run(experiment="startup_probe", stage=sys.argv[1]):
    t2 = time.time()
t3 = time.time()
import torch
m = torch.nn.Linear(2, 2)
opt = torch.optim.SGD(m.parameters(), lr=0.1)
m(torch.zeros(1, 2)).sum().backward()
opt.step()
t4 = time.time()
print(json.dumps({"imports": t1 - t0, "tracking": t2 - t1, "tracking_close": t3 - t2, "optimizer": t4 - t3}))
"""


def startup(tree: Path, repeats: int) -> int:
    """Print the median start-up components of every stage module of this checkout's pipeline,
    run against ``tree``'s code."""
    import json
    import os
    import subprocess

    from common.pipeline import stages

    modules = sorted({s.module for s in stages() if s.module})
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tempfile.mkdtemp()) / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE, "common"],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
    )  # creates the database once, as a repository's first run does
    print(f"start-up per stage module, {tree}: median of {repeats} fresh interpreters (s)")
    print(
        "before work = imports + opening the MLflow run (what a stage waits for before its first "
        "line);\nrecorder = a companion process finishing the run's set-up meanwhile (overlaps "
        "the stage's work); 1st step = the first optimizer step (imports torch._dynamo)"
    )
    print(
        f"{'module':<42}{'imports':>9}{'MLflow':>8}{'before work':>13}{'recorder':>10}"
        f"{'1st step':>10}"
    )
    before = []
    for module in modules:
        runs = []
        for _ in range(repeats):
            out = subprocess.run(
                [sys.executable, "-c", STARTUP_PROBE, module],
                cwd=tree,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        before.append(med["imports"] + med["tracking"])
        recorder = med["tracking_close"] if med["tracking_close"] > 0.05 else 0.0
        print(
            f"{module:<42}{med['imports']:>9.2f}{med['tracking']:>8.2f}{before[-1]:>13.2f}"
            f"{recorder:>10.2f}{med['optimizer']:>10.2f}"
        )
    print(f"{'median over modules, before work':<42}{'':>17}{statistics.median(before):>13.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    parser.add_argument("--repeats", type=int, default=9, help="bare/shared pairs per kind")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="data per run (1.0: a few seconds)"
    )
    parser.add_argument("--max-overhead", type=float, default=0.10)
    parser.add_argument("--startup", action="store_true", help="measure stage start-up instead")
    parser.add_argument("--tree", type=Path, default=None, help="with --startup: another checkout")
    args = parser.parse_args(argv)
    if args.startup:
        from common.paths import repo_root

        return startup((args.tree or repo_root()).resolve(), max(args.repeats, 1))
    print(
        f"{torch.get_num_threads()} CPU threads; {args.repeats} alternating pairs per kind; "
        "overhead = median over pairs of shared/bare - 1"
    )
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.kinds:
            kind = KINDS[name](args.scale)
            r = bench(kind, args.repeats, Path(tmp))
            overhead = statistics.median(r["ratios"]) - 1
            lo, hi = r["ratios"][0] - 1, r["ratios"][-1] - 1
            print(f"\n{name}: {kind.unit}")
            print(
                f"  bare   median {statistics.median(r['bare']):.3f} s  runs "
                + " ".join(f"{t:.2f}" for t in r["bare"])
            )
            print(
                f"  shared median {statistics.median(r['shared']):.3f} s  runs "
                + " ".join(f"{t:.2f}" for t in r["shared"])
            )
            print(
                f"  overhead {100 * overhead:+.1f}% (pairs from {100 * lo:+.1f}% to {100 * hi:+.1f}%; "
                f"limit {100 * args.max_overhead:.0f}%)"
            )
            if overhead > args.max_overhead:
                failed.append(name)
    if failed:
        print(f"FAIL: the shared loop is over the limit for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
