"""The one stage harness: what every DVC stage entry point does the same way.

A stage module keeps only what is particular to its paper::

    @stage(
        section="deep_compression",                 # params section and MLflow experiment
        name="deep_compression_prune@{name}",       # the DVC stage (MLflow run name); {flag}s filled
        config=DeepCompressionProfile,              # the profile class, validated whole
        flags=["name", "baseline", "data", "out", "checkpoints", "metrics", "history"],
        track=lambda ctx: ctx.entry("prune"),       # the part of the config MLflow records
    )
    def main(ctx: StageContext) -> None:
        cfg = ctx.entry("prune")                    # config.prune[--name], or one clear error
        ...
        ctx.finish(metrics, artifacts=[ctx.args.out / "prune.json"], history=result.history,
                   summary=f"pruned to {kept:.2f}%")

    if __name__ == "__main__":
        raise SystemExit(main())

``main(argv)`` then parses ``--params`` and the flags, loads and validates the profile, opens the
MLflow run (one per stage, rank 0 only under ``torchrun``), calls the body, and turns the known
failures (bad params, missing or corrupt data, unreadable checkpoints, missing toolchains) into
one line on stderr and exit code 2 instead of a traceback. :meth:`StageContext.finish` writes the
flat metrics JSON (a DVC metric) and the per-epoch history CSV (a DVC plot), and logs them with the
artifacts to MLflow.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import ConfigError, load_profile, save_resolved, section_file
from common.env import configure_environment, process_start_time
from common.errors import InputError

# Flags every paper's stages share; dvc.yaml passes every path through them. Papers extend this
# catalogue with their own (``{**STAGE_FLAGS, "baseline": {...}}``).
STAGE_FLAGS: dict[str, dict[str, Any]] = {
    "data": {"type": Path, "required": True, "help": "prepared dataset directory"},
    "out": {"type": Path, "required": True, "help": "output directory or file"},
    "checkpoints": {"type": Path, "required": True, "help": "resumable checkpoint directory"},
    "metrics": {"type": Path, "required": True, "help": "flat metrics JSON"},
    "history": {"type": Path, "required": True, "help": "per-epoch history CSV"},
}

# Bad params, missing or corrupt data, unreadable checkpoints, missing toolchains: one line, exit 2.
KNOWN_ERRORS: tuple[type[BaseException], ...] = (InputError,)

Flags = Sequence[str] | Callable[[argparse.ArgumentParser], None]


@dataclass
class StageContext:
    """What a stage body works with."""

    args: argparse.Namespace
    section: str
    name: str
    profile: str
    config: Any
    started: float = field(default_factory=time.perf_counter)
    run: Any = None  # common.tracking.StageRun, None on non-zero ranks or without tracking
    dist: Any = None  # the DistContext of a distributed stage
    finished: bool = False

    @property
    def is_main(self) -> bool:
        return self.dist is None or self.dist.is_main

    def entry(self, group: str, key: str | None = None) -> Any:
        """``config.<group>[key]`` (``key`` defaults to ``--name``), or a :class:`ConfigError`
        naming the file and the entries the group has."""
        key = key if key is not None else self.args.name
        entries = getattr(self.config, group)
        if key not in entries:
            where = section_file(self.args.params, self.section)
            raise ConfigError(
                f"{where}: {self.profile}.{group} has no {key!r}; it has {', '.join(entries)}"
            )
        return entries[key]

    def seed(self, seed: int) -> None:
        """Seed Python, NumPy and torch (see :func:`common.seed.seed_everything`)."""
        from common.seed import seed_everything

        seed_everything(seed)

    def epoch_logger(self) -> Any:
        """A training hook logging every epoch's record to this stage's MLflow run."""
        from common.tracking import epoch_logger

        return epoch_logger(self.run)

    def save_config(self, config: Any, path: str | Path) -> Path:
        """The resolved config of this run as JSON (with the profile and stage name)."""
        return save_resolved(config, path, profile=self.profile, stage=self.name)

    def log_artifacts(self, paths: Iterable[str | Path]) -> None:
        if self.run is not None:
            for path in paths:
                self.run.log_artifact(path)

    def seconds(self) -> float:
        """Seconds since the stage started (after start-up and config loading)."""
        return time.perf_counter() - self.started

    def finish(
        self,
        metrics: Mapping[str, float],
        *,
        artifacts: Iterable[str | Path] = (),
        history: list[Mapping[str, float]] | None = None,
        summary: str | None = None,
        metrics_path: str | Path | None = None,
    ) -> None:
        """Write the flat metrics JSON (``--metrics``) and the history CSV (``--history``), log
        both with ``artifacts`` and the metrics to MLflow, and print ``summary``. On non-zero
        ranks of a distributed stage it does nothing."""
        if not self.is_main:
            return
        from common.io import write_history, write_metrics

        written: list[Path] = []
        path = metrics_path if metrics_path is not None else getattr(self.args, "metrics", None)
        if path is not None:
            written.append(write_metrics(metrics, path))
        if history is not None:
            written.append(write_history(history, self.args.history))
        if self.run is not None:
            self.run.log_metrics(metrics)
        self.log_artifacts([*artifacts, *written])
        self.finished = True
        if summary:
            print(summary)


def stage(
    *,
    section: str,
    name: str | Callable[[argparse.Namespace], str],
    config: type | None,
    flags: Flags,
    catalogue: Mapping[str, dict[str, Any]] | None = None,
    description: str = "",
    track: Callable[[StageContext], Any] | None = None,
    tracking: bool = True,
    distributed: Callable[[StageContext], Any] | None = None,
    errors: tuple[type[BaseException], ...] = (),
) -> Callable[[Callable[[StageContext], Any]], Callable[[list[str] | None], int]]:
    """Turn ``body(ctx)`` into a stage's ``main(argv) -> exit code`` (see the module docstring).

    Args:
        section: the params section (``papers/<section>/params.yaml``) and MLflow experiment.
        name: the stage's name (MLflow run name): a template filled from the parsed flags
            (``"deep_compression_prune@{name}"``) or a function of them.
        config: the profile dataclass; ``None`` for stages without params.
        flags: flag names looked up in ``catalogue`` (default :data:`STAGE_FLAGS`), or a
            function that adds arguments to the parser.
        description: the ``--help`` text (default: the body's docstring's first line).
        track: the part of the config logged to MLflow as params (default: all of it).
        tracking: open an MLflow run for the stage.
        distributed: for stages that may run under ``torchrun``: ``distributed(ctx)`` joins the
            process group and returns the :class:`~common.train.distributed.DistContext`
            (``lambda ctx: init_distributed(<device>)``); only rank 0 tracks and writes, and the
            group is left when the stage ends.
        errors: more exception types that mean "bad input", reported as one line (subclasses
            of :class:`common.errors.InputError` always are).
    """

    def wrap(body: Callable[[StageContext], Any]) -> Callable[[list[str] | None], int]:
        doc = description or (body.__doc__ or sys.modules[body.__module__].__doc__ or "").strip()

        def main(argv: list[str] | None = None) -> int:
            configure_environment()
            module = body.__module__
            if module == "__main__":  # run as `python -m package.module`
                module = getattr(sys.modules["__main__"].__spec__, "name", module)
            parser = argparse.ArgumentParser(
                prog=f"python -m {module}", description=doc.split("\n")[0]
            )
            parser.add_argument("--params", type=Path, default=Path("params.yaml"))
            if callable(flags):
                flags(parser)
            else:
                for flag in flags:
                    parser.add_argument(f"--{flag}", **(catalogue or STAGE_FLAGS)[flag])
            args = parser.parse_args(argv)
            try:
                _run(body, args)
            except (*KNOWN_ERRORS, *errors) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            return 0

        def _run(body: Callable[[StageContext], Any], args: argparse.Namespace) -> None:
            profile, cfg = (
                load_profile(config, args.params, section) if config is not None else ("", None)
            )
            if getattr(args, "checkpoints", None) is not None:
                args.checkpoints.mkdir(parents=True, exist_ok=True)  # a DVC output even if unused
            label = name(args) if callable(name) else name.format(**vars(args))
            ctx = StageContext(args=args, section=section, name=label, profile=profile, config=cfg)
            if distributed is not None:
                ctx.dist = distributed(ctx)
            try:
                params = track(ctx) if track else cfg
                if tracking and ctx.is_main:
                    from common.tracking import stage_run

                    with stage_run(
                        experiment=section,
                        stage=label,
                        config=params,
                        profile=profile or None,
                        start_time=process_start_time(),
                    ) as run:
                        ctx.run = run
                        body(ctx)
                else:
                    body(ctx)
            finally:
                if ctx.dist is not None:
                    ctx.dist.close()

        main.__doc__ = doc
        main.body = body  # type: ignore[attr-defined]
        return main

    return wrap
