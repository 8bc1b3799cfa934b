// A product opened: the original photo beside every full-size thumbnail.

import { $, el, badge, ago, ENGINES } from "./dom.js";

function figure(src, caption, download, node) {
  return el(
    "figure",
    { class: "full" },
    el("a", { href: src, target: "_blank", rel: "noopener" }, el("img", { src, alt: caption, decoding: "async" })),
    el(
      "figcaption",
      {},
      el("span", { class: "file", text: caption }),
      node ? el("span", { class: "node", text: `made by ${node}` }) : null,
      download ? el("a", { href: download, class: "link", text: "Download" }) : null,
    ),
  );
}

export function openDetail(p) {
  const dialog = $("detail");
  $("detail-title").textContent = p.name;
  $("detail-meta").replaceChildren(
    badge(p.state),
    p.engine ? ` · cut out by the ${ENGINES[p.engine] || p.engine}` : "",
    p.modified ? ` · photo changed ${ago(p.modified)}` : "",
  );
  const items = [];
  if (p.state === "rejected") {
    items.push(
      el(
        "div",
        { class: "rejection" },
        el("p", {}, el("strong", { text: "Why: " }), p.problem || p.reason),
        el("p", {}, el("strong", { text: "What to do: " }), p.advice || ""),
        el("p", {}, el("a", { href: "#rejected", text: "Retry or delete it in Rejected" })),
      ),
    );
  }
  if (p.original) items.push(figure(p.original, "Original photo", null, null));
  for (const o of p.outputs) items.push(figure(o.url, o.file, `${o.url}&download=1`, o.node));
  if (!p.outputs.length && p.state !== "rejected") items.push(el("p", { class: "hint", text: "No thumbnails yet." }));
  $("detail-body").replaceChildren(...items);
  dialog.showModal();
}

export function initDetail() {
  const dialog = $("detail");
  $("detail-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (e) => {
    if (e.target === dialog) dialog.close();
  });
  dialog.addEventListener("close", () => $("detail-body").replaceChildren());
  $("detail-body").addEventListener("click", (e) => {
    if (e.target.closest("a[href='#rejected']")) dialog.close();
  });
}
