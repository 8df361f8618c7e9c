// A tiny element builder: h("div#id.card", {onclick}, child, "text").
export function h(tag, attrs, ...children) {
  const [head, ...classes] = tag.split(".");
  const [name, id] = head.split("#");
  const el = document.createElement(name);
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function notice(text, kind = "info") {
  const el = document.getElementById("notice");
  el.textContent = text;
  el.className = `notice ${kind}`;
  el.hidden = !text;
  clearTimeout(notice.timer);
  if (text && kind !== "error") notice.timer = setTimeout(() => (el.hidden = true), 6000);
}

export function duration(startIso, endIso) {
  if (!startIso) return "";
  const end = endIso ? Date.parse(endIso) : Date.now();
  let s = Math.max(0, Math.round((end - Date.parse(startIso)) / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  s %= 60;
  return hh ? `${hh}h ${mm}m` : mm ? `${mm}m ${s}s` : `${s}s`;
}

// Parameters as "key=value" lines; numbers and booleans keep their type.
export function parseParams(text) {
  const out = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf("=");
    const key = (at < 0 ? line : line.slice(0, at)).trim();
    out[key] = scalar(at < 0 ? "" : line.slice(at + 1).trim());
  }
  return out;
}

export function scalar(v) {
  if (v === "true") return true;
  if (v === "false") return false;
  if (/^-?\d+$/.test(v) && Math.abs(Number(v)) < Number.MAX_SAFE_INTEGER) return Number(v);
  if (/^-?\d*\.\d+(e-?\d+)?$/i.test(v)) return Number(v);
  return v;
}

export function formatParams(obj) {
  return Object.entries(obj || {}).map(([k, v]) => `${k}=${v}`).join("\n");
}
