"""Stage ``once_for_all_ablation``: progressive shrinking (PS) against training every
sub-network jointly from the start (Fig. 7 of the paper), as a replicated experiment with its
mechanism measured.

**Arms.** Both supernets (the last PS phase and ``nops``) start from the same full network and
hold the same space; ``nops`` enables every elastic dimension at once instead of one after the
other, with the same distillation and exactly as many sub-network updates (the budget,
:mod:`common.ofa.shrinking`). A fixed grid of sub-networks is extracted from each: every
combination of depth D, expand ratio W and kernel size K in ``ablation`` (uniform over the
network), at the largest resolution, as in the paper's figure; each is recalibrated on the same
images and tested on the test set. The paper: PS is 3.5 points better on average, and at
(D=4, W=3, K=3) 74.8% vs 71.5% on ImageNet.

**Replicates** (``ablation.seeds``): each seed trains its own full network, PS chain and
baseline (the pipeline's supernets are the replicate of the profile's seed); the gains are
reported as mean and standard error over seeds. **Budget trend** (``ablation.trend_scales``):
the same replicate at other budgets. **OFA vs scratch** per replicate: the PS supernet's
MobileNetV3-pattern sub-network (no retraining) against that network trained alone from random
weights as long as the full network. **Interference** (``ablation.interference``, every seed at
scale 1): the largest sub-network after training alone (the full network trained on, with the
baseline's settings and steps, one sub-network per step) against the same network inside the
jointly trained supernet; and the kernel phase trained with its transformation matrices fixed
at identity, to measure what the matrices give the small kernels.

Every finished replicate is recorded (``<checkpoints>/replicates.jsonl``) and every phase
checkpoints, so a killed stage resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from common.config import to_dict
from common.fingerprint import data_digest
from common.imports import code_files
from common.io import write_json
from common.ofa.efficiency import arch_macs
from common.ofa.supernet import OFAMobileNetV3, subnet_spec
from common.ofa.training import ResizeInput, evaluate_arch
from common.paths import repo_root
from common.records import RecordLog
from common.stage import StageContext
from common.stats import mean_se
from common.train import evaluate_classifier
from papers.once_for_all.config import PS_PHASES, OFAProfile
from papers.once_for_all.mobilenetv3 import mbv3_arch
from papers.once_for_all.scratch import train_from_scratch
from papers.once_for_all.stage import (
    SUPERNET_FILE,
    Splits,
    load_splits,
    load_subnet,
    load_supernet,
    loader,
    ofa_stage,
    subset,
)
from papers.once_for_all.train import run_phase


def grid_name(d: int, w: int, k: int) -> str:
    return f"d{d}_w{w}_k{k}"


def run_name(scale: float, seed: int) -> str:
    return f"x{scale:g}_s{seed}"


def uniform_arch(space: Any, d: int, w: int, k: int, r: int) -> dict[str, Any]:
    n_blocks = space.num_stages * max(space.depths)
    return {"ks": [k] * n_blocks, "e": [w] * n_blocks, "d": [d] * space.num_stages, "r": r}


class Replicate:
    """Trains (or loads) one replicate's networks and measures them."""

    def __init__(
        self,
        cfg: OFAProfile,
        splits: Splits,
        test: Any,
        checkpoints: Path,
        scratch: Path | None = None,
    ) -> None:
        self.cfg, self.splits, self.test, self.checkpoints = cfg, splits, test, checkpoints
        self.scratch = scratch  # the scratch stage's networks (its mbv3_w1 is seed 0's baseline)

    def scratch_mbv3(self, scale: float, seed: int, space: Any, arch: dict[str, Any]) -> float:
        """Test accuracy of the MobileNetV3-pattern network trained alone from random weights as
        long as the full network: the scratch stage's ``mbv3_w1`` when it is that very training
        (the profile's seed and budget, the same schedule and architecture), else trained here."""
        cfg = self.cfg
        train = cfg.phase_train("full", scale=scale, seed=seed)
        saved = self.scratch / "mbv3_w1" / "model.safetensors" if self.scratch else None
        if saved is not None and saved.is_file():
            net, meta = load_subnet(saved)
            same = (
                meta.get("train_config") == to_dict(train)
                and meta["arch"]["spec"] == subnet_spec(space, arch).to_dict()
            )
            if same:
                return float(
                    evaluate_classifier(ResizeInput(net, int(arch["r"])), self.test)["accuracy"]
                )
        here = self.checkpoints / run_name(scale, seed)
        memory = torch.channels_last if cfg.data.channels_last else torch.contiguous_format
        _, wrapped, _ = train_from_scratch(
            space, arch, train, self.splits, here / "scratch_mbv3", name="mbv3_w1", memory=memory
        )
        return float(evaluate_classifier(wrapped, self.test)["accuracy"])

    def evaluate(self, net: OFAMobileNetV3, arch: dict[str, Any]) -> float:
        m = evaluate_arch(net, arch, calibration=self.splits.calibration, eval_loader=self.test)
        return float(m["accuracy"])

    def train_chain(
        self, scale: float, seed: int, *, keep: tuple[str, ...]
    ) -> dict[str, OFAMobileNetV3]:
        """full -> kernel -> depth1 -> depth2 -> expand1 -> expand2, and nops from full."""
        here = self.checkpoints / run_name(scale, seed)
        nets: dict[str, OFAMobileNetV3] = {}
        full, _ = self._phase("full", scale, seed, None, None, here)
        nets["full"] = full
        prev = full
        for p in PS_PHASES:
            prev, _ = self._phase(p, scale, seed, prev, full, here)
            if p in keep:
                nets[p] = prev
        nets["nops"], _ = self._phase("nops", scale, seed, full, full, here)
        return nets

    def _phase(self, phase, scale, seed, init, teacher, here, *, tag=None, **kw):
        """:func:`run_phase` for a replicate, checkpointing in ``here/<tag or phase>``."""
        t = time.perf_counter()
        net, result = run_phase(
            self.cfg,
            phase,
            splits=self.splits,
            init=init,
            teacher=teacher,
            checkpoints=here / (tag or phase),
            seed=seed,
            scale=scale,
            progress=False,
            **kw,
        )
        secs = sum(h["epoch_seconds"] for h in result.history)
        print(
            f"  {run_name(scale, seed)} {phase}: {secs:.0f}s (this run {time.perf_counter() - t:.0f}s)"
        )
        return net, result


def _on_grid(grid: list[dict[str, Any]], arch: dict[str, Any], key: str) -> float | None:
    """``key``'s accuracy of the uniform ``arch`` when the grid already measured it."""
    for g in grid:
        if (g["d"], g["w"], g["k"]) == (arch["d"][0], arch["e"][0], arch["ks"][0]):
            return g[key]
    return None


def measure_replicate(
    rep: Replicate,
    scale: float,
    seed: int,
    nets: dict[str, OFAMobileNetV3],
    *,
    interference: bool,
) -> dict[str, Any]:
    """The grid, OFA vs scratch, and (``interference``) the mechanism arms of one replicate."""
    ab = rep.cfg.ablation
    space = nets["ps"].config
    r = max(space.resolution_choices())
    out: dict[str, Any] = {"scale": scale, "seed": seed, "grid": []}
    for d, w, k in itertools.product(ab.depths, ab.expand_ratios, ab.kernel_sizes):
        arch = uniform_arch(space, d, w, k, r)
        row = {"name": grid_name(d, w, k), "d": d, "w": w, "k": k, "macs": arch_macs(space, arch)}
        row["ps"] = rep.evaluate(nets["ps"], arch)
        row["nops"] = rep.evaluate(nets["nops"], arch)
        row["gain"] = row["ps"] - row["nops"]
        out["grid"].append(row)
    n_blocks = space.num_stages * max(space.depths)
    top = uniform_arch(
        space, max(space.depths), max(space.expand_ratios), max(space.kernel_sizes), r
    )
    # how far training got: the full network (the teacher) on the test set
    out["full_top"] = rep.evaluate(nets["full"], top)
    gains = [g["gain"] for g in out["grid"]]
    out["mean_gain"] = sum(gains) / len(gains)
    ref = grid_name(*ab.reference)
    out["reference_gain"] = next((g["gain"] for g in out["grid"] if g["name"] == ref), None)
    # OFA (no retraining) vs the same architecture trained alone, as long as the full network
    mb = mbv3_arch(space)
    out["ofa_mbv3"] = rep.evaluate(nets["ps"], mb)
    out["scratch_mbv3"] = rep.scratch_mbv3(scale, seed, space, mb)
    out["ofa_minus_scratch"] = out["ofa_mbv3"] - out["scratch_mbv3"]
    here = rep.checkpoints / run_name(scale, seed)
    if interference:
        alone, _ = rep._phase(
            "nops",
            scale,
            seed,
            nets["full"],
            nets["full"],
            here,
            choices_of="full",
            passes=1,
            tag="alone",
        )
        inter = {
            "full_only": out["full_top"],
            "alone": rep.evaluate(alone, top),
            "joint_nops": _on_grid(out["grid"], top, "nops") or rep.evaluate(nets["nops"], top),
            "joint_ps": _on_grid(out["grid"], top, "ps") or rep.evaluate(nets["ps"], top),
        }
        inter["interference_nops"] = inter["alone"] - inter["joint_nops"]
        inter["interference_ps"] = inter["alone"] - inter["joint_ps"]
        plain, _ = rep._phase(
            "kernel",
            scale,
            seed,
            nets["full"],
            nets["full"],
            here,
            plain_kernels=True,
            tag="kernel_plain",
        )
        kernels: dict[str, float] = {}
        for k in sorted(space.kernel_sizes):
            arch = {**top, "ks": [k] * n_blocks}
            kernels[f"k{k}_transform"] = rep.evaluate(nets["kernel"], arch)
            kernels[f"k{k}_plain"] = rep.evaluate(plain, arch)
            kernels[f"k{k}_gain"] = kernels[f"k{k}_transform"] - kernels[f"k{k}_plain"]
        inter["kernel"] = kernels
        out["interference"] = inter
    return out


def summarise(records: list[dict[str, Any]], cfg: OFAProfile) -> dict[str, float]:
    """Metrics: per grid point and overall, mean and standard error over the scale-1 seeds;
    per budget, the mean gains; the interference arms."""
    m: dict[str, float] = {}
    main = [r for r in records if r["scale"] == 1.0]
    names = [g["name"] for g in main[0]["grid"]]
    for i, name in enumerate(names):
        for key in ("ps", "nops", "gain"):
            vals = [r["grid"][i][key] for r in main]
            mean, se = mean_se(vals)
            suffix = "gain" if key == "gain" else f"{key}_accuracy"
            m[f"ablation/{name}/{suffix}"] = mean
            m[f"ablation/{name}/{suffix}_se"] = se
    for key in (
        "mean_gain",
        "reference_gain",
        "ofa_minus_scratch",
        "ofa_mbv3",
        "scratch_mbv3",
        "full_top",
    ):
        vals = [r[key] for r in main if r.get(key) is not None]
        if vals:
            m[f"ablation/{key}"], m[f"ablation/{key}_se"] = mean_se(vals)
    ref = grid_name(*cfg.ablation.reference)
    if f"ablation/{ref}/gain" in m:
        m["ablation/reference_ps_accuracy"] = m[f"ablation/{ref}/ps_accuracy"]
        m["ablation/reference_nops_accuracy"] = m[f"ablation/{ref}/nops_accuracy"]
    grid_means = [m[f"ablation/{n}/gain"] for n in names]
    m["ablation/min_gain"] = min(grid_means)
    m["ablation/ps_better_count"] = float(sum(g > 0 for g in grid_means))
    m["ablation/grid_size"] = float(len(names))
    m["ablation/seeds"] = float(len(main))
    # a gain's size in standard errors (how sure the sign is)
    se = m.get("ablation/mean_gain_se", 0.0)
    if se > 0:
        m["ablation/mean_gain_z"] = m["ablation/mean_gain"] / se
    for scale in sorted({r["scale"] for r in records}):
        at = [r for r in records if r["scale"] == scale]
        tag = f"x{scale:g}"
        for key in ("mean_gain", "ofa_minus_scratch", "ofa_mbv3", "scratch_mbv3", "full_top"):
            if any(r.get(key) is None for r in at):
                continue
            mean, se_ = mean_se([r[key] for r in at])
            m[f"trend/{tag}/{key}"] = mean
            if len(at) > 1:
                m[f"trend/{tag}/{key}_se"] = se_
        m[f"trend/{tag}/seeds"] = float(len(at))
    inter = [r["interference"] for r in main if "interference" in r]
    if inter:
        for key in (
            "full_only",
            "alone",
            "joint_nops",
            "joint_ps",
            "interference_nops",
            "interference_ps",
        ):
            m[f"interference/{key}"], m[f"interference/{key}_se"] = mean_se([i[key] for i in inter])
        for key in inter[0]["kernel"]:
            m[f"interference/kernel/{key}"], m[f"interference/kernel/{key}_se"] = mean_se(
                [i["kernel"][key] for i in inter]
            )
    return m


def _code_digest() -> str:
    """The source of this stage's static import closure (the same in a ``python -m`` stage and
    in a test process that has imported more, unlike :func:`common.fingerprint.source_digest`)."""
    root = repo_root()
    h = hashlib.sha256()
    for rel in code_files("papers.once_for_all.ablation", root):
        h.update(rel.encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _fingerprint(cfg: OFAProfile, splits: Splits, args: Any) -> str:
    own = {
        name: hashlib.sha256((Path(getattr(args, name)) / SUPERNET_FILE).read_bytes()).hexdigest()
        for name in ("full", "kernel", "supernet", "nops")
    }
    scratch = Path(args.scratch) / "mbv3_w1" / "model.safetensors" if args.scratch else None
    if scratch is not None and scratch.is_file():
        own["scratch"] = hashlib.sha256(scratch.read_bytes()).hexdigest()
    return hashlib.sha256(
        json.dumps(
            {
                "config": [
                    str(getattr(cfg, k))
                    for k in ("space", "data", "phases", "budget", "ablation", "kd_ratio", "seed")
                ],
                "own": own,
                "test": data_digest(splits.test),
                # (the calibration images follow from the data config and seed)
                "code": _code_digest(),
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]


@ofa_stage(
    name="once_for_all_ablation",
    flags=[
        "full",
        "kernel",
        "supernet",
        "nops",
        "scratch",
        "data",
        "out",
        "checkpoints",
        "metrics",
    ],
    track=lambda ctx: ctx.config.ablation,
)
def main(ctx: StageContext) -> None:
    cfg, args = ctx.config, ctx.args
    ab = cfg.ablation
    splits = load_splits(cfg, args.data)
    splits = dataclasses.replace(splits, test=subset(splits.test, ab.test_images, cfg.seed))
    test = loader(splits.test, cfg.phases["full"].train.eval_batch_size)
    rep = Replicate(cfg, splits, test, Path(args.checkpoints), args.scratch)
    log = RecordLog(Path(args.checkpoints) / "replicates.jsonl", _fingerprint(cfg, splits, args))
    done = {(r["scale"], r["seed"]) for r in log.records}
    # replicates recorded by an earlier, interrupted run count with the time they took then
    resumed_seconds = float(sum(r["seconds"] for r in log.records))
    runs = ab.runs()
    for scale, seed in tqdm(runs, desc="PS ablation replicates", disable=None, leave=False):
        if (scale, seed) in done:
            continue
        t = time.perf_counter()
        if scale == 1.0 and seed == cfg.seed:  # the pipeline's own supernets
            nets = {
                "full": load_supernet(args.full)[0],
                "kernel": load_supernet(args.kernel)[0],
                "ps": load_supernet(args.supernet)[0],
                "nops": load_supernet(args.nops)[0],
            }
        else:
            chain = rep.train_chain(scale, seed, keep=("kernel", cfg.final_phase))
            nets = {**chain, "ps": chain[cfg.final_phase]}
        record = measure_replicate(
            rep, scale, seed, nets, interference=ab.interference and scale == 1.0
        )
        record["seconds"] = time.perf_counter() - t
        log.append(record)
        print(
            f"{run_name(scale, seed)}: mean PS gain {record['mean_gain']:+.2f} points, OFA minus "
            f"scratch {record['ofa_minus_scratch']:+.2f} ({record['seconds']:.0f}s)"
        )
    records = sorted(log.records, key=lambda r: (r["scale"], r["seed"]))
    metrics = summarise(records, cfg)
    metrics["ablation/resolution"] = float(max(cfg.space.resolution_choices()))
    metrics["ablation/replicate_seconds"] = float(sum(r["seconds"] for r in records))
    metrics["time/ablation"] = ctx.seconds() + resumed_seconds
    write_json(
        {
            "resolution": int(metrics["ablation/resolution"]),
            "test_images": len(splits.test),
            "lengths": {f"x{s:g}": cfg.lengths(s) for s in sorted({r["scale"] for r in records})},
            "replicates": records,
        },
        args.out,
    )
    ctx.finish(
        metrics,
        summary=f"PS ablation over {int(metrics['ablation/seeds'])} seeds: mean gain "
        f"{metrics['ablation/mean_gain']:+.2f} +/- {metrics['ablation/mean_gain_se']:.2f} points "
        f"(PS better on {int(metrics['ablation/ps_better_count'])} of "
        f"{int(metrics['ablation/grid_size'])}) -> {args.out}",
    )


if __name__ == "__main__":
    raise SystemExit(main())
