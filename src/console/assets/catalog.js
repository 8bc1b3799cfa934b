// The catalog: one card per product, newest first, a page at a time, searchable by name.

import { getJSON } from "./api.js";
import { $, el, badge, preview, ENGINES, notify } from "./dom.js";
import { openDetail } from "./detail.js";

const PER_PAGE = 48;
const view = { page: 1, q: "", state: "" };

function placeholder(p) {
  const text = p.state === "rejected" ? "Rejected" : p.state === "done" ? "No thumbnail" : "Not made yet";
  return el("div", { class: "placeholder", text });
}

function card(p) {
  const main = p.outputs.find((o) => !o.background);
  const versions = p.outputs.filter((o) => o !== main);
  const open = () => openDetail(p);
  const shown = versions.slice(0, 6);
  return el(
    "article",
    {
      class: `card state-${p.state}`,
      tabindex: 0,
      role: "button",
      "aria-label": `${p.name}: open its thumbnails`,
      dataset: { name: p.name, state: p.state, outputs: String(p.outputs.length) },
      onclick: open,
      onkeydown: (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          open();
        }
      },
    },
    el("div", { class: "thumb" }, main ? preview(main.preview, `${p.name} on white`) : placeholder(p)),
    versions.length
      ? el(
          "div",
          { class: "versions", "aria-label": `${versions.length} more versions` },
          shown.map((o) => preview(o.preview, `${p.name} on ${o.background || o.file}`, "mini")),
          versions.length > shown.length ? el("span", { class: "more", text: `+${versions.length - shown.length}` }) : null,
        )
      : null,
    el(
      "div",
      { class: "card-body" },
      el("h3", { class: "name", text: p.name, title: p.name }),
      el("div", { class: "meta" }, badge(p.state), p.engine ? el("span", { class: "engine", text: ENGINES[p.engine] || p.engine }) : null),
      p.state === "rejected" ? el("p", { class: "reason", text: p.problem || p.reason }) : null,
    ),
  );
}

export async function loadCatalog() {
  const query = new URLSearchParams({ page: String(view.page), per_page: String(PER_PAGE) });
  if (view.q) query.set("q", view.q);
  if (view.state) query.set("state", view.state);
  const data = await getJSON(`api/products?${query}`);
  view.page = data.page;
  $("cards").replaceChildren(...data.items.map(card));
  const filtered = view.q || view.state;
  const empty = $("catalog-empty");
  empty.hidden = data.total > 0;
  empty.dataset.plain ??= empty.textContent;
  empty.textContent = filtered ? "No product matches." : empty.dataset.plain;
  $("pager").hidden = data.pages <= 1;
  const first = (data.page - 1) * data.per_page + 1;
  const last = Math.min(data.total, data.page * data.per_page);
  $("page-info").textContent = `${first}–${last} of ${data.total}`;
  $("prev").disabled = data.page <= 1;
  $("next").disabled = data.page >= data.pages;
}

export function initCatalog(refresh) {
  let typing = null;
  $("search").addEventListener("input", (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      view.q = e.target.value.trim();
      view.page = 1;
      refresh();
    }, 250);
  });
  $("state-filter").addEventListener("change", (e) => {
    view.state = e.target.value;
    view.page = 1;
    refresh();
  });
  const go = (delta) => {
    view.page = Math.max(1, view.page + delta);
    refresh().then(() => window.scrollTo({ top: 0 })).catch((e) => notify(e.message, "bad"));
  };
  $("prev").addEventListener("click", () => go(-1));
  $("next").addEventListener("click", () => go(1));
}
