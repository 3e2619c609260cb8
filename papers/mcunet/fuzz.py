"""Stage ``mcunet_fuzz``: the deploy command on int8 models nobody wrote for it.

The deployment tables show the engine on the networks of this repository. This stage runs
:func:`common.mcu.fuzz.run` on ``fuzz.models`` random int8 ``.tflite`` files written with the
TF-Lite schema directly (convolutions 1x1 to 7x7, depthwise with odd sizes and strides, residual
and broadcast ADD, pools, padding, reshape, fully connected, softmax; random quantization): each
is deployed on every engine and compared with TF-Lite Micro on the file, on the host and for a
sample on the emulated Cortex-M7; then ``fuzz.malformed`` broken files (empty, random, truncated,
bit flips, enormous tensors), each given to ``python -m common.mcu deploy`` in a fresh process,
which must refuse it with exit code 2 and one line (or deploy it, bit-exact, when the damage left
a valid model). It also records each model's SRAM: our per-layer arena against TF-Lite Micro's.

The campaign runs in chunks recorded as they finish (``--checkpoints``), so a killed run resumes.
Writes ``summary.txt`` (the campaign's summary), ``summary.json`` (its numbers, for the report)
and the metrics; any failure (a wrong output, a crash, a traceback) fails the stage.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

from tqdm import tqdm

from common.checkpoint import CheckpointError
from common.fingerprint import source_digest
from common.io import write_json
from common.mcu.fuzz import FuzzReport, run
from common.mcu.toolchain import ToolchainMissingError
from common.records import RecordLog
from common.stage import StageContext
from papers.mcunet.stage import mcunet_stage


class FuzzFailedError(RuntimeError):
    """The campaign found a model the engine gets wrong or a file it does not refuse cleanly."""


def chunks(models: int, malformed: int, chunk: int) -> list[tuple[int, int, int]]:
    """``(first model index, models, malformed files)`` per chunk: the malformed files spread
    over the chunks in proportion to their models (the last takes the remainder)."""
    out, given = [], 0
    n = math.ceil(models / chunk)
    for k in range(n):
        first = k * chunk
        size = min(chunk, models - first)
        bad = malformed - given if k == n - 1 else malformed * (first + size) // models - given
        out.append((first, size, bad))
        given += bad
    return out


def _recorded(record: dict, path: Path) -> FuzzReport:
    """A recorded chunk's report; a record that is not one (edited, from another version) is a
    checkpoint error naming the file."""
    try:
        rep = FuzzReport.from_dict(record)
        FuzzReport.merged([rep]).metrics()  # every field of the right kind
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(
            f"{path}: a recorded fuzz chunk is not readable ({type(exc).__name__}: {exc}); "
            "delete the file to run the campaign afresh"
        ) from exc
    return rep


@mcunet_stage(
    name="mcunet_fuzz",
    flags=["out", "checkpoints", "metrics"],
    track=lambda ctx: ctx.config.fuzz,
    errors=(ToolchainMissingError, FuzzFailedError, CheckpointError),
)
def main(ctx: StageContext) -> None:
    f, args = ctx.config.fuzz, ctx.args
    fingerprint = hashlib.sha256(
        json.dumps(
            {"fuzz": dataclasses.asdict(f), "code": source_digest()}, sort_keys=True
        ).encode()
    ).hexdigest()[:16]
    log = RecordLog(Path(args.checkpoints) / "chunks.jsonl", fingerprint)
    parts = [_recorded(r, log.path) for r in log.records]
    plan = chunks(f.models, f.malformed, f.chunk)
    bar = tqdm(total=f.models, initial=sum(p.models for p in parts), desc="fuzz models",
               disable=None, leave=False)  # fmt: skip
    for first, size, bad in plan[len(parts) :]:
        part = run(
            size,
            bad,
            seed=f.seed + first,
            emulate_every=f.emulate_every,
            inputs=f.inputs,
            index0=first,
            log=lambda s: None,
        )
        log.append(part.to_dict())
        parts.append(part)
        bar.update(size)
    bar.close()
    rep = FuzzReport.merged(parts)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = rep.summary()
    (out / "summary.txt").write_text(summary + "\n")
    write_json(rep.to_dict(), out / "summary.json")
    if not rep.ok:
        raise FuzzFailedError(
            f"the fuzz campaign found {len(rep.failures)} failing models and "
            f"{len(rep.malformed_bad)} malformed files not refused cleanly; see {out / 'summary.txt'}"
        )
    ctx.finish(rep.metrics(), summary=summary)


if __name__ == "__main__":
    raise SystemExit(main())
