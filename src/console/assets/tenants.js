// The operator's tenant switcher: on a tenant's console (/t/NAME/), the operator — whose
// CONSOLE_TOKEN opens the overview's /api/tenants — gets a list of every tenant's console. A
// tenant's own token does not open that list, so a tenant never sees it.

import { $ } from "./dom.js";

export async function initSwitcher() {
  const here = location.pathname.match(/^\/t\/([^/]+)\//);
  if (!here) return;
  let items;
  try {
    const response = await fetch("/api/tenants", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return;
    items = (await response.json()).items;
  } catch {
    return;
  }
  const select = $("tenant");
  select.replaceChildren();
  for (const item of items) {
    const option = document.createElement("option");
    option.value = item.url;
    option.textContent = item.name;
    option.selected = item.name === decodeURIComponent(here[1]);
    select.append(option);
  }
  const overview = document.createElement("option");
  overview.value = "/";
  overview.textContent = "All tenants (overview)";
  select.append(overview);
  select.addEventListener("change", () => location.assign(select.value));
  $("switcher").hidden = false;
}
