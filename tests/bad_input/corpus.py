"""Invalid DAG documents and API payloads, each with where the problem is and what it says.

A case is (id, document, path, reason): `document` is a Python object (sent as JSON/YAML) or raw
bytes (sent as they are); `path` is the problem's path in the document ("" for the document
itself); `reason` is a fragment the message must contain.
"""

from __future__ import annotations

from typing import Any

A = {"id": "a", "project": {"uri": "/r"}}
B = {"id": "b", "project": {"uri": "/r"}}


def dag(*nodes: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"name": "d", "nodes": list(nodes) or [A], **top}


def with_a(**fields: Any) -> dict[str, Any]:
    return dag({**A, **fields})


def nested(depth: int) -> Any:
    doc: Any = "x"
    for _ in range(depth):
        doc = [doc]
    return doc


SPECS: list[tuple[str, Any, str, str]] = [
    ("cycle", dag({**A, "depends_on": ["b"]}, {**B, "depends_on": ["a"]}), "nodes", "cycle"),
    ("self-loop", with_a(depends_on=["a"]), "nodes[0].depends_on", "itself"),
    (
        "unknown-dependency",
        with_a(depends_on=["ghost"]),
        "nodes[0].depends_on[0]",
        "unknown node 'ghost'",
    ),
    (
        "unknown-input-node",
        with_a(inputs=[{"name": "i", "source": {"node": "ghost"}}]),
        "nodes[0].inputs[0].source.node",
        "unknown node 'ghost'",
    ),
    ("duplicate-ids", dag(A, dict(A)), "nodes[1].id", "duplicate"),
    ("missing-name", {"nodes": [A]}, "name", "required"),
    ("missing-nodes", {"name": "d"}, "nodes", "required"),
    ("empty-nodes", {"name": "d", "nodes": []}, "nodes", "at least 1"),
    ("nodes-not-a-list", {"name": "d", "nodes": {"a": A}}, "nodes", "list"),
    ("name-not-a-string", {"name": 5, "nodes": [A]}, "name", "string"),
    ("name-bad-characters", {"name": "bad name!", "nodes": [A]}, "name", "pattern"),
    ("id-bad-characters", dag({**A, "id": "A B"}), "nodes[0].id", "pattern"),
    ("id-too-long", dag({**A, "id": "a" * 80}), "nodes[0].id", "pattern"),
    (
        "parallelism-zero",
        with_a(parallelism=0),
        "nodes[0].parallelism",
        "greater than or equal to 1",
    ),
    (
        "parallelism-negative",
        with_a(parallelism=-3),
        "nodes[0].parallelism",
        "greater than or equal to 1",
    ),
    ("parallelism-huge", with_a(parallelism=10**9), "nodes[0].parallelism", "exceeds the maximum"),
    ("parallelism-string", with_a(parallelism="4"), "nodes[0].parallelism", "integer"),
    ("parallelism-fraction", with_a(parallelism=2.5), "nodes[0].parallelism", "integer"),
    ("parallelism-bool", with_a(parallelism=True), "nodes[0].parallelism", "integer"),
    (
        "partition-mode-unknown",
        with_a(inputs=[{"name": "i", "source": {"uri": "/d"}, "partition": "by_magic"}]),
        "nodes[0].inputs[0].partition",
        "by_file",
    ),
    ("node-field-typo", with_a(paralelism=2), "nodes[0].paralelism", "did you mean 'parallelism'"),
    ("top-field-typo", dag(nodez=[]), "nodez", "did you mean 'nodes'"),
    ("retries-over", with_a(retries=21), "nodes[0].retries", "less than or equal to 20"),
    ("retries-negative", with_a(retries=-1), "nodes[0].retries", "greater than or equal to 0"),
    ("timeout-words", with_a(timeout="whenever"), "nodes[0].timeout", "duration"),
    ("project-missing", dag({"id": "a"}), "nodes[0].project", "required"),
    (
        "project-uri-empty",
        dag({"id": "a", "project": {"uri": ""}}),
        "nodes[0].project.uri",
        "at least 1",
    ),
    (
        "project-uri-too-long",
        dag({"id": "a", "project": {"uri": "/r" * 1500}}),
        "nodes[0].project.uri",
        "at most",
    ),
    (
        "subdirectory-escapes",
        dag({"id": "a", "project": {"uri": "/r", "subdirectory": "../up"}}),
        "nodes[0].project.subdirectory",
        "relative path",
    ),
    (
        "subdirectory-absolute",
        dag({"id": "a", "project": {"uri": "/r", "subdirectory": "/etc"}}),
        "nodes[0].project.subdirectory",
        "relative path",
    ),
    (
        "source-node-and-uri",
        dag(B, {**A, "inputs": [{"name": "i", "source": {"node": "b", "uri": "/d"}}]}),
        "nodes[1].inputs[0].source",
        "exactly one",
    ),
    (
        "source-neither",
        with_a(inputs=[{"name": "i", "source": {}}]),
        "nodes[0].inputs[0].source",
        "exactly one",
    ),
    (
        "input-name-bad",
        with_a(inputs=[{"name": "bad name", "source": {"uri": "/d"}}]),
        "nodes[0].inputs[0].name",
        "pattern",
    ),
    (
        "two-partitioned-inputs",
        with_a(
            inputs=[
                {"name": "i", "source": {"uri": "/d"}, "partition": "by_file"},
                {"name": "j", "source": {"uri": "/e"}, "partition": "by_file"},
            ]
        ),
        "nodes[0].inputs",
        "at most one input may be partitioned",
    ),
    ("parameter-list", with_a(parameters={"p": [1, 2]}), "nodes[0].parameters.p", "valid"),
    ("parameter-mapping", with_a(parameters={"p": {"q": 1}}), "nodes[0].parameters.p", "valid"),
    (
        "parameter-reference-unknown",
        with_a(parameters={"p": "${missing}"}),
        "nodes[0].parameters.p",
        "missing",
    ),
    (
        "gpu-negative",
        with_a(resources={"gpu": -1}),
        "nodes[0].resources.gpu",
        "greater than or equal to 0",
    ),
    ("gpu-word", with_a(resources={"gpu": "one"}), "nodes[0].resources.gpu", "integer"),
    ("env-manager-unknown", with_a(env_manager="conda"), "nodes[0].env_manager", "virtualenv"),
    ("cluster-bad-name", with_a(cluster="Bad Cluster"), "nodes[0].cluster", "pattern"),
    ("fail-fast-word", dag(fail_fast="yes"), "fail_fast", "boolean"),
    ("description-too-long", dag(description="x" * 10_001), "description", "at most 10000"),
    (
        "too-many-nodes",
        {"name": "d", "nodes": [{"id": f"n{i}", "project": {"uri": "/r"}} for i in range(501)]},
        "nodes",
        "at most 500",
    ),
    ("experiment-empty", dag(experiment=""), "experiment", "at least 1"),
    ("deeply-nested-value", with_a(parameters={"p": nested(50)}), "nodes[0].parameters.p", "valid"),
    (
        "deeply-nested-json",
        b'{"name": "d", "nodes": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
        "",
        "nested too deeply",
    ),
    (
        "deeply-nested-yaml",
        b"name: d\nnodes: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "",
        "nested too deeply",
    ),
    ("document-is-a-list", [A], "", "mapping"),
    ("document-is-a-scalar", "just text", "", "mapping"),
    ("yaml-unclosed", b"name: d\nnodes: [\n", "", "invalid YAML"),
    ("yaml-bad-indent", b"name: d\nnodes:\n  - id: a\n   project: {uri: /r}\n", "", "invalid YAML"),
    ("json-broken", b'{"name": "d", "nodes": [}', "", "invalid JSON"),
    ("not-utf8", b"name: d\nnodes: [\xff\xfe]\n", "", "not UTF-8"),
    ("empty-document", b"", "", "mapping"),
    (
        "oversized-document",
        b"name: d\ndescription: " + b"x" * 2_100_000 + b"\nnodes: []\n",
        "",
        "larger than",
    ),
]

# (id, method, path, body or raw bytes, status, reason)
PAYLOADS: list[tuple[str, str, str, Any, int, str]] = [
    ("run-neither-template-nor-spec", "POST", "/api/v1/runs", {}, 422, "exactly one of"),
    ("run-both", "POST", "/api/v1/runs", {"template": "t", "spec": dag()}, 422, "exactly one of"),
    ("run-unknown-template", "POST", "/api/v1/runs", {"template": "nope"}, 404, "nope"),
    ("run-template-number", "POST", "/api/v1/runs", {"template": 5}, 422, "template"),
    (
        "run-parameter-list",
        "POST",
        "/api/v1/runs",
        {"spec": dag(), "parameters": {"p": [1]}},
        422,
        "parameters",
    ),
    (
        "run-parameter-unknown",
        "POST",
        "/api/v1/runs",
        {"spec": dag(), "parameters": {"nope": 1}},
        422,
        "nope",
    ),
    (
        "run-version-bool",
        "POST",
        "/api/v1/runs",
        {"template": "t", "version": True},
        422,
        "version",
    ),
    ("run-unknown-field", "POST", "/api/v1/runs", {"spec": dag(), "priority": 1}, 422, "priority"),
    (
        "run-bad-spec",
        "POST",
        "/api/v1/runs",
        {"spec": with_a(parallelism=0)},
        422,
        "nodes[0].parallelism",
    ),
    ("template-not-json", "POST", "/api/v1/templates", b"{not json", 400, "JSON"),
    ("template-json-list", "POST", "/api/v1/templates", [1, 2], 422, "body"),
    ("template-no-spec", "POST", "/api/v1/templates", {}, 422, "spec"),
    ("template-spec-string", "POST", "/api/v1/templates", {"spec": "name: d"}, 422, "spec"),
    ("template-not-utf8", "POST", "/api/v1/templates", b'{"spec": "\xff"}', 400, "UTF-8"),
    (
        "template-too-large",
        "POST",
        "/api/v1/templates",
        b'{"spec": "' + b"x" * 1_100_000 + b'"}',
        413,
        "bytes",
    ),
    ("list-limit-zero", "GET", "/api/v1/templates?limit=0", None, 422, "limit"),
    ("list-limit-word", "GET", "/api/v1/templates?limit=ten", None, 422, "limit"),
    ("list-offset-negative", "GET", "/api/v1/templates?offset=-1", None, 422, "offset"),
    ("list-unknown-query", "GET", "/api/v1/templates?sort=name", None, 422, "sort"),
    ("runs-status-unknown", "GET", "/api/v1/runs?status=weird", None, 422, "status"),
    ("project-uri-empty", "POST", "/api/v1/project-runs", {"uri": ""}, 422, "uri"),
    (
        "project-timeout-words",
        "POST",
        "/api/v1/project-runs",
        {"uri": "x", "timeout": "soon"},
        422,
        "duration",
    ),
    ("schedule-no-timing", "POST", "/api/v1/schedules", {"id": "s", "template": "t"}, 422, "cron"),
    ("template-delete-missing", "DELETE", "/api/v1/templates/nope", None, 404, "nope"),
    ("run-cancel-missing", "POST", "/api/v1/runs/nope/cancel", None, 404, "nope"),
    ("wrong-method", "PATCH", "/api/v1/templates", {}, 405, "method"),
]
