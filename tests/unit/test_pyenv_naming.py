import pytest

from parallels import naming, pyenv
from parallels.errors import EnvironmentError_
from parallels.mlproject import ProjectSpec
from parallels.spec import EnvManager


def test_env_hash_changes_with_any_input():
    base = pyenv.env_hash("python: '3.11'\n", {"req.txt": b"six"}, "/usr/bin/python3")
    assert base == pyenv.env_hash("python: '3.11'\n", {"req.txt": b"six"}, "/usr/bin/python3")
    assert base != pyenv.env_hash("python: '3.11'\n", {"req.txt": b"six==1"}, "/usr/bin/python3")
    assert base != pyenv.env_hash("python: '3.12'\n", {"req.txt": b"six"}, "/usr/bin/python3")
    assert base != pyenv.env_hash("python: '3.11'\n", {"req.txt": b"six"}, "/opt/python3")


def test_requirement_files_and_versions():
    env = pyenv.parse_python_env("python: 3.11\ndependencies: ['-r requirements.txt', six]\n")
    assert env.python == "3.11"
    assert env.requirement_files() == ["requirements.txt"]
    assert pyenv.version_matches("3.11", (3, 11, 7))
    assert pyenv.version_matches("3.11.7", (3, 11, 7))
    assert not pyenv.version_matches("3.10", (3, 11, 7))
    assert pyenv.version_matches(None, (3, 11, 7))


def test_choose_manager():
    plain, with_env = ProjectSpec(), ProjectSpec(python_env="python_env.yaml")
    assert pyenv.choose_manager(plain, EnvManager.AUTO) == EnvManager.LOCAL
    assert pyenv.choose_manager(with_env, EnvManager.AUTO) == EnvManager.VIRTUALENV
    assert pyenv.choose_manager(with_env, EnvManager.LOCAL) == EnvManager.LOCAL
    with pytest.raises(EnvironmentError_, match="Kubernetes"):
        pyenv.choose_manager(ProjectSpec(docker_image="x"), EnvManager.AUTO)
    with pytest.raises(EnvironmentError_, match="conda"):
        pyenv.choose_manager(ProjectSpec(conda_env="conda.yaml"), EnvManager.VIRTUALENV)


def test_names_are_deterministic_and_safe():
    key = naming.partition_key(naming.node_key(naming.dag_key("wf/1", "run"), "infer"), 3)
    assert key == "wf/1@run/infer/3"
    name = naming.safe_name(key)
    assert name == naming.safe_name(key)
    assert len(name) <= 63 and name.replace("-", "").isalnum()
    assert naming.safe_name("a" * 200) != naming.safe_name("a" * 199)
    assert naming.cluster_queue("parallels", "local") == "parallels-local"
