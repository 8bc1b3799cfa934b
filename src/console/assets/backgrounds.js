// Backgrounds: each one beside the newest product composed on it.

import { getJSON } from "./api.js";
import { $, el, badge, preview } from "./dom.js";

function card(b) {
  const pictures = el(
    "div",
    { class: "pair" },
    b.preview ? preview(b.preview, `Background ${b.name}`) : el("div", { class: "placeholder", text: "Not taken yet" }),
    b.sample ? preview(b.sample.preview, `${b.sample.product} on ${b.name}`) : el("div", { class: "placeholder", text: "No product on it yet" }),
  );
  return el(
    "article",
    { class: `card bg state-${b.state}`, dataset: { name: b.name, state: b.state, outputs: String(b.outputs) } },
    pictures,
    el(
      "div",
      { class: "card-body" },
      el("h3", { class: "name", text: b.name, title: b.name }),
      el(
        "div",
        { class: "meta" },
        badge(b.state),
        el("span", { class: "engine", text: `${b.outputs} thumbnail${b.outputs === 1 ? "" : "s"}` }),
        b.zip && b.outputs ? el("a", { class: "link", href: b.zip, download: "", text: "Download set (ZIP)" }) : null,
      ),
      b.state === "rejected" ? el("p", { class: "reason", text: b.problem || b.reason }) : null,
    ),
  );
}

export async function loadBackgrounds() {
  const data = await getJSON("api/backgrounds");
  $("bg-cards").replaceChildren(...data.items.map(card));
  $("bg-empty").hidden = data.items.length > 0;
}
