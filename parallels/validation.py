"""Loading and validating DAG specs, with readable error paths. Pure."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from parallels.errors import SpecInvalid
from parallels.spec import DagSpec, NodeSpec, Scalar

DEFAULT_MAX_PARALLELISM = 1000
MAX_DOCUMENT_BYTES = 1_000_000
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}")


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def _fmt_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_document(data: str | bytes) -> Any:
    """YAML or JSON text -> Python objects (JSON is YAML, but JSON errors read better)."""
    if isinstance(data, bytes):
        if len(data) > MAX_DOCUMENT_BYTES:
            raise SpecInvalid([Problem("", f"document larger than {MAX_DOCUMENT_BYTES} bytes")])
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SpecInvalid([Problem("", f"document is not UTF-8 text ({e.reason})")]) from e
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SpecInvalid([Problem("", f"document larger than {MAX_DOCUMENT_BYTES} bytes")])
    if data.lstrip().startswith(("{", "[")):
        try:
            return json.loads(data)
        except json.JSONDecodeError as e:
            raise SpecInvalid([Problem("", f"invalid JSON at line {e.lineno}: {e.msg}")]) from e
        except RecursionError as e:
            raise SpecInvalid([Problem("", "document nested too deeply")]) from e
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "syntax error"
        raise SpecInvalid([Problem("", f"invalid YAML{where}: {problem}")]) from e
    except RecursionError as e:
        raise SpecInvalid([Problem("", "document nested too deeply")]) from e


def load_spec(
    data: Any,
    *,
    max_parallelism: int = DEFAULT_MAX_PARALLELISM,
    clusters: Collection[str] | None = None,
) -> DagSpec:
    """Parse (text) and fully validate a DAG spec; raises SpecInvalid listing every problem.

    `clusters`: the execution targets a deployment knows; None skips that check (offline).
    """
    doc = parse_document(data) if isinstance(data, str | bytes) else data
    if not isinstance(doc, Mapping):
        raise SpecInvalid([Problem("", "a DAG spec must be a mapping with 'name' and 'nodes'")])
    try:
        spec = DagSpec.model_validate(doc)
    except ValidationError as e:
        problems = [
            Problem(_fmt_loc(err["loc"]), _error_message(err))
            for err in e.errors(include_url=False)
        ]
        raise SpecInvalid(problems) from None
    problems = check_graph(spec, max_parallelism=max_parallelism)
    if clusters is not None:
        problems.extend(check_clusters(spec, clusters))
    if problems:
        raise SpecInvalid(problems)
    return spec


def check_clusters(spec: DagSpec, clusters: Collection[str]) -> list[Problem]:
    known = dict.fromkeys(clusters)
    return [
        Problem(
            f"nodes[{i}].cluster",
            f"unknown cluster '{node.cluster}'{_suggest(node.cluster, known)}; "
            f"this deployment runs on: {', '.join(clusters)}",
        )
        for i, node in enumerate(spec.nodes)
        if node.cluster not in known
    ]


def _clean_msg(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _fields_at(loc: tuple[int | str, ...]) -> dict[str, None]:
    """The field names the model at `loc` (a pydantic error location) accepts."""
    from parallels import spec as models

    where = tuple(p for p in loc if isinstance(p, str))
    by_place: dict[tuple[str, ...], type[BaseModel]] = {
        (): models.DagSpec,
        ("nodes",): models.NodeSpec,
        ("nodes", "project"): models.ProjectRef,
        ("nodes", "inputs"): models.NodeInput,
        ("nodes", "inputs", "source"): models.InputSource,
        ("nodes", "resources"): models.Resources,
    }
    model = by_place.get(where)
    return dict.fromkeys(model.model_fields) if model else {}


def _error_message(err: Any) -> str:
    if err["type"] == "extra_forbidden" and err["loc"] and isinstance(err["loc"][-1], str):
        name = err["loc"][-1]
        return f"unknown field '{name}'{_suggest(name, _fields_at(err['loc'][:-1]), 0.7)}"
    return _clean_msg(err["msg"])


def check_graph(spec: DagSpec, *, max_parallelism: int = DEFAULT_MAX_PARALLELISM) -> list[Problem]:
    """Checks that need the whole document: references, cycles, bounds."""
    problems: list[Problem] = []
    ids: dict[str, int] = {}
    for i, node in enumerate(spec.nodes):
        if node.id in ids:
            problems.append(
                Problem(
                    f"nodes[{i}].id", f"duplicate node id '{node.id}' (also nodes[{ids[node.id]}])"
                )
            )
        else:
            ids[node.id] = i
    for i, node in enumerate(spec.nodes):
        problems.extend(_check_node(spec, node, f"nodes[{i}]", ids, max_parallelism))
    if not any(p.message.startswith("unknown node") for p in problems):
        cycle = find_cycle(spec)
        if cycle:
            problems.append(Problem("nodes", "cycle: " + " -> ".join(cycle)))
    return problems


def _check_node(
    spec: DagSpec, node: NodeSpec, at: str, ids: Mapping[str, int], max_parallelism: int
) -> list[Problem]:
    problems: list[Problem] = []
    if node.parallelism > max_parallelism:
        problems.append(
            Problem(
                f"{at}.parallelism", f"{node.parallelism} exceeds the maximum {max_parallelism}"
            )
        )
    names: set[str] = set()
    partitioned: list[int] = []
    for j, inp in enumerate(node.inputs):
        ip = f"{at}.inputs[{j}]"
        if inp.name in names:
            problems.append(Problem(f"{ip}.name", f"duplicate input name '{inp.name}'"))
        names.add(inp.name)
        if inp.partition != "broadcast":
            partitioned.append(j)
        src = inp.source.node
        if src is not None:
            if src == node.id:
                problems.append(Problem(f"{ip}.source.node", "a node cannot read its own output"))
            elif src not in ids:
                problems.append(
                    Problem(f"{ip}.source.node", f"unknown node '{src}'{_suggest(src, ids)}")
                )
    if len(partitioned) > 1:
        problems.append(
            Problem(
                f"{at}.inputs",
                "at most one input may be partitioned; inputs "
                + ", ".join(f"[{j}]" for j in partitioned)
                + " are (set the others to 'broadcast')",
            )
        )
    for j, dep in enumerate(node.depends_on):
        if dep == node.id:
            problems.append(Problem(f"{at}.depends_on[{j}]", "a node cannot depend on itself"))
        elif dep not in ids:
            problems.append(
                Problem(f"{at}.depends_on[{j}]", f"unknown node '{dep}'{_suggest(dep, ids)}")
            )
    for key, value in node.parameters.items():
        if isinstance(value, str):
            for ref in _REF.findall(value):
                if ref not in spec.parameters:
                    problems.append(
                        Problem(
                            f"{at}.parameters.{key}",
                            f"unknown DAG parameter '${{{ref}}}'{_suggest(ref, spec.parameters)}",
                        )
                    )
    return problems


def _suggest(name: str, known: Mapping[str, Any], cutoff: float = 0.6) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff)
    return f" (did you mean '{close[0]}'?)" if close else ""


def find_cycle(spec: DagSpec) -> list[str]:
    """A cycle as a list of node ids (first == last), or [] if the graph is acyclic."""
    deps = {n.id: n.upstream() for n in spec.nodes}
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(deps, white)
    stack: list[str] = []

    def visit(n: str) -> list[str]:
        color[n] = grey
        stack.append(n)
        for d in deps.get(n, []):
            if d not in color:
                continue
            if color[d] == grey:
                return [*stack[stack.index(d) :], d]
            if color[d] == white:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        color[n] = black
        return []

    for n in deps:
        if color[n] == white:
            found = visit(n)
            if found:
                # Report in data-flow order (upstream first).
                return list(reversed(found))
    return []


def apply_overrides(spec: DagSpec, overrides: Mapping[str, Scalar]) -> DagSpec:
    """Run-level parameter overrides; unknown names are refused."""
    unknown = [k for k in overrides if k not in spec.parameters]
    if unknown:
        raise SpecInvalid(
            [
                Problem(f"parameters.{k}", f"unknown DAG parameter{_suggest(k, spec.parameters)}")
                for k in unknown
            ]
        )
    return spec.model_copy(update={"parameters": {**spec.parameters, **overrides}})


def resolve_parameters(node: NodeSpec, dag_params: Mapping[str, Scalar]) -> dict[str, Scalar]:
    """Substitute ${name} references; a value that is exactly one reference keeps its type."""
    out: dict[str, Scalar] = {}
    for key, value in node.parameters.items():
        if isinstance(value, str):
            whole = _REF.fullmatch(value)
            if whole:
                out[key] = dag_params[whole.group(1)]
            else:
                out[key] = _REF.sub(lambda m: _as_text(dag_params[m.group(1)]), value)
        else:
            out[key] = value
    return out


def _as_text(v: Scalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
