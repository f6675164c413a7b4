// The summary panel: the streamed or final summary, the facts beside it, copy and download.

import { toast } from "./alerts.js";
import { $, el, setText } from "./dom.js";
import { formatCount, formatDuration, pageRanges, pageRangesWords, plural, wordCount } from "./format.js";
import { renderMarkdown } from "./markdown.js";
import { isRunning, st } from "./state.js";

let renderedSummary = ""; // the text #summary-body shows

export function renderSummary() {
  const panel = $("summary");
  const text = st.summary ? st.summary.text : st.summaryParts.join("");
  const status = st.summary ? "done" : st.stages.reduce.status === "active" ? "streaming" : isRunning() ? "waiting" : "none";
  panel.dataset.status = status;
  const placeholder = $("summary-placeholder");
  placeholder.hidden = Boolean(text);
  if (!text) {
    placeholder.textContent = status === "none"
      ? st.phase === "cancelled" ? "No summary: the job was cancelled before it was written." : "No summary: the job stopped before it was written."
      : st.stages.collapse.status === "active"
        ? "Combining the chunk summaries; the summary is written next."
        : "The summary of the whole document is written once every chunk has been summarized.";
  }
  if (renderedSummary !== text) {
    renderMarkdown($("summary-body"), text);
    renderedSummary = text;
  }
  $("copy").disabled = $("download").disabled = !st.summary;
  renderMissing();
  renderStats(text);
}

/** Say plainly, above the summary, which pages it does not cover (chunks that failed). */
function renderMissing() {
  const box = $("summary-missing");
  const { count, text } = pageRanges(st.summary?.missing_pages);
  box.hidden = count === 0;
  if (!count) return;
  const failed = st.chunks.filter((c) => c?.state === "failed").length;
  const which = count === 1 ? `Page ${text} is` : `Pages ${text} are`;
  const chunks = failed === 1 ? "its chunk" : `${failed || "their"} chunks`;
  setText(box, `${which} not covered by this summary: ${chunks} could not be summarized (the red ${failed === 1 ? "card" : "cards"} below).`);
}

/** Empty the panel (a new job). */
export function clearSummary() {
  $("summary-body").replaceChildren();
  renderedSummary = "";
}

/** The facts beside the summary: document size, chunks, model, time, calls. */
function renderStats(text) {
  const rows = [];
  const pages = st.doc?.pages ?? st.stages.extract.total;
  if (pages != null) rows.push(["Pages", formatCount(pages)]);
  if (st.doc) rows.push(["Characters", formatCount(st.doc.characters)]);
  const chunks = st.doc?.chunks;
  const done = st.chunks.filter((c) => c?.state === "done").length;
  if (chunks != null || done) rows.push(["Chunks", st.phase === "done" || done === chunks ? formatCount(chunks ?? done) : chunks != null ? `${formatCount(done)} of ${formatCount(chunks)} done` : `${formatCount(done)} done so far`]);
  const model = st.summary?.model || st.accepted?.model;
  if (model) rows.push(["Model", model]);
  if (st.summary) {
    rows.push(["Time", formatDuration(st.summary.elapsed_s)]);
    const calls = st.summary.calls || {};
    const n = (calls.map ?? 0) + (calls.collapse ?? 0) + (calls.reduce ?? 0);
    if (n) rows.push(["Model calls", `${formatCount(n)} (${formatCount(calls.map ?? 0)} chunk, ${formatCount(calls.collapse ?? 0)} combine, ${formatCount(calls.reduce ?? 0)} final)`]);
    rows.push(["Summary", plural(wordCount(text), "word")]);
    const tokens = st.summary.usage?.total_tokens;
    if (tokens) rows.push(["Tokens", formatCount(tokens)]);
    if (typeof st.summary.cost_usd === "number" && st.summary.cost_usd > 0) rows.push(["Cost", `$${st.summary.cost_usd.toFixed(4)}`]);
    const missing = pageRangesWords(st.summary.missing_pages);
    if (missing) rows.push(["Left out", missing]);
  }
  const ocr = pageRangesWords(st.doc?.ocr_pages);
  if (ocr) rows.push(["OCR", ocr]);
  const list = $("summary-stats");
  const key = JSON.stringify(rows);
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...rows.flatMap(([term, value]) => {
    const row = el("div", "stat");
    row.append(el("dt", "", term), el("dd", "", value));
    return [row];
  }));
}

function summaryText() {
  return st.summary?.text ?? "";
}

async function copySummary() {
  const text = summaryText();
  if (!text) return;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Clipboard API unavailable (plain http on another host): the old way.
    const area = el("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    if (!ok) { toast("Could not copy: select the text and copy it by hand."); return; }
  }
  toast("Summary copied to the clipboard.");
}

function downloadSummary() {
  const text = summaryText();
  if (!text) return;
  const stem = st.filename.replace(/\.[^.]+$/, "") || "document";
  const blob = new Blob([`# Summary of ${st.filename}\n\n${text.trim()}\n`], { type: "text/markdown;charset=utf-8" });
  const url = URL.createObjectURL(blob);
  const a = el("a");
  a.href = url;
  a.download = `${stem}.summary.md`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function wireSummary() {
  $("copy").addEventListener("click", copySummary);
  $("download").addEventListener("click", downloadSummary);
}
