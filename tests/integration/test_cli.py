"""The `parallels` command from a shell, as a person uses it: real subprocesses and servers."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def parallels(*args: str, env=None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parallels", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return parallels("dag", "validate", str(path), timeout=60)


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


def test_up_then_push_start_watch_list_show_cancel_then_ctrl_c(tmp_path):
    import os
    import signal
    import time

    from parallels.stack import free_port, port_open
    from tests.conftest import make_repo
    from tests.integration.helpers import STEP_MLPROJECT, STEP_PY

    t_port, m_port, a_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PARALLELS_STATE_DIR": str(tmp_path / "state"),
        "PARALLELS_TEMPORAL_ADDRESS": f"127.0.0.1:{t_port}",
        "PARALLELS_TEMPORAL_UI_PORT": str(free_port()),
        "PARALLELS_MLFLOW_PORT": str(m_port),
        "PARALLELS_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{m_port}",
        "PARALLELS_API_PORT": str(a_port),
        # The CLI finds the API through its config file.
        "PARALLELS_CONFIG": str(tmp_path / "config.toml"),
    }
    (tmp_path / "config.toml").write_text(f'api_url = "http://127.0.0.1:{a_port}"\n')
    # DAG files kept next to their project, which they name by a relative path.
    dag = (
        "name: from-file\nparameters: {n: 4}\nnodes:\n"
        "  - {id: emit, project: {uri: .., subdirectory: steps}, entry_point: emit,"
        " parameters: {n: '${n}'}, env_manager: local}\n"
        "  - {id: copy, project: {uri: ../steps}, entry_point: copy, parallelism: 2,"
        " env_manager: local, inputs: [{name: d, source: {node: emit}, partition: by_file}]}\n"
    )
    slow = (
        "name: slow\nnodes:\n  - {id: s, project: {uri: ../steps}, entry_point: sleep,"
        " parameters: {seconds: 120}, env_manager: local}\n"
    )
    repo = make_repo(
        tmp_path / "repo",
        {"steps/MLproject": STEP_MLPROJECT, "steps/step.py": STEP_PY,
         "dags/dag.yaml": dag, "dags/slow.yaml": slow},
    )  # fmt: skip
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "parallels", "up"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C stops" not in (tmp_path / "up.log").read_text():
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()
            time.sleep(0.2)
        assert "API       http://127.0.0.1:" in (tmp_path / "up.log").read_text()

        pushed = parallels("dag", "push", str(repo / "dags" / "dag.yaml"), env=env)
        assert pushed.returncode == 0 and "saved from-file version 1" in pushed.stdout, (
            pushed.stderr
        )
        again = parallels("dag", "push", str(repo / "dags" / "dag.yaml"), env=env)
        assert "unchanged: from-file version 1" in again.stdout, again.stderr
        edited = repo / "dags" / "dag.yaml"
        edited.write_text(dag.replace("{n: 4}", "{n: 5}"))
        again = parallels("dag", "push", str(edited), env=env)
        assert "saved from-file version 2" in again.stdout, again.stderr
        listed = parallels("dag", "list", env=env)
        assert "from-file" in listed.stdout and " 2 " in listed.stdout

        out = parallels("run", "start", "from-file", "-p", "n=6", env=env)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert "succeeded" in out.stdout and "MLflow:" in out.stdout
        run_id = out.stdout.split("started ", 1)[1].split()[0]
        shown = parallels("run", "show", run_id, env=env)
        assert "copy" in shown.stdout and "2/2" in shown.stdout and "succeeded" in shown.stdout

        bad = parallels("run", "start", "from-file", "-p", "m=1", env=env)
        assert bad.returncode == 2 and "parameters.m: unknown DAG parameter" in bad.stderr
        missing = parallels("run", "start", "nope", env=env)
        assert missing.returncode == 2 and "template 'nope' not found" in missing.stderr

        started = parallels("run", "start", str(repo / "dags" / "slow.yaml"), "--no-watch", env=env)
        slow_id = started.stdout.split("started ", 1)[1].split()[0]
        assert parallels("run", "cancel", slow_id, env=env).returncode == 0
        for _ in range(100):
            if (
                '"status": "cancelled"'
                in parallels("run", "show", slow_id, "--json", env=env).stdout
            ):
                break
            time.sleep(0.3)
        else:
            raise AssertionError("run was not cancelled")
        runs = parallels("run", "list", env=env).stdout
        assert run_id in runs and slow_id in runs

        made = parallels("schedule", "create", "hourly", "from-file", "--every", "1h", env=env)
        assert made.returncode == 0 and "created schedule hourly of from-file v2" in made.stdout
        assert parallels("schedule", "trigger", "hourly", env=env).returncode == 0
        for _ in range(100):
            listed = parallels("schedule", "list", env=env).stdout
            if "hourly" in listed and "hourly-" in listed:  # listed, with its triggered run
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"schedule or its run not listed: {listed}")
        assert "every 1h" in listed and "active" in listed
        assert "paused hourly" in parallels("schedule", "pause", "hourly", env=env).stdout
        assert parallels("schedule", "delete", "hourly", env=env).returncode == 0
        gone = parallels("schedule", "pause", "hourly", env=env)
        assert gone.returncode == 2 and "not found" in gone.stderr
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(60)
    assert code == 0, (tmp_path / "up.log").read_text()[-3000:]
    assert not port_open(t_port) and not port_open(m_port) and not port_open(a_port)


def test_a_killed_stack_leaves_no_servers_behind(tmp_path):
    import os
    import signal
    import time

    from parallels.stack import free_port, port_open

    t_port, m_port = free_port(), free_port()
    env = {
        **os.environ,
        "PARALLELS_STATE_DIR": str(tmp_path / "state"),
        "PARALLELS_TEMPORAL_ADDRESS": f"127.0.0.1:{t_port}",
        "PARALLELS_TEMPORAL_UI_PORT": str(free_port()),
        "PARALLELS_MLFLOW_PORT": str(m_port),
    }
    log = tmp_path / "up.log"
    up = subprocess.Popen(
        [sys.executable, "-m", "parallels", "up"],
        env=env,
        cwd=tmp_path,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while "Ctrl-C stops" not in log.read_text():
        assert up.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    assert port_open(t_port) and port_open(m_port)
    up.send_signal(signal.SIGKILL)  # no chance to clean up
    up.wait()
    deadline = time.monotonic() + 15
    while port_open(t_port) or port_open(m_port):
        assert time.monotonic() < deadline, "servers outlived the killed CLI"
        time.sleep(0.2)


def test_api_commands_say_when_the_api_is_unreachable():
    import os

    out = parallels(
        "run", "list", env={**os.environ, "PARALLELS_API_URL": "http://127.0.0.1:1"}, timeout=60
    )
    assert out.returncode == 1
    assert "cannot reach the API" in out.stderr and "parallels up" in out.stderr


def test_a_broken_config_file_is_reported_not_a_traceback(tmp_path):
    import os

    (tmp_path / "c.toml").write_text("api_url = \n")
    out = parallels("run", "list", env={**os.environ, "PARALLELS_CONFIG": str(tmp_path / "c.toml")})
    assert out.returncode == 2 and "invalid settings" in out.stderr
    assert "Traceback" not in out.stderr and "c.toml" in out.stderr
