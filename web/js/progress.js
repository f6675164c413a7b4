// Where the job stands: the headline, elapsed time and ETA, the overall bar, the stages.

import { reconnectingWords } from "./alerts.js";
import { $, setText } from "./dom.js";
import { describeError } from "./errors.js";
import { formatBytes, formatCount, formatDuration, plural, wordCount } from "./format.js";
import { STAGE_ORDER, WEIGHTS, config, hooks, isRunning, job, st } from "./state.js";

function currentStage() {
  const s = st.stages;
  for (const name of ["reduce", "collapse", "map", "ocr", "extract"]) {
    if (s[name].status === "active") return name;
  }
  if (st.phase === "uploading" || st.phase === "connecting") return "upload";
  return null;
}

/** One sentence saying where the job stands. */
function headline() {
  const s = st.stages;
  const phase = st.phase;
  const stage = currentStage();
  if (isRunning() && job?.cancelRequested) return "Cancelling…";
  if (isRunning() && st.reconnecting) return reconnectingWords();
  if (phase === "connecting") return "Connecting to the server…";
  if (phase === "done") return `Done: ${st.doc ? `${plural(st.doc.pages, "page")} summarized` : "summarized"} in ${formatDuration(st.finalElapsed)}`;
  if (phase === "cancelled") return "Cancelled";
  if (phase === "error") return `Stopped: ${describeError(st.error).title}`;
  if (stage === "upload") return `Uploading: ${formatBytes(st.upload.acked)} of ${formatBytes(st.size)}`;
  const reading = stage === "extract" || stage === "ocr";
  if (reading && s.map.status === "pending") {
    if (stage === "ocr") return `Recognizing text (OCR): ${ocrWords()}`;
    return s.extract.total ? `Reading pages: ${formatCount(s.extract.done)} of ${formatCount(s.extract.total)}` : "Reading the document…";
  }
  if (stage === "map" || (reading && s.map.status !== "pending")) {
    const total = st.doc?.chunks;
    const running = st.chunks.filter((c) => c && c.state === "running").length;
    let words = total
      ? `Summarizing chunks: ${formatCount(s.map.done)} of ${formatCount(total)} done`
      : `Summarizing chunks: ${formatCount(s.map.done)} done, still reading pages`;
    if (running > 1) words += ` (${running} at once)`;
    if (s.ocr.status === "active") words += `; OCR ${ocrWords()}`;
    return words;
  }
  if (stage === "collapse") return `Combining chunk summaries: level ${s.collapse.level}, group ${Math.min(s.collapse.done + 1, s.collapse.total ?? 1)} of ${s.collapse.total ?? "?"}`;
  if (stage === "reduce") return "Writing the summary…";
  return "Working…";
}

/** "page 3 of 10" (pages OCR'd so far, of those that need it). */
function ocrWords() {
  const { done, total } = st.stages.ocr;
  return total != null ? `${formatCount(done)} of ${plural(total, "page")}` : `${plural(done, "page")} so far`;
}

/** " · about 2 min left for the chunks": the furthest stage that has an estimate. */
function etaWords(seconds, now) {
  const s = st.stages;
  if (!isRunning()) return "";
  if (currentStage() === "upload") {
    if (st.upload.acked <= 0) return "";
    const rate = st.upload.acked / Math.max(0.05, seconds);
    return ` · about ${formatDuration((st.size - st.upload.acked) / rate, true)} left to upload`;
  }
  // The map has no estimate until the chunks are counted.
  const labels = { reduce: "", collapse: " to combine", map: " for the chunks", ocr: " of OCR", extract: " to read the pages" };
  for (const name of ["reduce", "collapse", "map", "ocr", "extract"]) {
    const info = s[name];
    if (info.status === "active" && info.eta != null) {
      const left = Math.max(0, info.eta - (now - info.at) / 1000);
      return ` · about ${formatDuration(left, true)} left${labels[name]}`;
    }
  }
  return "";
}

export function renderProgress() {
  const phase = st.phase;
  const now = performance.now();
  const words = headline();
  setText($("headline"), words);

  // Elapsed time and ETA.
  const seconds = phase === "done" && st.finalElapsed != null
    ? st.finalElapsed
    : ((isRunning() ? now : st.endedAt || now) - st.startedAt) / 1000;
  setText($("elapsed"), `${formatDuration(seconds)} elapsed`);
  setText($("eta"), etaWords(seconds, now));

  // The bar: it never goes back while the job runs, and shows 100 only when done.
  let percent = Math.floor(overallFraction() * 100);
  if (isRunning()) {
    percent = Math.min(99, Math.max(st.shownPercent, percent));
    st.shownPercent = percent;
  } else if (phase === "done") percent = 100;
  else percent = st.shownPercent;
  hooks.percent = percent;
  const bar = $("overall");
  if (bar.dataset.percent !== String(percent)) {
    bar.dataset.percent = String(percent);
    bar.setAttribute("aria-valuenow", String(percent));
    bar.setAttribute("aria-valuetext", `${percent} percent, ${words}`);
    bar.firstElementChild.style.transform = `scaleX(${percent / 100})`;
    $("mini-bar").firstElementChild.style.transform = `scaleX(${percent / 100})`;
  }
  bar.dataset.state = phase;
  $("mini-bar").dataset.state = phase;
  // The same, small, in the top bar for when the job card is scrolled away.
  setText($("mini-status"), `${words} · ${percent}\u00a0%`);

  // The stages (OCR only for a document that needs it).
  for (const li of $("stages").children) {
    const name = li.dataset.stage;
    if (name === "ocr") li.hidden = !st.stages.ocr.seen;
    const status = stageStatus(name);
    if (li.dataset.status !== status) li.dataset.status = status;
    if (status === "active") li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
    setText(li.querySelector(".stage-detail"), stageDetail(name, status));
  }
}

function stageStatus(name) {
  const status = st.stages[name].status;
  if (status === "active" && !isRunning()) return st.phase === "done" ? "done" : "stopped";
  if ((st.phase === "error" || st.phase === "cancelled") && name === haltedStage()) return "stopped";
  if (name === "collapse" && status === "pending" && (st.stages.reduce.status !== "pending" || st.phase === "done")) return "skipped";
  return status;
}

/** The stage a failed or cancelled job stopped in: its first stage that did not finish. */
function haltedStage() {
  const s = st.stages;
  if (STAGE_ORDER.some((name) => s[name].status === "active")) return null; // shown as stopped already
  const skipped = (name) => (name === "collapse" && s.reduce.status !== "pending") || (name === "ocr" && !s.ocr.seen);
  return STAGE_ORDER.find((name) => s[name].status === "pending" && !skipped(name)) ?? null;
}

function stageDetail(name, status) {
  const s = st.stages[name];
  switch (name) {
    case "upload":
      if (status === "pending") return "";
      return status === "done" ? formatBytes(st.size) : `${Math.floor((100 * st.upload.acked) / Math.max(1, st.size))}\u00a0%`;
    case "extract":
    case "ocr":
      return s.total != null ? `${formatCount(s.done)} / ${formatCount(s.total)}` : "";
    case "map": {
      const total = st.doc?.chunks;
      if (status === "pending") return total ? `${formatCount(total)}` : "";
      return `${formatCount(s.done)} / ${total != null ? formatCount(total) : "…"}`;
    }
    case "collapse":
      if (status === "skipped") return "not needed";
      if (status === "pending") return "if needed";
      if (status === "done") return plural(s.level, "level");
      return s.total != null ? `level ${s.level} · ${s.done} / ${s.total}` : `level ${s.level}`;
    case "reduce":
      return status === "done" ? `${formatCount(wordCount(st.summary?.text ?? ""))} words` : status === "active" ? "streaming" : "";
    default:
      return "";
  }
}

/** How much of the whole job is done, 0–1, weighting the stages (WEIGHTS). */
function overallFraction() {
  if (st.phase === "done") return 1;
  const s = st.stages;
  const part = {};
  part.upload = st.size ? st.upload.acked / st.size : s.upload.status === "done" ? 1 : 0;
  if (s.upload.status === "done") part.upload = 1;
  part.extract = s.extract.total ? s.extract.done / s.extract.total : st.doc ? 1 : 0;
  if (s.ocr.seen && s.ocr.status !== "done") {
    // Reading the pages includes recognizing the scanned ones: it is done when both are.
    const ocr = s.ocr.total ? s.ocr.done / s.ocr.total : 0;
    part.extract = (part.extract + ocr) / 2;
  }
  if (st.doc) part.extract = 1;
  const chunks = st.doc?.chunks ?? estimateChunks();
  part.map = chunks ? Math.min(1, s.map.done / chunks) : 0;
  if (s.map.status === "done") part.map = 1;
  if (s.collapse.level > 0) {
    const f = s.collapse.total ? s.collapse.done / s.collapse.total : 0;
    const scale = 2 ** -(s.collapse.level - 1);
    part.collapse = 1 - scale + scale * f * 0.5;
  } else part.collapse = 0;
  if (s.reduce.status !== "pending") part.collapse = 1;
  part.reduce = s.reduce.status === "done" ? 1 : s.reduce.status === "active" ? Math.min(0.9, wordCount(st.summaryParts.join("")) / Math.max(20, st.options.summary_words ?? config.summary_words)) : 0;
  part.ocr = 0; // counted in `extract` above (its weight is 0)
  let total = 0;
  for (const name of STAGE_ORDER) total += WEIGHTS[name] * Math.max(0, Math.min(1, part[name] ?? 0));
  return total;
}

/** Chunks expected before the `document` event tells: by how far into the pages they reach. */
function estimateChunks() {
  const pages = st.stages.extract.total;
  const seen = st.chunks.length;
  if (!pages || !st.maxPageSeen || !seen) return seen || null;
  return Math.max(seen, Math.ceil((seen * pages) / st.maxPageSeen));
}
