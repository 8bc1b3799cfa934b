// The console page: views by the URL's #fragment, the live status, and refreshing what is shown
// when the status says something changed (at most every two seconds).

import { $, notify } from "./dom.js";
import { follow, render } from "./status.js";
import { initCatalog, loadCatalog } from "./catalog.js";
import { initDetail } from "./detail.js";
import { loadBackgrounds } from "./backgrounds.js";
import { loadRejected } from "./rejected.js";
import { addFiles, initUpload, setMaxSize } from "./upload.js";
import { initSwitcher } from "./tenants.js";

const VIEWS = ["catalog", "backgrounds", "rejected", "upload"];
const MIN_REFRESH_MS = 2000;

let current = "catalog";
let lastChanges = null;
let wasReady = false;
let busy = false;
let again = false;
let lastRefresh = 0;
let timer = null;

function load(view) {
  if (view === "catalog") return loadCatalog();
  if (view === "backgrounds") return loadBackgrounds();
  if (view === "rejected") return loadRejected(refresh);
  return Promise.resolve();
}

// Reloads the current view; calls made while one runs collapse into one more.
async function refresh() {
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  clearTimeout(timer);
  try {
    lastRefresh = Date.now();
    await load(current);
    document.body.dataset.loaded = current;
  } catch (e) {
    if (e.status === 503) notify("Starting: the removal engine is loading…", "info");
    else notify(e.message, "bad");
  } finally {
    busy = false;
    if (again) {
      again = false;
      refresh();
    }
  }
}

// A refresh soon, but not more often than every MIN_REFRESH_MS.
function refreshSoon() {
  const wait = Math.max(0, lastRefresh + MIN_REFRESH_MS - Date.now());
  clearTimeout(timer);
  timer = setTimeout(refresh, wait);
}

function show() {
  const wanted = location.hash.slice(1);
  current = VIEWS.includes(wanted) ? wanted : "catalog";
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== current;
  for (const link of document.querySelectorAll(".tabs a")) {
    if (link.dataset.view === current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.body.dataset.view = current;
  refresh();
}

function dropAnywhere() {
  const overlay = $("drop-overlay");
  const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
  document.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    overlay.hidden = false;
  });
  document.addEventListener("dragleave", (e) => {
    if (e.target === overlay) overlay.hidden = true;
  });
  document.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    overlay.hidden = true;
    if (current !== "upload") location.hash = "#upload";
    addFiles([...e.dataTransfer.files]);
  });
}

function start() {
  initDetail();
  initCatalog(refresh);
  initUpload(refreshSoon);
  dropAnywhere();
  initSwitcher();
  window.addEventListener("hashchange", show);
  follow((status) => {
    render(status);
    setMaxSize(status.max_file_size);
    $("logout").hidden = !status.login;
    const changed = lastChanges !== null && status.changes !== lastChanges;
    if ((changed && current !== "upload") || (status.ready && !wasReady)) refreshSoon();
    lastChanges = status.changes;
    wasReady = status.ready;
  });
  show();
}

start();
