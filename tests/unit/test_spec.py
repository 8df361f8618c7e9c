"""DAG spec loading and validation: good specs load, each bad one gets a precise message."""

import json

import pytest

from parallels.errors import SpecInvalid
from parallels.spec import parse_duration
from parallels.validation import apply_overrides, find_cycle, load_spec, resolve_parameters

GOOD_YAML = """
name: images
parameters: {threshold: 0.5, size: 224}
nodes:
  - id: preprocess
    project: {uri: https://git.example.com/vision.git, subdirectory: pre, version: main}
    parameters: {size: "${size}"}
    inputs:
      - {name: images, source: {uri: "s3://bucket/raw/"}, partition: by_file}
    parallelism: 10
  - id: infer
    project: {uri: /srv/vision}
    parameters: {threshold: "${threshold}", label: "t=${threshold}"}
    inputs:
      - {name: images, source: {node: preprocess}, partition: by_file}
      - {name: labels, source: {uri: "runs:/abc/labels"}}
    depends_on: [preprocess]
    timeout: 1h30m
"""


def node(id, **kw):
    return {"id": id, "project": {"uri": "/repo"}, **kw}


def problems(doc):
    with pytest.raises(SpecInvalid) as e:
        load_spec(doc)
    return [str(p) for p in e.value.problems]


def test_yaml_and_json_load_the_same_spec():
    spec = load_spec(GOOD_YAML)
    as_json = json.dumps(spec.model_dump(mode="json"))
    assert load_spec(as_json) == spec
    assert spec.node("infer").timeout_seconds == 5400
    assert spec.node("infer").upstream() == ["preprocess"]
    assert spec.node("preprocess").partitioned_input().name == "images"
    assert spec.experiment_name == "images"


def test_parameters_resolve_with_types_kept():
    spec = load_spec(GOOD_YAML)
    assert resolve_parameters(spec.node("infer"), spec.parameters) == {
        "threshold": 0.5,
        "label": "t=0.5",
    }
    assert resolve_parameters(spec.node("preprocess"), spec.parameters) == {"size": 224}
    spec2 = apply_overrides(spec, {"threshold": 0.9})
    assert resolve_parameters(spec2.node("infer"), spec2.parameters)["threshold"] == 0.9


def test_unknown_override_is_refused_with_suggestion():
    spec = load_spec(GOOD_YAML)
    with pytest.raises(SpecInvalid) as e:
        apply_overrides(spec, {"threshhold": 1})
    assert str(e.value.problems[0]) == (
        "parameters.threshhold: unknown DAG parameter (did you mean 'threshold'?)"
    )


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"name": "d", "nodes": [node("a"), node("a")]},
            "nodes[1].id: duplicate node id 'a' (also nodes[0])",
        ),
        (
            {
                "name": "d",
                "nodes": [
                    node("a"),
                    node("b", inputs=[{"name": "x", "source": {"node": "prepocess"}}]),
                    node("preprocess"),
                ],
            },
            "nodes[1].inputs[0].source.node: unknown node 'prepocess' (did you mean 'preprocess'?)",
        ),
        (
            {"name": "d", "nodes": [node("a", depends_on=["zzz"])]},
            "nodes[0].depends_on[0]: unknown node 'zzz'",
        ),
        (
            {"name": "d", "nodes": [node("a", depends_on=["a"])]},
            "nodes[0].depends_on[0]: a node cannot depend on itself",
        ),
        (
            {"name": "d", "nodes": [node("a", inputs=[{"name": "x", "source": {"node": "a"}}])]},
            "nodes[0].inputs[0].source.node: a node cannot read its own output",
        ),
        (
            {
                "name": "d",
                "nodes": [
                    node("a", depends_on=["c"]),
                    node("b", depends_on=["a"]),
                    node("c", depends_on=["b"]),
                ],
            },
            "nodes: cycle: a -> b -> c -> a",
        ),
        (
            {"name": "d", "nodes": [node("a", parallelism=0)]},
            "nodes[0].parallelism: Input should be greater than or equal to 1",
        ),
        (
            {"name": "d", "nodes": [node("a", parallelism=5000)]},
            "nodes[0].parallelism: 5000 exceeds the maximum 1000",
        ),
        (
            {
                "name": "d",
                "nodes": [
                    node(
                        "a", inputs=[{"name": "x", "source": {"uri": "/d"}, "partition": "by_row"}]
                    )
                ],
            },
            "nodes[0].inputs[0].partition: Input should be 'broadcast', 'by_file' or 'by_directory'",
        ),
        (
            {
                "name": "d",
                "nodes": [
                    node(
                        "a",
                        inputs=[
                            {"name": "x", "source": {"uri": "/d"}, "partition": "by_file"},
                            {"name": "y", "source": {"uri": "/e"}, "partition": "by_directory"},
                        ],
                    )
                ],
            },
            "nodes[0].inputs: at most one input may be partitioned; inputs [0], [1] are (set the others to 'broadcast')",
        ),
        (
            {
                "name": "d",
                "nodes": [node("a", inputs=[{"name": "x", "source": {"uri": "/d", "node": "b"}}])],
            },
            "nodes[0].inputs[0].source: give exactly one of 'node' (an upstream node id) or 'uri'",
        ),
        (
            {"name": "d", "nodes": [node("a", parameters={"t": "${thresh}"})]},
            "nodes[0].parameters.t: unknown DAG parameter '${thresh}'",
        ),
        (
            {"name": "d", "nodes": [node("a", colour="red")]},
            "nodes[0].colour: unknown field 'colour'",
        ),
        (
            {"name": "d", "nodes": [node("a", timeout="soon")]},
            "nodes[0].timeout: invalid duration 'soon': use e.g. '90s', '30m', '1h30m', '2d'",
        ),
        (
            {"name": "d", "nodes": [node("Bad Id")]},
            "nodes[0].id: String should match pattern '^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$'",
        ),
        (
            {"name": "d", "nodes": []},
            "nodes: List should have at least 1 item after validation, not 0",
        ),
        (
            {"name": "d", "nodes": [{"id": "a", "project": {"uri": "/r", "subdirectory": "../x"}}]},
            "nodes[0].project.subdirectory: must be a relative path inside the repository",
        ),
        ({"nodes": [node("a")]}, "name: Field required"),
    ],
)
def test_each_bad_spec_names_path_and_reason(doc, expected):
    assert expected in problems(doc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed", "invalid YAML at line 1"),
        ('{"name": "d",', "invalid JSON at line 1"),
        (b"name: \xff\xfe", "document is not UTF-8 text"),
        ("- just\n- a list", "a DAG spec must be a mapping with 'name' and 'nodes'"),
        ("x" * 1_000_001, "document larger than 1000000 bytes"),
    ],
)
def test_unreadable_documents(text, expected):
    with pytest.raises(SpecInvalid) as e:
        load_spec(text)
    assert str(e.value.problems[0]).startswith(expected)


def test_every_problem_is_reported_at_once():
    found = problems(
        {"name": "d", "nodes": [node("a", depends_on=["x"]), node("a", parallelism=2000)]}
    )
    assert len(found) == 3


def test_find_cycle_on_acyclic_graph_is_empty():
    assert find_cycle(load_spec(GOOD_YAML)) == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("1h30m", 5400), ("2d", 172800), ("12", 12), (1.5, 1.5)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "0s", "1x", "-5", "h"])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_single_project_spec_is_a_valid_one_node_dag():
    from parallels.projects import dag_name, node_id, single_project_spec
    from parallels.spec import ProjectRef
    from parallels.validation import load_spec

    ref = ProjectRef(uri="https://git.example/org/My Repo.git/", subdirectory="steps/train")
    assert dag_name(ref) == "My-Repo-train"
    assert dag_name(ProjectRef(uri="/")) == "project"
    assert node_id("Train Model!") == "train-model" and node_id("___") == "main"
    raw = single_project_spec(ref, entry_point="Train Model!", parameters={"a": 1}, retries=2)
    spec = load_spec(raw)
    [n] = spec.nodes
    assert (spec.name, n.id, n.entry_point, n.parameters, n.retries, n.parallelism) == (
        "My-Repo-train",
        "train-model",
        "Train Model!",
        {"a": 1},
        2,
        1,
    )
    assert n.project.subdirectory == "steps/train"


def test_numbers_and_flags_are_strict():
    import pytest

    from parallels.errors import SpecInvalid
    from parallels.validation import load_spec

    base = {"name": "d", "nodes": [{"id": "a", "project": {"uri": "r"}}]}
    for field, bad in (("retries", False), ("parallelism", "4"), ("parallelism", 2.5)):
        doc = {**base, "nodes": [{**base["nodes"][0], field: bad}]}
        with pytest.raises(SpecInvalid, match=field):
            load_spec(doc)
    with pytest.raises(SpecInvalid, match="fail_fast"):
        load_spec({**base, "fail_fast": "yes"})


def test_unknown_cluster_is_refused_only_where_the_clusters_are_known():
    doc = {"name": "d", "nodes": [node("a"), node("b", cluster="gpu-onpram")]}
    assert load_spec(doc).nodes[1].cluster == "gpu-onpram"  # offline: no list to check against
    with pytest.raises(SpecInvalid) as e:
        load_spec(doc, clusters=["local", "gpu-onprem"])
    [problem] = e.value.problems
    assert problem.path == "nodes[1].cluster"
    assert "unknown cluster 'gpu-onpram' (did you mean 'gpu-onprem'?)" in problem.message
    assert "runs on: local, gpu-onprem" in problem.message
