// The DAG designer: drag MLflow projects onto the canvas, connect them, edit each node, validate
// live through the API (errors shown on the node they concern), save as a template version.
import * as api from "./api.js";
import { h, notice, parseParams, formatParams } from "./dom.js";
import { NODE_W, NODE_H, specEdges, layout, drawEdges, edgePath, svgEl } from "./graph.js";

const PARTITIONS = ["by_file", "by_directory", "broadcast"];
const ENV_MANAGERS = ["auto", "local", "virtualenv"];
const ID_RE = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/;

let state;

function fresh() {
  return {
    spec: { name: "my-dag", description: "", parameters: {}, fail_fast: true, nodes: [] },
    pos: {},
    selected: null, // {kind: "node", id} | {kind: "edge", from, to}
    loaded: null, // {name, version}
    problems: [],
    valid: null,
    clusters: ["local"],
    palette: [],
  };
}

function node(id) {
  return state.spec.nodes.find((n) => n.id === id);
}

function uniqueId(base) {
  let clean = (base || "step").toLowerCase().replace(/[^a-z0-9_-]+/g, "-").replace(/^[-_]+|[-_]+$/g, "");
  clean = (clean || "step").slice(0, 40);
  let id = clean;
  for (let i = 2; node(id); i++) id = `${clean}-${i}`;
  return id;
}

// The spec as the API wants it: defaults left out, so exports stay short and diffs small.
export function cleanSpec(spec) {
  const out = { name: spec.name };
  if (spec.description) out.description = spec.description;
  if (spec.experiment) out.experiment = spec.experiment;
  if (Object.keys(spec.parameters || {}).length) out.parameters = spec.parameters;
  if (spec.fail_fast === false) out.fail_fast = false;
  out.nodes = spec.nodes.map((n) => {
    const project = { uri: n.project.uri };
    if (n.project.version) project.version = n.project.version;
    if (n.project.subdirectory) project.subdirectory = n.project.subdirectory;
    const o = { id: n.id, project };
    if (n.entry_point && n.entry_point !== "main") o.entry_point = n.entry_point;
    if (Object.keys(n.parameters || {}).length) o.parameters = n.parameters;
    if ((n.inputs || []).length) o.inputs = n.inputs;
    if (n.parallelism !== 1) o.parallelism = n.parallelism;
    const r = {};
    for (const k of ["cpu", "memory"]) if (n.resources && n.resources[k]) r[k] = n.resources[k];
    if (n.resources && n.resources.gpu) r.gpu = n.resources.gpu;
    if (Object.keys(r).length) o.resources = r;
    if (n.cluster && n.cluster !== "local") o.cluster = n.cluster;
    if (n.retries) o.retries = n.retries;
    if (n.timeout && n.timeout !== "1h") o.timeout = n.timeout;
    if (n.env_manager && n.env_manager !== "auto") o.env_manager = n.env_manager;
    if ((n.depends_on || []).length) o.depends_on = n.depends_on;
    return o;
  });
  return out;
}

function normalise(spec) {
  const s = structuredClone(spec);
  s.parameters = s.parameters || {};
  s.fail_fast = s.fail_fast !== false;
  s.nodes = (s.nodes || []).map((n) => ({
    ...n,
    project: { uri: "", subdirectory: "", ...(n.project || {}) },
    entry_point: n.entry_point || "main",
    parameters: n.parameters || {},
    inputs: n.inputs || [],
    parallelism: n.parallelism === undefined ? 1 : n.parallelism,
    resources: n.resources || {},
    cluster: n.cluster || "local",
    retries: n.retries || 0,
    timeout: n.timeout || "1h",
    env_manager: n.env_manager || "auto",
    depends_on: n.depends_on || [],
  }));
  return s;
}

function loadSpec(spec, loaded) {
  state.spec = normalise(spec);
  state.pos = layout(state.spec.nodes.map((n) => n.id), specEdges(state.spec.nodes));
  state.selected = null;
  state.loaded = loaded;
  changed();
}

// ---- mutations -------------------------------------------------------------------------------

function addNode(template, x, y) {
  const base = template.subdirectory ? template.subdirectory.split("/").pop() : template.name || "step";
  const id = uniqueId(base);
  state.spec.nodes.push(normalise({ nodes: [{
    id,
    project: { uri: template.uri || "", version: template.version || undefined, subdirectory: template.subdirectory || "" },
    entry_point: template.entry_point || "main",
  }] }).nodes[0]);
  state.pos[id] = { x: Math.max(8, x), y: Math.max(8, y) };
  state.selected = { kind: "node", id };
  changed();
}

function connect(from, to) {
  if (from === to) return notice("a node cannot feed itself", "error");
  const target = node(to);
  if (specEdges([target]).some((e) => e.from === from)) return notice(`${from} already feeds ${to}`);
  let name = from.replace(/-/g, "_");
  for (let i = 2; target.inputs.some((inp) => inp.name === name); i++) name = `${from.replace(/-/g, "_")}_${i}`;
  target.inputs.push({ name, source: { node: from }, partition: target.parallelism > 1 ? "by_file" : "broadcast" });
  state.selected = { kind: "node", id: to };
  changed();
}

function removeEdge(from, to) {
  const target = node(to);
  target.inputs = target.inputs.filter((inp) => !(inp.source && inp.source.node === from));
  target.depends_on = target.depends_on.filter((d) => d !== from);
  state.selected = null;
  changed();
}

function removeNode(id) {
  state.spec.nodes = state.spec.nodes.filter((n) => n.id !== id);
  for (const n of state.spec.nodes) {
    n.inputs = n.inputs.filter((inp) => !(inp.source && inp.source.node === id));
    n.depends_on = n.depends_on.filter((d) => d !== id);
  }
  delete state.pos[id];
  state.selected = null;
  changed();
}

function renameNode(oldId, newId) {
  if (!newId || newId === oldId) return;
  if (node(newId)) return notice(`there is already a node '${newId}'`, "error");
  node(oldId).id = newId;
  for (const n of state.spec.nodes) {
    for (const inp of n.inputs) if (inp.source && inp.source.node === oldId) inp.source.node = newId;
    n.depends_on = n.depends_on.map((d) => (d === oldId ? newId : d));
  }
  state.pos[newId] = state.pos[oldId];
  delete state.pos[oldId];
  state.selected = { kind: "node", id: newId };
  changed();
}

// ---- validation ------------------------------------------------------------------------------

let validateTimer;
let validation = 0;

function changed({ keepPanel = false } = {}) {
  renderCanvas();
  if (!keepPanel) renderPanel();
  clearTimeout(validateTimer);
  validateTimer = setTimeout(validate, 250);
  setStatus("checking…", "pending");
}

async function validate() {
  const mine = ++validation;
  const spec = cleanSpec(state.spec);
  try {
    await api.post("/templates/validate", { spec });
    if (mine !== validation) return;
    state.problems = [];
    state.valid = true;
  } catch (e) {
    if (mine !== validation) return;
    state.valid = false;
    state.problems = e.problems.length ? e.problems : [{ path: "", message: e.message }];
  }
  renderCanvas();
  renderProblems();
  setStatus(state.valid ? "valid" : `${state.problems.length} problem(s)`, state.valid ? "ok" : "bad");
}

// "nodes[2].inputs[0].source.node" -> the id of node 2, so the error shows on that node.
function problemNode(path) {
  const m = /^nodes\[(\d+)\]/.exec(path || "");
  if (!m) return null;
  const n = state.spec.nodes[Number(m[1])];
  return n ? n.id : null;
}

function problemsOf(id) {
  return state.problems.filter((p) => problemNode(p.path) === id);
}

function setStatus(text, kind) {
  const el = document.getElementById("validity");
  if (el) {
    el.textContent = text;
    el.className = `validity ${kind}`;
  }
}

// ---- rendering -------------------------------------------------------------------------------

function renderCanvas() {
  const canvas = document.getElementById("canvas");
  if (!canvas) return;
  const edges = specEdges(state.spec.nodes);
  const sel = state.selected && state.selected.kind === "edge" ? `${state.selected.from}->${state.selected.to}` : null;
  const svg = canvas.querySelector("svg.edges");
  drawEdges(svg, edges, state.pos, (e) => {
    state.selected = { kind: "edge", from: e.from, to: e.to };
    renderCanvas();
    renderPanel();
  }, sel);
  canvas.querySelectorAll(".node").forEach((el) => el.remove());
  for (const n of state.spec.nodes) {
    const p = state.pos[n.id] || (state.pos[n.id] = { x: 24, y: 24 });
    const errs = problemsOf(n.id);
    const selected = state.selected && state.selected.kind === "node" && state.selected.id === n.id;
    const el = h(`div.node${errs.length ? ".invalid" : ""}${selected ? ".selected" : ""}`,
      { dataset: { node: n.id }, style: `left:${p.x}px;top:${p.y}px;width:${NODE_W}px;min-height:${NODE_H}px` },
      h("div.port.in", { title: "input" }),
      h("div.title", {}, n.id),
      h("div.sub", {}, projectLabel(n)),
      h("div.meta", {}, `${n.entry_point} · ×${n.parallelism}${n.cluster !== "local" ? ` · ${n.cluster}` : ""}`),
      errs.length ? h("div.errors", {}, errs.map((e) => h("div", { title: e.path }, e.message))) : null,
      h("div.port.out", { title: "drag to another node to connect" }));
    el.addEventListener("pointerdown", (ev) => startDrag(ev, n.id));
    canvas.append(el);
  }
  const size = Object.values(state.pos).reduce(
    (a, p) => ({ w: Math.max(a.w, p.x + NODE_W + 60), h: Math.max(a.h, p.y + NODE_H + 80) }),
    { w: 0, h: 0 });
  canvas.style.minWidth = `${size.w}px`;
  canvas.style.minHeight = `${Math.max(size.h, 420)}px`;
  canvas.classList.toggle("empty", !state.spec.nodes.length);
}

function projectLabel(n) {
  const uri = n.project.uri || "(no project URI)";
  const short = uri.replace(/\.git$/, "").split("/").slice(-1)[0] || uri;
  return `${short}${n.project.subdirectory ? `/${n.project.subdirectory}` : ""}${n.project.version ? `@${n.project.version}` : ""}`;
}

// Moving a node, or (from its output port) drawing an edge to another node.
function startDrag(ev, id) {
  if (ev.button !== 0) return;
  const canvas = document.getElementById("canvas");
  const rect = canvas.getBoundingClientRect();
  const start = { x: ev.clientX, y: ev.clientY };
  const origin = { ...state.pos[id] };
  const linking = ev.target.classList.contains("port") && ev.target.classList.contains("out");
  let moved = false;
  let line = null;
  ev.preventDefault();
  const move = (e) => {
    const dx = e.clientX - start.x, dy = e.clientY - start.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) moved = true;
    if (linking) {
      const svg = canvas.querySelector("svg.edges");
      if (!line) {
        line = svgEl("path", { class: "linking" });
        svg.append(line);
      }
      const to = { x: e.clientX - rect.left - 1, y: e.clientY - rect.top - NODE_H / 2 };
      line.setAttribute("d", edgePath(state.pos[id], to));
    } else if (moved) {
      state.pos[id] = { x: Math.max(0, origin.x + dx), y: Math.max(0, origin.y + dy) };
      const el = canvas.querySelector(`.node[data-node="${CSS.escape(id)}"]`);
      el.style.left = `${state.pos[id].x}px`;
      el.style.top = `${state.pos[id].y}px`;
      drawEdges(canvas.querySelector("svg.edges"), specEdges(state.spec.nodes), state.pos, null);
    }
  };
  const up = (e) => {
    window.removeEventListener("pointermove", move);
    window.removeEventListener("pointerup", up);
    if (linking) {
      const target = document.elementFromPoint(e.clientX, e.clientY);
      const other = target && target.closest(".node");
      if (line) line.remove();
      if (other && moved) return connect(id, other.dataset.node);
      return renderCanvas();
    }
    if (!moved) {
      state.selected = { kind: "node", id };
      renderPanel();
    }
    renderCanvas();
  };
  window.addEventListener("pointermove", move);
  window.addEventListener("pointerup", up);
}

function field(label, input, hint) {
  return h("label.field", {}, h("span", {}, label), input, hint ? h("small", {}, hint) : null);
}

function text(value, onchange, attrs = {}) {
  return h("input", { type: "text", value: value ?? "", onchange: (e) => onchange(e.target.value.trim()), ...attrs });
}

function number(value, onchange, attrs = {}) {
  return h("input", { type: "number", value: value ?? "", onchange: (e) => onchange(e.target.value === "" ? 0 : Number(e.target.value)), ...attrs });
}

function select(value, options, onchange, attrs = {}) {
  const opts = options.includes(value) || value === undefined ? options : [value, ...options];
  return h("select", { onchange: (e) => onchange(e.target.value), ...attrs },
    opts.map((o) => h("option", { value: o, selected: o === value }, o)));
}

function renderPanel() {
  const panel = document.getElementById("panel");
  if (!panel) return;
  panel.replaceChildren();
  const sel = state.selected;
  if (sel && sel.kind === "edge") {
    panel.append(h("h3", {}, `${sel.from} → ${sel.to}`),
      h("p", {}, "An edge from a node makes that node's output an input of the next one."),
      h("button.danger", { onclick: () => removeEdge(sel.from, sel.to) }, "Remove edge"));
    return;
  }
  if (sel && sel.kind === "node" && node(sel.id)) return panel.append(nodePanel(node(sel.id)));
  const s = state.spec;
  panel.append(
    h("h3", {}, "DAG"),
    field("name", text(s.name, (v) => { s.name = v; changed(); }, { name: "dag-name" })),
    field("description", h("textarea", { rows: 2, onchange: (e) => { s.description = e.target.value; changed(); } }, s.description || "")),
    field("experiment", text(s.experiment, (v) => { s.experiment = v || undefined; changed(); }), "MLflow experiment; default: the DAG's name"),
    field("parameters", h("textarea", { rows: 3, name: "dag-parameters", placeholder: "threshold=0.5",
      onchange: (e) => { s.parameters = parseParams(e.target.value); changed(); } }, formatParams(s.parameters)),
      "key=value per line; nodes use them as ${key}"),
    h("label.check", {}, h("input", { type: "checkbox", checked: s.fail_fast, onchange: (e) => { s.fail_fast = e.target.checked; changed(); } }), " stop the DAG at the first failed node"),
    h("p.help", {}, "Drag projects from the left onto the canvas. Drag from a node's right-hand dot to another node to connect them. Click a node to edit it."));
}

function nodePanel(n) {
  const set = (fn) => (v) => { fn(v); changed(); };
  const upstream = state.spec.nodes.map((o) => o.id).filter((id) => id !== n.id);
  const inputs = h("div.inputs", {}, n.inputs.map((inp, i) => h("div.input-row", { dataset: { input: inp.name } },
    text(inp.name, set((v) => { inp.name = v; }), { "aria-label": "input name", class: "short" }),
    inp.source && inp.source.node !== undefined && inp.source.node !== null
      ? select(inp.source.node, upstream, set((v) => { inp.source = { node: v }; }), { "aria-label": "source node" })
      : text(inp.source && inp.source.uri, set((v) => { inp.source = { uri: v }; }), { "aria-label": "source URI", placeholder: "s3://… or models:/…" }),
    select(inp.partition || "broadcast", PARTITIONS, set((v) => { inp.partition = v; }), { "aria-label": "partition mode", name: `partition-${inp.name}` }),
    h("button.icon", { title: "remove input", onclick: () => { n.inputs.splice(i, 1); changed(); } }, "×"))));
  const nodeProblems = problemsOf(n.id);
  return h("div", {},
    h("h3", {}, "Node"),
    nodeProblems.length ? h("ul.node-problems", {}, nodeProblems.map((p) => h("li", {}, h("code", {}, p.path), " ", p.message))) : null,
    field("id", text(n.id, (v) => renameNode(n.id, v), { name: "id", pattern: ID_RE.source })),
    h("fieldset", {}, h("legend", {}, "MLflow project"),
      field("git URI", text(n.project.uri, set((v) => { n.project.uri = v; }), { name: "uri", placeholder: "https://git.example.com/team/repo.git" })),
      field("version", text(n.project.version, set((v) => { n.project.version = v || undefined; }), { name: "version", placeholder: "branch, tag or commit" })),
      field("subdirectory", text(n.project.subdirectory, set((v) => { n.project.subdirectory = v; }), { name: "subdirectory" })),
      field("entry point", text(n.entry_point, set((v) => { n.entry_point = v || "main"; }), { name: "entry_point" }))),
    field("parameters", h("textarea", { rows: 3, name: "parameters", onchange: (e) => { n.parameters = parseParams(e.target.value); changed(); } }, formatParams(n.parameters)), "key=value per line; ${dag_param} is substituted"),
    h("fieldset", {}, h("legend", {}, "inputs"), inputs,
      h("button", { onclick: () => { n.inputs.push({ name: `input_${n.inputs.length + 1}`, source: { uri: "" }, partition: "broadcast" }); changed(); } }, "+ input from a URI")),
    h("div.row", {},
      field("parallelism", number(n.parallelism, set((v) => { n.parallelism = v; }), { name: "parallelism", min: 1 })),
      field("retries", number(n.retries, set((v) => { n.retries = v; }), { name: "retries", min: 0, max: 20 })),
      field("timeout", text(n.timeout, set((v) => { n.timeout = v || "1h"; }), { name: "timeout", class: "short" }))),
    h("div.row", {},
      field("cpu", text(n.resources.cpu, set((v) => { n.resources.cpu = v || undefined; }), { name: "cpu", class: "short", placeholder: "500m" })),
      field("memory", text(n.resources.memory, set((v) => { n.resources.memory = v || undefined; }), { name: "memory", class: "short", placeholder: "1Gi" })),
      field("gpu", number(n.resources.gpu || 0, set((v) => { n.resources.gpu = v; }), { name: "gpu", min: 0 }))),
    h("div.row", {},
      field("cluster", select(n.cluster, state.clusters, set((v) => { n.cluster = v; }), { name: "cluster" })),
      field("environment", select(n.env_manager, ENV_MANAGERS, set((v) => { n.env_manager = v; }), { name: "env_manager" }))),
    h("button.danger", { onclick: () => removeNode(n.id) }, "Delete node"));
}

function renderProblems() {
  const box = document.getElementById("problems");
  if (!box) return;
  box.replaceChildren(...state.problems.map((p) =>
    h("li", { dataset: { node: problemNode(p.path) || "" } }, h("code", {}, p.path || "(spec)"), " ", p.message)));
  if (state.selected && state.selected.kind === "node") {
    const list = document.querySelector("#panel .node-problems");
    const now = problemsOf(state.selected.id);
    if (list || now.length) renderPanel();
  }
}

// ---- templates, palette, YAML ----------------------------------------------------------------

async function refreshTemplates(select) {
  try {
    const page = await api.get("/templates?limit=500");
    select.replaceChildren(h("option", { value: "" }, "load a template…"),
      ...page.items.map((t) => h("option", { value: t.name, selected: state.loaded && state.loaded.name === t.name }, t.name)));
    const seen = new Set();
    state.palette = [];
    for (const t of page.items) for (const n of t.spec.nodes || []) {
      const p = n.project || {};
      const key = `${p.uri}#${p.subdirectory || ""}@${p.version || ""}:${n.entry_point || "main"}`;
      if (!p.uri || seen.has(key)) continue;
      seen.add(key);
      state.palette.push({ uri: p.uri, subdirectory: p.subdirectory || "", version: p.version, entry_point: n.entry_point || "main", name: n.id });
    }
    renderPalette();
  } catch (e) {
    notice(`templates: ${e.message}`, "error");
  }
}

function renderPalette() {
  const box = document.getElementById("palette-items");
  if (!box) return;
  const items = [{ name: "project", label: "MLflow project", hint: "any git URI" }, ...state.palette];
  box.replaceChildren(...items.map((item, i) => h("div.palette-item", {
    draggable: "true",
    dataset: { palette: String(i) },
    title: item.uri ? `${item.uri}${item.subdirectory ? `#${item.subdirectory}` : ""}` : "a new node; set its git URI in the panel",
    ondragstart: (e) => { e.dataTransfer.setData("application/x-parallels-project", JSON.stringify(item)); e.dataTransfer.effectAllowed = "copy"; },
  }, h("b", {}, item.label || (item.subdirectory ? item.subdirectory.split("/").pop() : item.name)),
  h("small", {}, item.hint || `${item.entry_point} · ${item.uri.split("/").slice(-1)[0]}`))));
}

async function loadTemplate(name, version, { quiet = false } = {}) {
  const t = await api.get(`/templates/${encodeURIComponent(name)}${version ? `?version=${version}` : ""}`);
  loadSpec(t.spec, { name: t.name, version: t.version });
  const versions = await api.get(`/templates/${encodeURIComponent(name)}/versions`);
  const vs = document.getElementById("versions");
  vs.hidden = false;
  vs.replaceChildren(...versions.items.map((v) => h("option", { value: v.version, selected: v.version === t.version }, `version ${v.version}`)));
  document.getElementById("templates").value = t.name;
  if (!quiet) notice(`loaded ${t.name} version ${t.version}`);
}

async function save() {
  const spec = cleanSpec(state.spec);
  try {
    let exists = true;
    try {
      await api.get(`/templates/${encodeURIComponent(spec.name)}`);
    } catch (e) {
      if (e.status !== 404) throw e;
      exists = false;
    }
    const t = exists ? await api.put(`/templates/${encodeURIComponent(spec.name)}`, { spec }) : await api.post("/templates", { spec });
    state.loaded = { name: t.name, version: t.version };
    await refreshTemplates(document.getElementById("templates"));
    await loadTemplate(t.name, t.version, { quiet: true });
    notice(`saved ${t.name} version ${t.version}`, "ok");
  } catch (e) {
    if (e.problems.length) {
      state.problems = e.problems;
      state.valid = false;
      renderCanvas();
      renderProblems();
    }
    notice(`not saved: ${e.message}`, "error");
  }
}

async function importYaml(file) {
  try {
    const spec = await api.yamlToSpec(await file.text());
    loadSpec(spec, null);
    notice(`imported ${file.name}`);
  } catch (e) {
    notice(`import: ${e.message}`, "error");
  }
}

async function exportYaml() {
  try {
    const text = await api.specToYaml(cleanSpec(state.spec));
    const a = h("a", { href: URL.createObjectURL(new Blob([text], { type: "application/yaml" })), download: `${state.spec.name || "dag"}.yaml` });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) {
    notice(`export: ${e.message}`, "error");
  }
}

export async function show(view, params) {
  state = fresh();
  const templates = h("select#templates", { id: "templates", "aria-label": "template", onchange: (e) => e.target.value && loadTemplate(e.target.value).catch((err) => notice(err.message, "error")) });
  const versions = h("select", { id: "versions", "aria-label": "version", hidden: true, onchange: (e) => loadTemplate(state.loaded.name, Number(e.target.value)).catch((err) => notice(err.message, "error")) });
  const file = h("input", { type: "file", accept: ".yaml,.yml,.json", hidden: true, id: "import-file", onchange: (e) => e.target.files[0] && importYaml(e.target.files[0]) });
  const canvas = h("div#canvas.canvas", { id: "canvas" });
  canvas.append(svgEl("svg", { class: "edges" }));
  canvas.addEventListener("dragover", (e) => { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; });
  canvas.addEventListener("drop", (e) => {
    e.preventDefault();
    const raw = e.dataTransfer.getData("application/x-parallels-project");
    if (!raw) return;
    const r = canvas.getBoundingClientRect();
    addNode(JSON.parse(raw), e.clientX - r.left - NODE_W / 2, e.clientY - r.top - 20);
  });
  canvas.addEventListener("click", (e) => {
    if (e.target === canvas || e.target.tagName === "svg") {
      state.selected = null;
      renderCanvas();
      renderPanel();
    }
  });
  view.replaceChildren(
    h("div.toolbar", {},
      h("h2", {}, "DAG designer"),
      templates, versions,
      h("button", { onclick: () => { state = { ...fresh(), clusters: state.clusters, palette: state.palette }; changed(); history.replaceState(null, "", "#/designer"); } }, "New"),
      h("button", { onclick: () => file.click() }, "Import YAML"), file,
      h("button", { onclick: exportYaml }, "Export YAML"),
      h("span#validity.validity", { id: "validity" }, ""),
      h("button.primary", { id: "save", onclick: save }, "Save version")),
    h("div.designer", {},
      h("aside.palette", {}, h("h3", {}, "Projects"), h("div", { id: "palette-items" })),
      h("div.canvas-wrap", {}, canvas),
      h("aside.panel", { id: "panel" })),
    h("div.problems-box", {}, h("h3", {}, "Problems"), h("ul", { id: "problems" })));
  document.onkeydown = (e) => {
    if (!document.getElementById("canvas") || ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName)) return;
    if (e.key === "Delete" || e.key === "Backspace") {
      const sel = state.selected;
      if (sel && sel.kind === "node") removeNode(sel.id);
      else if (sel && sel.kind === "edge") removeEdge(sel.from, sel.to);
    }
  };
  renderPalette();
  changed();
  api.get("/clusters").then((c) => { state.clusters = c.items.map((i) => i.name); renderPanel(); }).catch(() => {});
  await refreshTemplates(templates);
  if (params.template) await loadTemplate(params.template, params.version ? Number(params.version) : undefined);
}
