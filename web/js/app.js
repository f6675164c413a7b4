// The page: pick or drop a document, watch it being summarized, read the summary.
//
// Server events only change plain JavaScript state and mark what is dirty
// (events.js → state.js); one requestAnimationFrame callback (scheduler.js →
// view.js) then writes the DOM, so a book with hundreds of chunks and tens of
// thousands of token events stays smooth. Document text and model output only
// ever reach the DOM through textContent / text nodes (see markdown.js):
// nothing the server sends is parsed as HTML.
//
// Modules, one idea each:
//   client.js    the wire protocol (WebSocket, upload, reconnect and resume)
//   state.js     what the page knows (server settings, the job's state, test hooks)
//   events.js    server events → state
//   scheduler.js the rendering loop (dirty flags, frames, the ticker)
//   view.js      one frame: sections, the job's head, warnings
//   progress.js  headline, times, the bar, the stages
//   chunks.js    overview cells and chunk cards
//   summary.js   the summary panel, copy and download
//   alerts.js    errors and notices in words, toasts
//   jobs.js      a job's life: start, re-open, retry, cancel, reset
//   recent.js    Recent jobs (localStorage)
//   options.js   the options form and api/config
//   dragdrop.js  dropping a file on the page
//   errors.js, format.js, markdown.js, dom.js: words, numbers, safe Markdown, DOM shorthands
// This file wires them together.

import { alertActions } from "./alerts.js";
import { wireChunks } from "./chunks.js";
import { $ } from "./dom.js";
import { wireDragAndDrop } from "./dragdrop.js";
import { cancel, canRetry, chooseFile, dropFile, openPicker, openRecent, reset, retry } from "./jobs.js";
import { wireOptions } from "./options.js";
import { wireRecent } from "./recent.js";
import { markAll, setRenderer } from "./scheduler.js";
import { isRunning, secrets } from "./state.js";
import { wireSummary } from "./summary.js";
import { render } from "./view.js";

function wireMiniProgress() {
  // Show the top bar's small progress line only while the job card is out of sight.
  const observer = new IntersectionObserver(([entry]) => {
    document.body.classList.toggle("job-card-away", !entry.isIntersecting);
  });
  observer.observe(document.querySelector(".job-card"));
}

function init() {
  setRenderer(render);
  Object.assign(alertActions, {
    retry,
    canRetry,
    chooseAnother: () => { reset(); openPicker(); },
    setSecret: (code, value) => {
      if (code !== "unauthorized") secrets.password = value; // encrypted_pdf, password_required
      else {
        secrets.token = value;
        sessionStorage.setItem("summarizer.token", value);
      }
    },
  });
  const input = $("file-input");
  $("dropzone").addEventListener("click", openPicker);
  input.addEventListener("change", () => chooseFile(input.files[0]));
  $("cancel").addEventListener("click", cancel);
  $("again").addEventListener("click", () => { reset(); });
  window.addEventListener("beforeunload", (e) => {
    if (isRunning()) e.preventDefault();
  });
  wireRecent(openRecent);
  wireDragAndDrop(dropFile);
  wireChunks();
  wireSummary();
  wireMiniProgress();
  wireOptions();
  markAll();
}

init();
