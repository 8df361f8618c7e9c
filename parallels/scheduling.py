"""Ready-set scheduling of a DAG. Pure: the DAG workflow drives it, tests call it directly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from parallels.spec import DagSpec, RunStatus

TERMINAL: frozenset[RunStatus] = frozenset({"succeeded", "failed", "cancelled", "skipped"})


def dependencies(spec: DagSpec) -> dict[str, list[str]]:
    return {n.id: n.upstream() for n in spec.nodes}


def ready_nodes(deps: Mapping[str, Sequence[str]], states: Mapping[str, RunStatus]) -> list[str]:
    """Pending nodes whose every dependency succeeded, in spec order."""
    return [
        n
        for n, ups in deps.items()
        if states[n] == "pending" and all(states[u] == "succeeded" for u in ups)
    ]


def blocked_nodes(deps: Mapping[str, Sequence[str]], states: Mapping[str, RunStatus]) -> list[str]:
    """Pending nodes that can never run because a dependency did not succeed."""
    out: list[str] = []
    changed = True
    blocked: set[str] = set()
    while changed:
        changed = False
        for n, ups in deps.items():
            if n in blocked or states[n] != "pending":
                continue
            if any(u in blocked or states[u] in TERMINAL - {"succeeded"} for u in ups):
                blocked.add(n)
                out.append(n)
                changed = True
    return out


def topological_order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Kahn's algorithm, stable in spec order; assumes the graph was validated acyclic."""
    remaining = {n: set(ups) for n, ups in deps.items()}
    order: list[str] = []
    while remaining:
        layer = [n for n, ups in remaining.items() if not ups]
        if not layer:
            raise ValueError("graph has a cycle")
        for n in layer:
            del remaining[n]
            order.append(n)
        for ups in remaining.values():
            ups.difference_update(layer)
    return order


def dag_status(states: Mapping[str, RunStatus]) -> RunStatus:
    values = set(states.values())
    if "failed" in values:
        return "failed"
    if "cancelled" in values:
        return "cancelled"
    if values <= {"succeeded"}:
        return "succeeded"
    if values <= TERMINAL:
        return "failed"
    return "running"
