// One frame of the page: which section shows, the job's head (file, alert,
// warnings), progress, chunks and summary — each redrawn only when dirty.

import { cancelledNotice, reconnectNotice, renderAlert } from "./alerts.js";
import { renderCellCount, renderChunk } from "./chunks.js";
import { $, el, setText } from "./dom.js";
import { fileKind, formatBytes, formatCount, pageRanges, plural } from "./format.js";
import { renderProgress } from "./progress.js";
import { dirty } from "./scheduler.js";
import { hooks, isRunning, job, st } from "./state.js";
import { renderSummary } from "./summary.js";

export function render() {
  const phase = st.phase;
  document.body.dataset.phase = phase;
  hooks.phase = phase;
  const idle = phase === "idle";
  $("intake").hidden = !idle;
  $("job").hidden = idle;
  if (!idle) {
    renderHead();
    renderProgress();
    if (dirty.overviewCells) renderCellCount();
    for (const index of dirty.chunks) renderChunk(st.chunks[index]);
    dirty.chunks.clear();
    if (dirty.summary || dirty.all) renderSummary();
    $("columns").hidden = !isRunning() && st.phase !== "done" && st.chunks.length === 0;
    $("overview-empty").hidden = st.chunks.length > 0;
  }
  dirty.all = false;
  dirty.summary = false;
  dirty.overviewCells = false;
}

function renderHead() {
  if (!dirty.all) return;
  $("file-name").textContent = st.filename;
  $("file-kind").textContent = fileKind(st.filename, st.file?.type);
  const meta = [formatBytes(st.size)];
  const pages = st.doc?.pages ?? st.stages.extract.total;
  if (pages != null) meta.push(plural(pages, "page"));
  if (st.doc) {
    meta.push(`${formatCount(st.doc.characters)} characters`);
    meta.push(plural(st.doc.chunks, "chunk"));
  }
  const ocr = pageRanges(st.doc?.ocr_pages);
  if (ocr.count) meta.push(`OCR: ${ocr.count === 1 ? "page" : "pages"} ${ocr.text}`);
  const model = st.summary?.model || st.accepted?.model;
  if (model) meta.push(`model ${model}`);
  $("file-meta").textContent = meta.join(" · ");
  const running = isRunning();
  $("cancel").hidden = !running;
  $("again").hidden = running;
  $("cancel").disabled = job?.cancelRequested ?? false;
  renderAlert($("job-alert"), st.error, st.phase === "cancelled" ? cancelledNotice() : st.reconnecting && isRunning() ? reconnectNotice() : null);
  renderWarnings();
}

function renderWarnings() {
  const box = $("warnings");
  box.hidden = st.warnings.length === 0;
  if (!st.warnings.length) return;
  const first = st.warnings[0];
  setText($("warnings-summary"), st.warnings.length === 1 ? first : `${st.warnings.length} warnings: ${first}`);
  const list = $("warnings-list");
  while (list.children.length < st.warnings.length) list.append(el("li", "", st.warnings[list.children.length]));
}

/** Empty the warnings (a new job). */
export function clearWarnings() {
  $("warnings-list").replaceChildren();
  $("warnings").open = false;
}
