"""`parallels dag validate` from a shell: exit codes and messages."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parallels", "dag", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_example_validates():
    out = validate(ROOT / "examples" / "batch_inference" / "dag.yaml")
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout and "5 nodes" in out.stdout


def test_invalid_file_exits_nonzero_with_paths(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nnodes:\n  - {id: a, project: {uri: /r}, depends_on: [b]}\n  - {id: a, project: {uri: /r}}\n"
    )
    out = validate(bad)
    assert out.returncode == 2
    assert "nodes[0].depends_on[0]: unknown node 'b'" in out.stderr
    assert "nodes[1].id: duplicate node id 'a'" in out.stderr


def test_relative_project_outside_git_is_refused(tmp_path):
    f = tmp_path / "dag.yaml"
    f.write_text("name: x\nnodes:\n  - {id: a, project: {uri: ./proj}}\n")
    out = validate(f)
    assert out.returncode == 2 and "is not inside a git repository" in out.stderr


def test_demo_command_runs_the_example_end_to_end(tmp_path):
    from parallels.stack import free_port

    env = {
        **__import__("os").environ,
        "PARALLELS_STATE_DIR": str(tmp_path / "state"),
        "PARALLELS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "PARALLELS_TEMPORAL_UI_PORT": str(free_port()),
        "PARALLELS_MLFLOW_PORT": str(free_port()),
    }
    out = subprocess.run(
        [sys.executable, "-m", "parallels", "demo", "--images", "80"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "summary: 80 images classified, accuracy 0." in out.stdout
    for node in ("ingest", "train", "preprocess", "infer", "aggregate"):
        assert f"  {node}" in out.stdout
    assert not (tmp_path / "mlruns").exists()  # everything went to the embedded MLflow server
