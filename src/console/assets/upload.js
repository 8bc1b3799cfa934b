// Uploads: files dropped anywhere on the page or chosen with the picker, sent three at a time,
// each with its own progress; too-large files are refused before they are sent.

import { upload } from "./api.js";
import { $, el, bytes } from "./dom.js";

const PARALLEL = 3;
const waiting = [];
let active = 0;
let maxSize = 0;
let uploaded = () => {};

function target() {
  return document.querySelector("input[name=target]:checked").value;
}

function row(file, folder) {
  const bar = el("progress", { max: 1, value: 0, "aria-label": `Upload of ${file.name}` });
  const status = el("span", { class: "upload-status", text: "waiting" });
  const actions = el("span", { class: "upload-actions" });
  const li = el(
    "li",
    { class: "upload", dataset: { name: file.name, state: "waiting" } },
    el("span", { class: "name", text: file.name, title: file.name }),
    el("span", { class: "muted", text: `${bytes(file.size)} → ${folder}/` }),
    bar,
    status,
    actions,
  );
  $("uploads").prepend(li);
  const say = (state, text) => {
    li.dataset.state = state;
    status.textContent = text;
  };
  return {
    progress: (fraction) => {
      bar.value = fraction;
      say("sending", `${Math.round(fraction * 100)} %`);
    },
    done: (text) => {
      bar.value = 1;
      say("done", text);
    },
    fail: (text) => say("failed", text),
    offer: (label, action) => actions.replaceChildren(el("button", { type: "button", text: label, onclick: () => { actions.replaceChildren(); action(); } })),
    say,
  };
}

function pump() {
  while (active < PARALLEL && waiting.length) start(waiting.shift());
}

async function start(job) {
  active += 1;
  job.row.say("sending", "0 %");
  try {
    const answer = await upload(job.file, job.folder, job.replace, job.row.progress);
    job.row.done(`added to ${answer.folder}/ as ${answer.accepted.join(", ")}`);
    uploaded();
  } catch (e) {
    const advice = e.body && e.body.advice ? ` ${e.body.advice}` : "";
    if (e.status === 429) {
      job.row.say("waiting", `busy, trying again in ${e.retryAfter || 1} s`);
      setTimeout(() => {
        waiting.unshift(job);
        pump();
      }, Math.max(1, e.retryAfter) * 1000);
    } else if (e.status === 409) {
      job.row.fail(e.message);
      job.row.offer("Replace it", () => {
        job.replace = true;
        waiting.push(job);
        pump();
      });
    } else {
      job.row.fail(`${e.message}${advice}`);
    }
  } finally {
    active -= 1;
    pump();
  }
}

export function addFiles(files) {
  const folder = target();
  for (const file of files) {
    const r = row(file, folder);
    if (maxSize && file.size > maxSize) {
      r.fail(`larger than the ${bytes(maxSize)} limit (MAX_FILE_SIZE); not sent`);
      continue;
    }
    waiting.push({ file, folder, replace: false, row: r });
  }
  pump();
}

export function setMaxSize(n) {
  maxSize = n;
}

// onUploaded() runs after each file is taken.
export function initUpload(onUploaded) {
  uploaded = onUploaded;
  const input = $("file-input");
  input.addEventListener("change", () => {
    addFiles([...input.files]);
    input.value = "";
  });
  const zone = $("dropzone");
  zone.addEventListener("dragenter", () => zone.classList.add("over"));
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", () => zone.classList.remove("over"));
}
