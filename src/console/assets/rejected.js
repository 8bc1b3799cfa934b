// Rejected files, with their reason and advice, and Retry / Delete.

import { getJSON, send } from "./api.js";
import { $, el, ago, notify } from "./dom.js";

function item(r, refresh) {
  const path = encodeURIComponent(r.name);
  const act = (button, method, url, done) => async () => {
    button.disabled = true;
    try {
      const answer = await send(method, url);
      notify(done(answer), "ok");
      await refresh();
    } catch (e) {
      notify(`${r.name}: ${e.message}${e.body && e.body.advice ? ` ${e.body.advice}` : ""}`, "bad");
      button.disabled = false;
    }
  };
  const retry = el("button", { type: "button", class: "primary", text: "Retry" });
  retry.addEventListener("click", act(retry, "POST", `api/rejected/${path}/retry`, (a) => `${a.name} is back in ${a.folder}/`));
  const remove = el("button", { type: "button", class: "danger", text: "Delete" });
  const deleting = act(remove, "DELETE", `api/rejected/${path}`, () => `${r.name} deleted`);
  remove.addEventListener("click", () => {
    if (window.confirm(`Delete ${r.name} from rejeitados/ for good?`)) deleting();
  });
  return el(
    "li",
    { class: "reject", dataset: { name: r.name, reason: r.reason } },
    el(
      "div",
      { class: "reject-head" },
      el("strong", { class: "name", text: r.name }),
      el("span", { class: "badge state-rejected", text: r.reason || "rejected" }),
      el("span", { class: "muted", text: `from ${r.folder || "produtos"}/ · ${ago(r.modified)}` }),
    ),
    el("p", { class: "problem", text: r.problem || "No note was found for this file." }),
    r.advice ? el("p", { class: "advice" }, el("strong", { text: "What to do: " }), r.advice) : null,
    el("div", { class: "actions" }, retry, remove),
  );
}

export async function loadRejected(refresh) {
  const data = await getJSON("api/rejected");
  $("rejects").replaceChildren(...data.items.map((r) => item(r, refresh)));
  $("rejects-empty").hidden = data.items.length > 0;
}
