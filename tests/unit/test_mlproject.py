"""MLproject parsing and command formatting, checked for parity with MLflow itself."""

from pathlib import Path

import pytest
from mlflow.projects._project_spec import load_project

from parallels.errors import ParameterError, ProjectError
from parallels.mlproject import check_parameters, format_command, load_project_dir, parse_mlproject

MLPROJECT = """
name: demo
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.1}
      name: {type: string, default: "a b; rm -rf /"}
      data: uri
      input_dir: path
    command: "python train.py --alpha {alpha} --name {name} --data {data} --in {input_dir}"
  other:
    command: "echo hi"
"""


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    (tmp_path / "MLproject").write_text(MLPROJECT)
    (tmp_path / "python_env.yaml").write_text("python: '3.11'\ndependencies: [six]\n")
    return tmp_path


@pytest.mark.parametrize(
    "params",
    [
        {"data": "s3://b/k", "input_dir": "/in"},
        {"data": "s3://b/k", "alpha": 2, "name": "it's $(danger)", "input_dir": "/in"},
        {"data": "runs:/x/y", "input_dir": "/in dir"},
    ],
)
def test_main_command_matches_mlflow(project_dir, params):
    ours = load_project_dir(project_dir).entry_point("main")
    theirs = load_project(str(project_dir)).get_entry_point("main")
    assert format_command(ours, params) == theirs.compute_command(params, storage_dir=None)


def test_extra_parameters_match_mlflow_for_undeclared_entry_point(project_dir):
    ours = load_project_dir(project_dir).entry_point("other")
    theirs = load_project(str(project_dir)).get_entry_point("other")
    params = {"x y": "1 2", "z": "ok"}
    assert format_command(ours, params) == theirs.compute_command(params, storage_dir=None)


def test_script_entry_point_matches_mlflow(project_dir):
    ours = load_project_dir(project_dir).entry_point("run.py")
    theirs = load_project(str(project_dir)).get_entry_point("run.py")
    assert format_command(ours, {"k": "v w"}) == theirs.compute_command({"k": "v w"}, None)


def test_auto_dirs_fill_declared_parameters_only(project_dir):
    ep = load_project_dir(project_dir).entry_point("main")
    cmd = format_command(
        ep, {"data": "s3://b"}, auto={"input_dir": "/w/in", "output_dir": "/w/out"}
    )
    assert "--in /w/in" in cmd and "/w/out" not in cmd


def test_shell_metacharacters_are_quoted(project_dir):
    ep = load_project_dir(project_dir).entry_point("main")
    cmd = format_command(ep, {"data": "s3://b", "name": "x; touch /tmp/pwned", "input_dir": "/i"})
    assert "'x; touch /tmp/pwned'" in cmd


def test_parameter_problems(project_dir):
    ep = load_project_dir(project_dir).entry_point("main")
    assert check_parameters(ep, {"data": "s3://b", "alpha": "abc", "alhpa": 1}) == [
        "parameter 'alhpa' is not declared by entry point 'main' (declared: alpha, data, input_dir, name)",
        "parameter 'alpha' must be a number, got 'abc'",
    ]
    assert check_parameters(ep, {}) == ["parameter 'data' of entry point 'main' needs a value"]
    assert check_parameters(ep, {"data": "nope"}) == [
        "parameter 'data' must be a URI (scheme:...), got 'nope'"
    ]
    with pytest.raises(ParameterError):
        format_command(ep, {})


def test_environment_detection(project_dir, tmp_path):
    assert load_project_dir(project_dir).python_env == "python_env.yaml"
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "python_env.yaml").write_text("python: '3.11'\n")
    assert load_project_dir(bare).python_env == "python_env.yaml"  # MLflow's default file
    assert parse_mlproject("docker_env: {image: 'x:1'}").docker_image == "x:1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("entry_points: [1]", "'entry_points' must be a mapping"),
        ("entry_points: {main: {parameters: {}}}", "entry point 'main' needs a 'command' string"),
        ("entry_points: {main: {command: x, parameters: {p: {type: int}}}}", "unknown type 'int'"),
        ("docker_env: {}", "'docker_env' needs an 'image'"),
        (": : :", "not valid YAML"),
    ],
)
def test_malformed_mlproject(text, message):
    with pytest.raises(ProjectError, match=message):
        parse_mlproject(text)


def test_unknown_entry_point_lists_known(project_dir):
    with pytest.raises(
        ProjectError, match=r"entry point 'mian' is not defined .*defined: main, other"
    ):
        load_project_dir(project_dir).entry_point("mian")


def test_missing_env_file(tmp_path):
    (tmp_path / "MLproject").write_text(
        "python_env: missing.yaml\nentry_points: {main: {command: x}}\n"
    )
    with pytest.raises(ProjectError, match=r"missing\.yaml"):
        load_project_dir(tmp_path)
