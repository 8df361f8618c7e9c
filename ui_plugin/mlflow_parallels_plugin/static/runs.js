// Runs: the list with filters, starting a run with parameter overrides, and a run's live graph.
import * as api from "./api.js";
import { h, notice, duration, scalar } from "./dom.js";
import { NODE_W, NODE_H, layout, drawEdges, svgEl } from "./graph.js";

const STATUSES = ["running", "succeeded", "failed", "cancelled", "terminated"];
let active = null; // what to stop when the page changes (timers, the event stream)

export function leave() {
  if (active) active.stop();
  active = null;
}

function badge(status) {
  return h(`span.badge.${status}`, { "data-status": status }, status);
}

function time(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// MLflow's own pages, on the same server as this one.
function mlflowRun(experimentId, runId) {
  return experimentId && runId ? `/#/experiments/${experimentId}/runs/${runId}` : null;
}

// ---- list ------------------------------------------------------------------------------------

export async function showList(view, params) {
  const template = h("select", { name: "template", "aria-label": "filter by template" }, h("option", { value: "" }, "all templates"));
  const status = h("select", { name: "status", "aria-label": "filter by status" }, h("option", { value: "" }, "any status"),
    STATUSES.map((s) => h("option", { value: s, selected: params.status === s }, s)));
  const body = h("tbody");
  const apply = () => {
    const q = new URLSearchParams();
    if (template.value) q.set("template", template.value);
    if (status.value) q.set("status", status.value);
    location.hash = `#/runs${q.toString() ? `?${q}` : ""}`;
  };
  template.onchange = apply;
  status.onchange = apply;
  view.replaceChildren(
    h("div.toolbar", {}, h("h2", {}, "Runs"), template, status,
      h("button.primary", { onclick: () => startForm(view, template.value) }, "Start a run")),
    h("div", { id: "start-form" }),
    h("table.runs", {}, h("thead", {}, h("tr", {}, ["run", "DAG", "status", "started", "took", "owner"].map((c) => h("th", {}, c)))), body));
  const load = async () => {
    const q = new URLSearchParams({ limit: "100" });
    if (params.template) q.set("template", params.template);
    if (params.status) q.set("status", params.status);
    const runs = (await api.get(`/runs?${q}`)).items;
    body.replaceChildren(...runs.map((r) => h("tr", { dataset: { run: r.id } },
      h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(r.id)}` }, r.id)),
      h("td", {}, r.dag || ""), h("td", {}, badge(r.status)), h("td", {}, time(r.started_at)),
      h("td", {}, duration(r.started_at, r.closed_at)), h("td", {}, r.owner || ""))));
    if (!runs.length) body.append(h("tr", {}, h("td", { colspan: "6", class: "empty" }, "no runs yet")));
  };
  const timer = setInterval(() => load().catch(() => {}), 5000);
  active = { stop: () => clearInterval(timer) };
  try {
    const page = await api.get("/templates?limit=500");
    template.append(...page.items.map((t) => h("option", { value: t.name, selected: params.template === t.name }, t.name)));
    await load();
  } catch (e) {
    notice(e.message, "error");
  }
  if (params.start) startForm(view, params.start);
}

async function startForm(view, preselected) {
  const box = view.querySelector("#start-form");
  const page = await api.get("/templates?limit=500");
  const template = h("select", { name: "start-template", "aria-label": "template to run" },
    page.items.map((t) => h("option", { value: t.name, selected: t.name === preselected }, t.name)));
  const version = h("select", { name: "start-version", "aria-label": "version" });
  const rows = h("div.params");
  const runName = h("input", { type: "text", name: "run_name", placeholder: "run name (optional)" });
  const fill = async () => {
    if (!template.value) return;
    const versions = await api.get(`/templates/${encodeURIComponent(template.value)}/versions`);
    version.replaceChildren(...versions.items.slice().reverse().map((v) => h("option", { value: v.version }, `version ${v.version}`)));
    const chosen = versions.items.find((v) => String(v.version) === version.value) || versions.items.at(-1);
    rows.replaceChildren(...Object.entries(chosen.spec.parameters || {}).map(([k, v]) =>
      h("label.field.inline", {}, h("span", {}, k), h("input", { type: "text", name: `param-${k}`, "data-param": k, "data-type": typeof v, value: String(v) }))));
    if (!rows.children.length) rows.append(h("small", {}, "this DAG has no parameters"));
  };
  template.onchange = fill;
  const start = async () => {
    const parameters = {};
    for (const input of rows.querySelectorAll("input[data-param]")) {
      const v = input.value.trim();
      parameters[input.dataset.param] = input.dataset.type === "string" ? v : scalar(v);
    }
    try {
      const run = await api.post("/runs", { template: template.value, version: Number(version.value), parameters, ...(runName.value.trim() ? { run_name: runName.value.trim() } : {}) });
      location.hash = `#/runs/${encodeURIComponent(run.id)}`;
    } catch (e) {
      notice(`not started: ${e.message}${e.problems.length ? ` (${e.problems.map((p) => `${p.path}: ${p.message}`).join("; ")})` : ""}`, "error");
    }
  };
  box.replaceChildren(h("div.card.start", {}, h("h3", {}, "Start a run"),
    h("div.row", {}, template, version, runName), rows,
    h("div.row", {}, h("button.primary", { id: "start-run", onclick: start }, "Start"), h("button", { onclick: () => box.replaceChildren() }, "Close"))));
  if (!page.items.length) box.querySelector(".start").append(h("p", {}, "Save a DAG in the designer first."));
  await fill();
}

// ---- one run ---------------------------------------------------------------------------------

export async function showRun(view, id) {
  const header = h("div.run-head");
  const graph = h("div.canvas.run-graph", { id: "run-graph" });
  graph.append(svgEl("svg", { class: "edges" }));
  view.replaceChildren(h("div.toolbar", {}, h("a", { href: "#/runs" }, "← runs"), h("h2", {}, id)), header, graph, h("div", { id: "node-errors" }));
  const controller = new AbortController();
  let run = null;
  const ticker = setInterval(() => run && run.status === "running" && renderGraph(graph, run), 1000);
  active = { stop: () => { controller.abort(); clearInterval(ticker); } };
  const render = (r) => {
    run = r;
    renderHeader(header, r);
    renderGraph(graph, r);
  };
  try {
    render(await api.get(`/runs/${encodeURIComponent(id)}`));
  } catch (e) {
    header.replaceChildren(h("p.error", {}, e.message));
    return;
  }
  // Follow the event stream; reconnect while the run goes on (a proxy or the API may drop it).
  while (!controller.signal.aborted && run.status === "running") {
    try {
      for await (const [event, data] of api.events(`/runs/${encodeURIComponent(id)}/events`, controller.signal)) {
        if (event === "progress") render(data);
        if (event === "end") break;
      }
      render(await api.get(`/runs/${encodeURIComponent(id)}`));
    } catch (e) {
      if (controller.signal.aborted) return;
      await new Promise((r) => setTimeout(r, 2000));
      try { render(await api.get(`/runs/${encodeURIComponent(id)}`)); } catch { /* retried next turn */ }
    }
  }
}

function renderHeader(box, r) {
  const p = r.progress || {};
  const links = [
    r.retry_of && h("a", { href: `#/runs/${encodeURIComponent(r.retry_of)}` }, `retry of ${r.retry_of}`),
    mlflowRun(p.experiment_id, r.mlflow_run_id) && h("a", { href: mlflowRun(p.experiment_id, r.mlflow_run_id), "data-link": "mlflow" }, "MLflow run"),
    r.links && r.links.temporal && h("a", { href: r.links.temporal, target: "_blank", rel: "noopener", "data-link": "temporal" }, "Temporal"),
  ];
  const actions = [];
  if (r.status === "running") actions.push(h("button.danger", { id: "cancel-run", onclick: async () => {
    try { await api.post(`/runs/${encodeURIComponent(r.id)}/cancel`); notice("cancel requested"); } catch (e) { notice(e.message, "error"); }
  } }, "Cancel"));
  if (r.status === "failed" || r.status === "cancelled") actions.push(h("button", { id: "retry-run", onclick: async () => {
    try { const n = await api.post(`/runs/${encodeURIComponent(r.id)}/retry`); location.hash = `#/runs/${encodeURIComponent(n.id)}`; } catch (e) { notice(e.message, "error"); }
  } }, "Retry"));
  box.replaceChildren(
    h("div.row", {}, badge(r.status), h("b", {}, r.dag || ""), r.template_version ? h("span", {}, `version ${r.template_version}`) : null,
      h("span", {}, `started ${time(r.started_at)}`), h("span", { id: "run-took" }, duration(r.started_at, r.closed_at)),
      r.owner ? h("span", {}, `by ${r.owner}`) : null, ...links, ...actions));
  if (p.error || r.status === "failed") box.append(h("p.error", {}, p.error || "failed"));
}

function renderGraph(box, r) {
  const nodes = (r.progress && r.progress.nodes) || {};
  const ids = Object.keys(nodes);
  const edges = ids.flatMap((id) => (nodes[id].upstream || []).map((from) => ({ from, to: id, data: true })));
  const pos = layout(ids, edges);
  drawEdges(box.querySelector("svg.edges"), edges, pos, null);
  box.querySelectorAll(".node").forEach((el) => el.remove());
  const exp = r.progress && r.progress.experiment_id;
  for (const id of ids) {
    const n = nodes[id];
    const parts = n.partitions || [];
    const done = parts.filter((s) => s === "succeeded").length;
    const failed = parts.filter((s) => s === "failed").length;
    const running = parts.filter((s) => s === "running").length;
    const link = mlflowRun(exp, n.node_run_id);
    box.append(h(`div.node.state-${n.state}`, { dataset: { node: id, state: n.state }, style: `left:${pos[id].x}px;top:${pos[id].y}px;width:${NODE_W}px;min-height:${NODE_H}px` },
      h("div.title", {}, id, h("span.state", {}, n.state)),
      parts.length ? h("div.bar", { title: `${done} succeeded, ${running} running, ${failed} failed of ${parts.length}` },
        h("i.ok", { style: `width:${(100 * done) / parts.length}%` }), h("i.run", { style: `width:${(100 * running) / parts.length}%` }), h("i.bad", { style: `width:${(100 * failed) / parts.length}%` })) : null,
      h("div.meta", {}, h("span.parts", {}, parts.length ? `${done}/${parts.length} partitions` : "—"), " · ", h("span.took", {}, duration(n.started_at, n.ended_at))),
      link ? h("a", { href: link, "data-link": "mlflow-node" }, "MLflow") : null,
      n.error ? h("div.errors", { title: n.error }, n.error) : null));
  }
}
