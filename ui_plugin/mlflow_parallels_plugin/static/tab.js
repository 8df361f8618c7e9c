// Adds a "Parallels" item to the MLflow UI's navigation, next to "Experiments". MLflow renders its
// sidebar with React and may re-render it, so the item is re-added whenever it goes missing.
(function () {
  const ICON = '<svg xmlns="http://www.w3.org/2000/svg" width="1em" height="1em" viewBox="0 0 16 16" ' +
    'fill="none" stroke="currentColor" stroke-width="1.4" aria-hidden="true"><circle cx="3" cy="8" r="2"/>' +
    '<circle cx="13" cy="3.5" r="2"/><circle cx="13" cy="12.5" r="2"/><path d="M5 8h3l3-4.5M8 8l3 4.5"/></svg>';

  function addTab() {
    if (document.querySelector("a[data-parallels-tab]")) return;
    const experiments = document.querySelector('a[href="#/experiments"]');
    if (!experiments) return;
    const item = experiments.closest("li") || experiments;
    const clone = item.cloneNode(true);
    const link = clone.matches("a") ? clone : clone.querySelector("a");
    link.setAttribute("href", "/parallels/");
    link.setAttribute("data-parallels-tab", "");
    link.removeAttribute("aria-current");
    const icon = link.querySelector("span[role=img]");
    if (icon) icon.innerHTML = ICON;
    const label = Array.from(link.childNodes).find((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    if (label) label.textContent = "Parallels";
    else link.append("Parallels");
    item.after(clone);
  }

  new MutationObserver(addTab).observe(document.documentElement, { childList: true, subtree: true });
  addTab();
})();
