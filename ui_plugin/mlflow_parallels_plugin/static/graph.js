// Layout and edges shared by the designer and the run graph: nodes are HTML boxes placed over an
// SVG layer that draws the edges between them.
export const NODE_W = 190;
export const NODE_H = 92;
const GAP_X = 70;
const GAP_Y = 36;

// Edges of a spec: data inputs from another node, then pure ordering (depends_on).
export function specEdges(nodes) {
  const edges = [];
  for (const n of nodes) {
    const seen = new Set();
    for (const inp of n.inputs || []) {
      const from = inp.source && inp.source.node;
      if (from && !seen.has(from)) {
        seen.add(from);
        edges.push({ from, to: n.id, data: true });
      }
    }
    for (const dep of n.depends_on || []) {
      if (!seen.has(dep)) {
        seen.add(dep);
        edges.push({ from: dep, to: n.id, data: false });
      }
    }
  }
  return edges;
}

// Layered layout: a node's column is the longest path to it (cycles are cut, not looped on).
export function layout(ids, edges) {
  const ups = new Map(ids.map((id) => [id, []]));
  for (const e of edges) if (ups.has(e.to) && ups.has(e.from)) ups.get(e.to).push(e.from);
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (id) => {
    if (depth.has(id)) return depth.get(id);
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const d = Math.max(-1, ...ups.get(id).map(depthOf)) + 1;
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const rows = new Map();
  const pos = {};
  for (const id of ids) {
    const d = depthOf(id);
    const row = rows.get(d) || 0;
    rows.set(d, row + 1);
    pos[id] = { x: 24 + d * (NODE_W + GAP_X), y: 24 + row * (NODE_H + GAP_Y) };
  }
  return pos;
}

export function edgePath(a, b) {
  const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
  const dx = Math.max(40, (x2 - x1) / 2);
  return `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
}

const SVG = "http://www.w3.org/2000/svg";

export function svgEl(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

export function drawEdges(svg, edges, pos, onSelect, selected) {
  svg.replaceChildren();
  const defs = svgEl("defs", {});
  const marker = svgEl("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5",
    markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
  marker.append(svgEl("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8a94a6" }));
  defs.append(marker);
  svg.append(defs);
  let w = 0, hgt = 0;
  for (const p of Object.values(pos)) {
    w = Math.max(w, p.x + NODE_W + 40);
    hgt = Math.max(hgt, p.y + NODE_H + 40);
  }
  svg.setAttribute("width", w);
  svg.setAttribute("height", hgt);
  for (const e of edges) {
    if (!pos[e.from] || !pos[e.to]) continue;
    const d = edgePath(pos[e.from], pos[e.to]);
    const key = `${e.from}->${e.to}`;
    const g = svgEl("g", { class: `edge${e.data ? "" : " order"}${selected === key ? " selected" : ""}`,
      "data-edge": key });
    g.append(svgEl("path", { d, class: "line", "marker-end": "url(#arrow)" }));
    if (onSelect) {
      const hit = svgEl("path", { d, class: "hit" });
      hit.addEventListener("click", (ev) => { ev.stopPropagation(); onSelect(e); });
      g.append(hit);
    }
    svg.append(g);
  }
  return { width: w, height: hgt };
}
