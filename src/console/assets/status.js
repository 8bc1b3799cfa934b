// The status bar: server-sent events from /api/events, or polling /api/status while the stream
// is broken (the stream is tried again every half minute).

import { getJSON } from "./api.js";
import { $, bytes } from "./dom.js";

const POLL_MS = 3000;
const RETRY_STREAM_MS = 30000;

function set(id, text, level) {
  const chip = $(id);
  chip.querySelector(".value").textContent = text;
  chip.dataset.level = level || "";
}

function engineText(engine) {
  const name = engine.name === "gradio" ? "remote (Gradio)" : "embedded";
  const words = { loading: "loading", ok: "ok", fallback: "fallback in use", down: "down" };
  let text = `${name} · ${words[engine.state] || engine.state}`;
  if (engine.circuit === "open") text += " · circuit open";
  return text;
}

export function render(s) {
  const level = { ok: "ok", loading: "info", fallback: "warn", down: "bad" }[s.engine.state];
  set("st-engine", engineText(s.engine), level);
  $("st-engine").title = s.engine.message;
  set("st-queue", String(s.queue), s.queue > 0 ? "info" : "");
  set("st-flight", String(s.in_flight), s.in_flight > 0 ? "info" : "");
  set("st-today", String(s.today));
  set("st-rejected", String(s.rejected), s.rejected > 0 ? "warn" : "");
  set("st-disk", bytes(s.disk_free_bytes), s.disk_low ? "bad" : "");
  $("count-products").textContent = s.products ? String(s.products) : "";
  $("count-backgrounds").textContent = s.backgrounds ? String(s.backgrounds) : "";
  $("count-rejected").textContent = s.rejected ? String(s.rejected) : "";
  $("count-rejected").dataset.level = s.rejected ? "warn" : "";
  $("max-size").textContent = bytes(s.max_file_size);
}

function mode(live) {
  set("st-live", live ? "live" : "polling", live ? "ok" : "warn");
  $("st-live").title = live ? "Updates arrive as they happen" : `Live updates lost; checking every ${POLL_MS / 1000} s`;
}

// Calls onStatus(snapshot) with every new status, by stream or by polling.
export function follow(onStatus) {
  let poller = null;
  const poll = async () => {
    try {
      onStatus(await getJSON("api/status"));
    } catch {
      set("st-live", "offline", "bad");
    }
  };
  const connect = () => {
    const stream = new EventSource("api/events");
    stream.addEventListener("status", (e) => {
      if (poller) {
        clearInterval(poller);
        poller = null;
      }
      mode(true);
      onStatus(JSON.parse(e.data));
    });
    stream.addEventListener("error", () => {
      stream.close();
      mode(false);
      if (!poller) {
        poll();
        poller = setInterval(poll, POLL_MS);
      }
      setTimeout(connect, RETRY_STREAM_MS);
    });
  };
  connect();
}
