// DOM helpers. Text from the server (file names, rejection notes) only ever goes in through
// textContent or setAttribute, never as HTML.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(id) {
  return document.getElementById(id);
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

export function ago(seconds) {
  const d = Math.max(0, Date.now() / 1000 - seconds);
  if (d < 60) return "just now";
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return new Date(seconds * 1000).toLocaleDateString();
}

export const STATES = {
  pending: "Pending",
  working: "Working",
  done: "Done",
  rejected: "Rejected",
  waiting_remote: "Waiting for remote engine",
  over_quota: "Over today's quota",
};

export const ENGINES = { local: "embedded engine", gradio: "remote engine", none: "own transparency" };

export function badge(state) {
  return el("span", { class: `badge state-${state}`, text: STATES[state] || state });
}

// A preview image that keeps its box while loading and says so when it cannot load.
export function preview(src, alt, cls = "") {
  const img = el("img", { src, alt, loading: "lazy", decoding: "async", class: cls, width: 320, height: 320 });
  img.addEventListener("error", () => img.classList.add("broken"), { once: true });
  return img;
}

let bannerTimer = null;

// A short message at the top of the page (errors stay until the next one).
export function notify(text, level = "info") {
  const banner = $("banner");
  banner.textContent = text;
  banner.dataset.level = level;
  banner.hidden = false;
  clearTimeout(bannerTimer);
  if (level !== "bad") bannerTimer = setTimeout(() => (banner.hidden = true), 6000);
}
