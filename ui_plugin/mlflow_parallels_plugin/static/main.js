// Hash routes of the Parallels pages: #/designer[?template=&version=], #/runs[?template=&status=],
// #/runs/<id>.
import * as designer from "./designer.js";
import * as runs from "./runs.js";
import { notice } from "./dom.js";

async function route() {
  runs.leave();
  notice("");
  const view = document.getElementById("view");
  const [path, query] = (location.hash.slice(1) || "/runs").split("?");
  const params = Object.fromEntries(new URLSearchParams(query || ""));
  const parts = path.split("/").filter(Boolean);
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === parts[0]));
  try {
    if (parts[0] === "designer") await designer.show(view, params);
    else if (parts[0] === "runs" && parts[1]) await runs.showRun(view, decodeURIComponent(parts[1]));
    else await runs.showList(view, params);
  } catch (e) {
    notice(e.message, "error");
  }
}

window.addEventListener("hashchange", route);
route();
