"""Stage ``fast_lidarnet_drive``: closed-loop driving on the unseen test maps, with sensor failures.

The car is driven by a trained network (:class:`papers.fast_lidarnet.fusion.FusionPolicy`) in
the simulated world (:func:`common.driving.drive`): every control step it gets a fresh LiDAR scan
(corrupted during failure episodes) and the noisy GPS map raster, and its command moves the
kinematic bicycle. A **takeover** is counted whenever the car leaves its lane (the safety driver
puts it back on the lane centre and the policy's memory is cleared), and reported per km driven.

* the fused model (``drive.fused_model``) drives with every failure kind (``drive.failures``,
  ``none`` included) and every fusion mode (``drive.fusions``); the runs of one failure kind share
  their seeds, so the modes meet the same failure episodes;
* every other model drives with ``drive.baseline_failures`` and no fusion.

Also computed here: the uncertainty thresholds of the fall-back (the ``fusion.quantile`` of the
validation frames' uncertainty, per predicted step); how well the current frame's uncertainty
flags corrupted frames (AUROC per failure kind, from the evidential runs; frame drops are left
out: a re-delivered scan is the previous, clean scan, which no input-based uncertainty can flag,
and the fusion detects it as a repeated scan instead); the open-loop uncertainty-vs-error data
of the test frames; a scene for the report's picture. Each run is a resumable unit
(``--checkpoints``); the runs are spread over the CPU cores (:func:`common.parallel.process_map`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from common.config import to_dict
from common.seed import derive_seed
from common.stage import STAGE_FLAGS, StageContext, stage
from papers.fast_lidarnet.config import FastLidarnetProfile

FLAGS = {
    **STAGE_FLAGS,
    "models": {
        "type": Path,
        "required": True,
        "help": "runs/fast_lidarnet/train (one folder per model)",
    },
}
UNCERTAINTIES = ("epistemic", "aleatoric")


class Recorder:
    """Wraps a policy to keep, every step, what it predicted and whether the frame was failed."""

    def __init__(self, policy) -> None:
        self.policy, self.rows = policy, []

    def reset(self) -> None:
        self.policy.reset()

    def __call__(self, obs) -> float:
        command = self.policy(obs)
        self.rows.append({**self.policy.last, "failed": float(obs.failed), "step": float(obs.step)})
        return command


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` separating ``positive`` (ties count half)."""
    from scipy.stats import rankdata

    pos = positive.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def paired_ratio_interval(
    pairs: np.ndarray, *, seed: int, draws: int = 2000, q: tuple[float, float] = (5.0, 95.0)
) -> tuple[float, float]:
    """Percentile bootstrap of ``sum(a) / sum(b)`` over paired counts ``pairs`` (P, 2), resampling
    the pairs; a resample whose ``b`` sums to zero counts as an infinite ratio (or 1 when ``a``
    is zero too)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(pairs), size=(draws, len(pairs)))
    a, b = pairs[idx, 0].sum(1), pairs[idx, 1].sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b > 0, a / np.maximum(b, 1e-12), np.where(a > 0, np.inf, 1.0))
    lo, hi = np.percentile(ratio, q)
    return float(lo), float(hi)


def thresholds(model: torch.nn.Module, val, kind: str, quantile: float) -> np.ndarray:
    """Per predicted step, the ``quantile`` of the validation frames' uncertainty ``kind``."""
    from common.data.loader import build_loader
    from papers.fast_lidarnet.task import predict

    out = predict(model, build_loader(val, batch_size=64, shuffle=False))
    aleatoric = out["beta"] / (out["alpha"] - 1)
    var = {"epistemic": aleatoric / out["nu"], "aleatoric": aleatoric,
           "total": aleatoric / out["nu"] + aleatoric}[kind]  # fmt: skip
    return np.quantile(var.double().numpy(), quantile, axis=0)


def _runs(profile: FastLidarnetProfile) -> list[tuple[str, str, str]]:
    d = profile.drive
    runs = [(d.fused_model, f, m) for f in d.failures for m in d.fusions]
    runs += [
        (n, f, "none") for n in profile.models if n != d.fused_model for f in d.baseline_failures
    ]
    return runs


@stage(
    section="fast_lidarnet",
    name="fast_lidarnet_drive",
    config=FastLidarnetProfile,
    flags=["models", "data", "out", "checkpoints", "metrics"],
    catalogue=FLAGS,
    track=lambda ctx: {"drive": ctx.config.drive, "fusion": ctx.config.fusion},
)
def main(ctx: StageContext) -> None:
    """Drive every model closed-loop on the test maps; takeovers per km; uncertainty AUROC."""
    from tqdm.auto import tqdm

    from common.driving import build_world
    from common.io import atomic_write_bytes
    from common.parallel import process_map
    from papers.fast_lidarnet.data import DriveFrames, read_meta
    from papers.fast_lidarnet.simulate import code_digest, map_seed
    from papers.fast_lidarnet.task import control_metrics, predict
    from papers.fast_lidarnet.train import load_network

    profile, args = ctx.config, ctx.args
    data, dcfg, fcfg = profile.data, profile.drive, profile.fusion
    read_meta(args.data)
    out, ck = Path(args.out), Path(args.checkpoints)
    out.mkdir(parents=True, exist_ok=True)
    if data.source != "simulated":
        # Closed-loop driving needs a world to drive in; recorded drives have none here (the
        # networks trained on them are scored open-loop by the training stage).
        (out / "skipped.txt").write_text("closed-loop driving needs data.source: simulated\n")
        ctx.finish({"drive/skipped": 1.0, "time/drive": ctx.seconds()},
                   summary="recorded drives: no closed-loop world, skipped")  # fmt: skip
        return
    models = {n: load_network(Path(args.models) / n / "model.safetensors") for n in profile.models}
    val = DriveFrames.load(args.data, "val")
    limits = {n: thresholds(m, val, fcfg.uncertainty, fcfg.quantile) for n, m in models.items()}
    digest = hashlib.sha256(
        (json.dumps([to_dict(profile.drive), to_dict(profile.fusion), to_dict(data)], sort_keys=True)
         + code_digest("papers.fast_lidarnet.drive")
         + "".join(hashlib.sha256((Path(args.models) / n / "model.safetensors").read_bytes())
                   .hexdigest() for n in profile.models)).encode()
    ).hexdigest()[:16]  # fmt: skip
    for old in ck.glob("*.json"):
        if not old.name.startswith(digest):
            old.unlink()
    parts: dict[tuple[str, str, str, int], dict] = {}
    jobs = [(*run, i) for run in _runs(profile) for i in range(data.maps["test"])]
    todo = []
    for job in jobs:
        part = ck / (f"{digest}_" + "_".join(map(str, job)) + ".json")
        if part.is_file():
            parts[job] = json.loads(part.read_text())
        else:
            todo.append(job)
    # The runs are independent: spread over the CPU cores (one thread each, so the numbers do not
    # depend on how many processes ran them); each run is saved as it finishes.
    paths = {n: Path(args.models) / n / "model.safetensors" for n in profile.models}
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="drives", unit="drive",
               mininterval=2.0)  # fmt: skip
    for k, record in process_map(_drive_job, todo, initializer=_init_worker,
                                 initargs=(profile, paths, limits)):  # fmt: skip
        job = todo[k]
        atomic_write_bytes(json.dumps(record).encode(),
                           ck / (f"{digest}_" + "_".join(map(str, job)) + ".json"))  # fmt: skip
        parts[job] = record
        bar.update()
    bar.close()
    results: dict[tuple[str, str, str], list[dict]] = {}
    for job in jobs:  # in the order of the runs and maps, however the workers finished
        results.setdefault(job[:3], []).append(parts[job])

    metrics: dict[str, float] = {}
    for (name, failure, fusion), recs in results.items():
        km = sum(r["distance_m"] for r in recs) / 1000.0
        n = sum(r["takeovers"] for r in recs)
        key = f"drive/{name}/{failure}/{fusion}"
        metrics[f"{key}/takeovers_per_km"] = n / km if km else float("nan")
        metrics[f"{key}/takeovers"] = float(n)
        metrics[f"{key}/km"] = km
        failed = np.concatenate([np.asarray(r["failed"]) for r in recs])
        metrics[f"{key}/failed_fraction"] = float(failed.mean()) if failed.size else 0.0
        scored = fusion == "evidential" or (fusion == "none" and name != dcfg.fused_model)
        if scored and failure not in ("none", "frame_drop"):
            for u in UNCERTAINTIES:
                scores = np.concatenate([np.asarray(r[u]) for r in recs])
                metrics[f"auroc/{name}/{failure}/{u}"] = auroc(scores, failed)
    # Totals over every failure kind (failure runs only) per fusion mode of the fused model.
    fm = dcfg.fused_model
    for fusion in dcfg.fusions:
        kinds = [f for f in dcfg.failures if f != "none"]
        km = sum(metrics.get(f"drive/{fm}/{f}/{fusion}/km", 0.0) for f in kinds)
        n = sum(metrics.get(f"drive/{fm}/{f}/{fusion}/takeovers", 0.0) for f in kinds)
        if km:
            metrics[f"drive/{fm}/failures/{fusion}/takeovers_per_km"] = n / km
    if {"none", "evidential"} <= set(dcfg.fusions) and metrics.get(
        f"drive/{fm}/failures/none/takeovers_per_km"
    ):
        metrics["compare/takeovers_evidential_over_none"] = (
            metrics[f"drive/{fm}/failures/evidential/takeovers_per_km"]
            / metrics[f"drive/{fm}/failures/none/takeovers_per_km"]
        )
    if {"average", "evidential"} <= set(dcfg.fusions) and metrics.get(
        f"drive/{fm}/failures/average/takeovers_per_km"
    ):
        metrics["compare/takeovers_evidential_over_average"] = (
            metrics[f"drive/{fm}/failures/evidential/takeovers_per_km"]
            / metrics[f"drive/{fm}/failures/average/takeovers_per_km"]
        )
    # How sure is the ratio? Bootstrap over the paired runs (failure kind x test map: the modes
    # met the same failure episodes there): the 5th and 95th percentiles of the pooled ratio.
    kinds = [f for f in dcfg.failures if f != "none"]
    for other in ("none", "average"):
        if {other, "evidential"} <= set(dcfg.fusions) and kinds:
            pairs = [(r_e["takeovers"], r_o["takeovers"])
                     for f in kinds
                     for r_e, r_o in zip(results[(fm, f, "evidential")], results[(fm, f, other)],
                                         strict=True)]  # fmt: skip
            lo, hi = paired_ratio_interval(np.array(pairs, dtype=np.float64), seed=dcfg.seed)
            metrics[f"compare/takeovers_evidential_over_{other}_p05"] = lo
            metrics[f"compare/takeovers_evidential_over_{other}_p95"] = hi
    auc = [metrics[k] for k in metrics if k.startswith(f"auroc/{fm}/") and k.endswith("/epistemic")]
    if auc:
        metrics[f"auroc/{fm}/mean/epistemic"] = float(np.nanmean(auc))

    # Open-loop uncertainty vs error on the test frames (the report's scatter), per model.
    from common.data.loader import build_loader

    test = DriveFrames.load(args.data, "test")
    arrays = {}
    for name, model in models.items():
        o = predict(model, build_loader(test, batch_size=64, shuffle=False))
        aleatoric = o["beta"] / (o["alpha"] - 1)
        arrays[f"{name}_error"] = (o["gamma"] - o["labels"])[:, 0].abs().numpy()
        arrays[f"{name}_epistemic"] = (aleatoric / o["nu"])[:, 0].numpy()
        arrays[f"{name}_aleatoric"] = aleatoric[:, 0].numpy()
        metrics[f"openloop/{name}/mae_now"] = control_metrics(o)["mae_now"]
    np.savez_compressed(out / "uncertainty.npz", **arrays)
    (out / "runs.json").write_text(json.dumps(
        {"/".join(k): v for k, v in results.items()}) + "\n")  # fmt: skip
    (out / "thresholds.json").write_text(json.dumps(
        {n: [float(x) for x in t] for n, t in limits.items()}, indent=2) + "\n")  # fmt: skip
    world = build_world(data.world, map_seed(data, "test", 0))
    _scene(profile, models[fm], world, out / "scene.npz")
    metrics["time/drive"] = ctx.seconds()
    ctx.finish(metrics, summary=_summary(metrics, fm))


_WORKER: dict = {}


def _init_worker(profile: FastLidarnetProfile, paths: dict[str, Path], limits: dict) -> None:
    """Once per worker process: the networks and the test worlds every run needs."""
    from common.driving import build_world
    from papers.fast_lidarnet.simulate import map_seed
    from papers.fast_lidarnet.train import load_network

    data = profile.data
    worlds = [build_world(data.world, map_seed(data, "test", i)) for i in range(data.maps["test"])]
    models = {n: load_network(p) for n, p in paths.items()}
    _WORKER.update(profile=profile, limits=limits, models=models, worlds=worlds)


def _drive_job(job: tuple[str, str, str, int]) -> dict:
    """One closed-loop run: model ``name`` with ``failure`` and ``fusion`` on test map ``i``."""
    from common.driving import drive
    from papers.fast_lidarnet.fusion import FusionPolicy

    name, failure, fusion, i = job
    profile = _WORKER["profile"]
    data, dcfg = profile.data, profile.drive
    policy = Recorder(FusionPolicy(_WORKER["models"][name], mode=fusion, fusion=profile.fusion,
                                   thresholds=_WORKER["limits"][name], vehicle=data.vehicle,
                                   horizon=data.horizon))  # fmt: skip
    r = drive(_WORKER["worlds"][i], policy, lidar=data.lidar, map_config=data.map,
              vehicle=data.vehicle, failure=failure, failure_config=dcfg.failure,
              seed=derive_seed(dcfg.seed, failure, i) % 2**31,
              max_distance_m=dcfg.max_distance_m)  # fmt: skip
    rows = policy.rows
    return {
        "distance_m": float(r.distance_m),
        "takeovers": int(r.takeovers),
        "takeover_steps": [int(s) for s in r.takeover_steps],
        "failed": [row["failed"] for row in rows],
        **{k: [row[k] for row in rows] for k in ("epistemic", "aleatoric", "gamma", "command",
                                                 "candidates")},
        "lateral": [float(x) for x in r.lateral],
    }  # fmt: skip


def _summary(metrics: dict[str, float], fm: str) -> str:
    parts = [f"{m}: {metrics[f'drive/{fm}/failures/{m}/takeovers_per_km']:.2f}/km"
             for m in ("none", "average", "evidential")
             if f"drive/{fm}/failures/{m}/takeovers_per_km" in metrics]  # fmt: skip
    return "takeovers under failures, " + ", ".join(parts)


def _scene(profile: FastLidarnetProfile, model: torch.nn.Module, world, path: Path) -> None:
    """One scene for the report: a pose on the first test map, its scan, the map raster and the
    model's forecast path (world frame)."""
    from common.driving import GpsSensor, rasterize, scan
    from papers.fast_lidarnet.fusion import forecast_path

    data = profile.data
    rng = np.random.default_rng(0)
    s = min(world.length * 0.3, world.length - 1.0)
    pose = np.asarray(world.pose_at(s), dtype=np.float64)
    points = scan(world, pose, data.lidar, rng)
    gps = GpsSensor(data.map, rng)
    raster = rasterize(world, gps.measure(pose, data.vehicle.dt), data.map)
    with torch.no_grad():
        p = model([torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))],
                  torch.from_numpy(np.ascontiguousarray(raster, dtype=np.float32))[None])  # fmt: skip
    local = forecast_path(p.gamma[0].double().numpy(), data.vehicle)
    c, s_ = np.cos(pose[2]), np.sin(pose[2])
    path_world = np.stack([pose[0] + c * local[:, 0] - s_ * local[:, 1],
                           pose[1] + s_ * local[:, 0] + c * local[:, 1]], axis=1)  # fmt: skip
    np.savez_compressed(path, pose=pose, points=points, path=path_world, raster=raster,
                        seed=np.array(world.seed))  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
