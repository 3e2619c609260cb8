"""``python -m common.new_paper``: a scaffolded paper runs its smoke pipeline through DVC, in a
temporary copy of the repository, and its own tests pass there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.config import ConfigError
from common.new_paper import class_prefix, register, scaffold

REPO = Path(__file__).resolve().parents[2]


def _copy_repo(dest: Path) -> Path:
    """The files git would check out (tracked and new, not ignored), in a fresh git repository."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO / name.decode()
        if src.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.read_bytes())
    git = ["git", "-c", "user.email=ci@example.org", "-c", "user.name=ci"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=dest, check=True)
    return dest


def _env(tmp: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "PYTHONPATH": "",
    }


@pytest.mark.slow
def test_scaffolded_paper_runs_its_smoke_pipeline_through_dvc(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path / "repo")
    env = _env(tmp_path)

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, f"{' '.join(cmd)}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return out

    run(
        sys.executable,
        "-m",
        "common.new_paper",
        "demo_paper",
        "--title",
        "Demo",
        "--citation",
        "Doe, 2026",
    )
    assert yaml.safe_load((root / "params.yaml").read_text())["profile"]["demo_paper"] == "default"
    registry = yaml.safe_load((root / "papers" / "registry.yaml").read_text())["papers"]
    assert registry[-1]["slug"] == "demo_paper"
    # The new stages declare exactly the code they import, and the index waits for the report.
    run(sys.executable, "-m", "common.pipeline", "check")
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    for name in ("reports_index", "course_slides"):  # every paper's claims, the new one's too
        assert "reports/demo_paper/claims.json" in stages[name]["deps"], name
        assert stages[name]["cmd"].endswith("reports/demo_paper/claims.json"), name

    root_params = yaml.safe_load((root / "params.yaml").read_text())
    root_params["profile"]["demo_paper"] = "smoke"
    (root / "params.yaml").write_text(yaml.safe_dump(root_params, sort_keys=False))
    run(sys.executable, "-m", "dvc", "repro", "papers/demo_paper/dvc.yaml")
    claims = json.loads((root / "reports" / "demo_paper" / "claims.json").read_text())
    assert claims["paper"] == "demo_paper" and claims["profile"] == "smoke"
    metrics = json.loads((root / "metrics" / "demo_paper" / "train_lenet5.json").read_text())
    assert metrics["lenet5/train_samples"] == 1000
    assert (root / "reports" / "demo_paper" / "figures" / "training.png").is_file()
    assert (root / "reports" / "demo_paper" / "slides.pptx").is_file()  # its deck
    status = run(sys.executable, "-m", "dvc", "status", "papers/demo_paper/dvc.yaml")
    assert "up to date" in status.stdout
    # Its own tests pass in the copy.
    run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/papers/demo_paper")


def test_bad_or_taken_slugs_are_refused(tmp_path: Path) -> None:
    for slug in ("Bad-Slug", "_hidden", "9lives"):
        with pytest.raises(ConfigError, match="not a paper slug"):
            scaffold(slug, title="t", citation="c", root=REPO)
    with pytest.raises(ConfigError, match="exists already"):
        scaffold("mcunet", title="t", citation="c", root=REPO)
    assert class_prefix("lite_transformer") == "LiteTransformer"


def test_a_planned_paper_is_registered_in_its_place(tmp_path: Path) -> None:
    """Scaffolding a paper the registry lists as planned replaces that entry where it stands (the
    course's order), and registers it in params.yaml and the index stage (checked on copies)."""
    for name in ("papers/registry.yaml", "params.yaml", "dvc.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((REPO / name).read_text())
    before = [
        p["slug"] for p in yaml.safe_load((tmp_path / "papers/registry.yaml").read_text())["papers"]
    ]
    register(tmp_path, "spatten", "SpAtten", "Wang et al., HPCA 2021", "")
    entries = yaml.safe_load((tmp_path / "papers/registry.yaml").read_text())["papers"]
    assert [p["slug"] for p in entries] == before
    spatten = next(p for p in entries if p["slug"] == "spatten")
    assert "status" not in spatten and spatten["config"] == "papers.spatten.config:SpattenProfile"
    assert yaml.safe_load((tmp_path / "params.yaml").read_text())["profile"]["spatten"] == "default"
    assert "reports/spatten/claims.json" in (tmp_path / "dvc.yaml").read_text()
