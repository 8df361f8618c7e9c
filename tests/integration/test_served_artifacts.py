"""An MLflow server that serves the artifacts itself (`mlflow-artifacts:/` URIs, over HTTP), as a
shared deployment has it: inputs are listed and fetched through the server with the same
guarantees as from a local store, and a DAG passes its data through it end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import worker as worker_mod
from parallels.artifacts import Fetcher, list_files
from parallels.errors import InputError
from parallels.stack import MlflowServer, free_port
from tests.integration.helpers import by_kind, node, run_dag, runs_of, steps_repo


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("served"), free_port(), serve_artifacts=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _logged_root(served: MlflowServer, src: Path) -> str:
    mlflow = MlflowClient(served.uri)
    run = mlflow.create_run(mlflow.create_experiment(f"served-{src.parent.name}"))
    mlflow.log_artifacts(run.info.run_id, str(src), "out")
    return f"{run.info.artifact_uri}/out"


def test_inputs_are_listed_and_fetched_through_the_server(served, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("aa")
    (src / "sub" / "b.txt").write_text("bbb")
    (src / "c.txt").write_text("cc")
    root = _logged_root(served, src)
    assert root.startswith("mlflow-artifacts:/")  # so nothing below reads the directory itself

    listed = list_files(root, tracking_uri=served.uri)
    assert [(f.path, f.size) for f in listed] == [("a.txt", 2), ("c.txt", 2), ("sub/b.txt", 3)]

    dest, outside, staging = tmp_path / "in", tmp_path / "outside", tmp_path / "staging"
    dest.mkdir()
    outside.mkdir()
    (dest / "c.txt").symlink_to(outside / "c.txt")  # planted by an earlier, malicious file
    with Fetcher(staging, served.uri) as fetcher:
        got = [fetcher.fetch(root, p, dest) for p in ("a.txt", "sub/b.txt")]
        assert [g.read_text() for g in got] == ["aa", "bbb"]
        # The same name twice is refused, not overwritten.
        with pytest.raises(InputError, match=r"two input files map to 'a\.txt'"):
            fetcher.fetch(root, "a.txt", dest)
        assert (dest / "a.txt").read_text() == "aa"
        # Nothing is written through a symlink.
        with pytest.raises(InputError):
            fetcher.fetch(root, "c.txt", dest)
        assert not (outside / "c.txt").exists()
    # Downloads were staged beside the input directory, and the staging is gone.
    assert list(staging.iterdir()) == []
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "a.txt",
        "c.txt",
        "sub",
        "sub/b.txt",
    ]


async def test_a_dag_passes_its_data_through_the_server(served, client, settings, tmp_path):
    s = settings.model_copy(update={"mlflow_tracking_uri": served.uri})
    repo = steps_repo(tmp_path)
    spec = {
        "name": "served",
        "nodes": [
            node("a", repo, "emit", parameters={"n": 5}),
            node("b", repo, "copy", parallelism=3, parameters={"tag": "b"},
                 inputs=[{"name": "data", "source": {"node": "a"}, "partition": "by_file"}]),
            node("c", repo, "copy", parameters={"tag": "c"},
                 inputs=[{"name": "data", "source": {"node": "b"}}]),
        ],
    }  # fmt: skip
    async with worker_mod.running(worker_mod.build_workers(client, s)):
        wid, result, error = await run_dag(client, s, spec)
    assert error is None and result is not None and result.status == "succeeded", error
    mlflow = MlflowClient(served.uri)
    (c_run,) = [r for r in by_kind(runs_of(s, wid), "partition") if r.data.tags["parallels.node"] == "c"]  # fmt: skip
    assert c_run.info.artifact_uri.startswith("mlflow-artifacts:/")
    outputs = sorted(f.path for f in mlflow.list_artifacts(c_run.info.run_id, "output"))
    # Every file a emitted went through b's three partitions and reached c, via the server.
    assert outputs == [f"output/c-b-f{i:03d}.txt" for i in range(5)]
