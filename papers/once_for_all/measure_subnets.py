"""Stage ``once_for_all_measure``: the accuracy predictor's dataset (Section 3.4).

The paper samples 16K sub-networks of the trained supernet and measures each on 10K images held
out from the training set; users of the reference repository ask for exactly this script
(issue #67). Here ``predictor.samples`` random sub-networks (architecture and resolution,
uniformly over the whole space, seeded) are extracted from the final progressive-shrinking
supernet, their batch norms recalibrated on the fixed calibration images, and their accuracy
measured on the held-out images (never trained on, never used for the reported test accuracies).

Every measurement is appended to a log under ``--checkpoints``: an interrupted run resumes
after the last sub-network it finished.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from common.fingerprint import data_digest, source_digest
from common.io import write_json
from common.ofa.efficiency import arch_macs, random_archs
from common.ofa.training import evaluate_arch
from common.records import RecordLog
from common.seed import derive_seed
from common.stage import StageContext
from papers.once_for_all.stage import (
    SUPERNET_FILE,
    load_splits,
    load_supernet,
    loader,
    ofa_stage,
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@ofa_stage(
    name="once_for_all_measure",
    flags=["supernet", "data", "out", "checkpoints", "metrics"],
    track=lambda ctx: ctx.config.predictor,
)
def main(ctx: StageContext) -> None:
    cfg, args = ctx.config, ctx.args
    pc = cfg.predictor
    splits = load_splits(cfg, args.data)
    supernet, meta = load_supernet(args.supernet)
    space = supernet.config
    archs = random_archs(space, pc.samples, seed=derive_seed(cfg.seed, "predictor-data"))
    holdout = loader(splits.holdout, cfg.phases["full"].train.eval_batch_size)
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                "supernet": _sha256(Path(args.supernet) / SUPERNET_FILE),
                "archs": archs,
                "data": str(cfg.data),
                "holdout": data_digest(splits.holdout),
                "calibration": data_digest(splits.calibration),
                "code": source_digest(),
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    log = RecordLog(Path(args.checkpoints) / "measurements.jsonl", fingerprint)
    records = log.records
    torch.set_num_threads(cfg.phases["full"].train.threads or torch.get_num_threads())
    for arch in tqdm(archs[len(records) :], desc="sub-networks", disable=None, leave=False):
        t1 = time.perf_counter()
        m = evaluate_arch(supernet, arch, calibration=splits.calibration, eval_loader=holdout)
        log.append(
            {
                "arch": arch,
                "accuracy": m["accuracy"],
                "macs": arch_macs(space, arch),
                "seconds": time.perf_counter() - t1,
            }
        )
    accs = [r["accuracy"] for r in records]
    write_json(
        {
            "supernet_phase": meta.get("phase"),
            "split": "holdout",
            "holdout_images": len(splits.holdout),
            "records": records,
        },
        args.out,
    )
    metrics = {
        "measure/samples": float(len(records)),
        # Summed over the sub-networks, so a resumed run still reports the whole cost.
        "measure/seconds": sum(r["seconds"] for r in records),
        "time/measure": ctx.seconds(),
        "measure/accuracy_mean": sum(accs) / len(accs),
        "measure/accuracy_min": min(accs),
        "measure/accuracy_max": max(accs),
    }
    ctx.finish(
        metrics,
        summary=f"measured {len(records)} sub-networks on {len(splits.holdout)} held-out images: "
        f"accuracy {min(accs):.1f}-{max(accs):.1f}% -> {args.out}",
    )


if __name__ == "__main__":
    raise SystemExit(main())
