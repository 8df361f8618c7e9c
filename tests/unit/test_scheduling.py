from parallels import scheduling
from parallels.validation import load_spec

DIAMOND = load_spec(
    {
        "name": "diamond",
        "nodes": [
            {"id": "a", "project": {"uri": "/r"}},
            {
                "id": "b",
                "project": {"uri": "/r"},
                "inputs": [{"name": "i", "source": {"node": "a"}}],
            },
            {"id": "c", "project": {"uri": "/r"}, "depends_on": ["a"]},
            {"id": "d", "project": {"uri": "/r"}, "depends_on": ["b", "c"]},
            {"id": "e", "project": {"uri": "/r"}},
        ],
    }
)
DEPS = scheduling.dependencies(DIAMOND)


def states(**kw):
    s = dict.fromkeys(DEPS, "pending")
    s.update(kw)
    return s


def test_roots_are_ready_first():
    assert scheduling.ready_nodes(DEPS, states()) == ["a", "e"]


def test_node_waits_for_all_dependencies():
    assert scheduling.ready_nodes(DEPS, states(a="succeeded", e="running")) == ["b", "c"]
    assert (
        scheduling.ready_nodes(DEPS, states(a="succeeded", b="succeeded", c="running", e="running"))
        == []
    )
    assert scheduling.ready_nodes(
        DEPS, states(a="succeeded", b="succeeded", c="succeeded", e="succeeded")
    ) == ["d"]


def test_failure_blocks_only_downstream():
    s = states(a="succeeded", b="failed", c="running", e="running")
    assert scheduling.blocked_nodes(DEPS, s) == ["d"]
    s = states(a="failed")
    assert scheduling.blocked_nodes(DEPS, s) == ["b", "c", "d"]
    assert "e" in scheduling.ready_nodes(DEPS, s)


def test_topological_order_is_stable():
    assert scheduling.topological_order(DEPS) == ["a", "e", "b", "c", "d"]


def test_dag_status():
    assert (
        scheduling.dag_status(
            states(a="succeeded", b="succeeded", c="succeeded", d="succeeded", e="succeeded")
        )
        == "succeeded"
    )
    assert (
        scheduling.dag_status(
            states(a="failed", b="skipped", c="skipped", d="skipped", e="succeeded")
        )
        == "failed"
    )
    assert scheduling.dag_status(states(a="cancelled")) == "cancelled"
    assert scheduling.dag_status(states(a="running")) == "running"
