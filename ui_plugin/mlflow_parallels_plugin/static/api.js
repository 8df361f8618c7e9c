// The Parallels API through the MLflow server's same-origin proxy. The token is the user's own,
// kept in sessionStorage for this tab, and never part of the page.
const BASE = "/parallels/api";
const TOKEN_KEY = "parallels-api-token";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
    this.problems = (body && body.problems) || [];
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function headers(extra) {
  const h = { Accept: "application/json", ...extra };
  if (token()) h.Authorization = `Bearer ${token()}`;
  return h;
}

export function askForToken() {
  const bar = document.getElementById("token-bar");
  bar.hidden = false;
  bar.onsubmit = (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token-input").value.trim());
    bar.hidden = true;
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  };
}

export async function call(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(BASE + path, init);
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!res.ok) {
    if (res.status === 401) askForToken();
    throw new ApiError(res.status, data);
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body === undefined ? {} : body);
export const put = (path, body) => call("PUT", path, body);

// Server-sent events over fetch (EventSource cannot send an Authorization header).
export async function* events(path, signal) {
  const res = await fetch(BASE + path, { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!res.ok) {
    if (res.status === 401) askForToken();
    throw new ApiError(res.status, await res.json().catch(() => ({})));
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) yield [event, JSON.parse(data.join("\n"))];
    }
  }
}

// YAML <-> JSON is done by the plugin (PyYAML), so the page needs no YAML library.
export async function yamlToSpec(text) {
  const res = await fetch("/parallels/yaml/load", { method: "POST", body: text });
  const data = await res.json();
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export async function specToYaml(spec) {
  const res = await fetch("/parallels/yaml/dump", { method: "POST", body: JSON.stringify(spec) });
  if (!res.ok) throw new ApiError(res.status, await res.json());
  return res.text();
}
