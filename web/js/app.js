// The page: pick or drop a document, watch it being summarized, read the summary.
//
// Server events only change plain JavaScript state and mark what is dirty; one
// requestAnimationFrame callback (render) then writes the DOM, so a book with
// hundreds of chunks and tens of thousands of token events stays smooth.
// Document text and model output only ever reach the DOM through textContent /
// text nodes (see markdown.js): nothing the server sends is parsed as HTML.

import { SummaryJob, defaultSocketUrl, reconnectPolicy } from "./client.js";
import { describeError } from "./errors.js";
import { renderMarkdown } from "./markdown.js";
import { formatBytes, formatDuration, formatCount, pageRange, plural } from "./format.js";

const $ = (id) => document.getElementById(id);
const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

const ACCEPTED_EXTENSIONS = new Set(["pdf", "txt", "text", "md", "markdown"]);
const ACCEPTED_TYPES = new Set(["application/pdf", "text/plain", "text/markdown", "text/x-markdown"]);
const LENGTHS = [
  [100, "Short"],
  [250, "Medium"],
  [500, "Long"],
  [1000, "Very long"],
];
// Share of the overall progress bar per stage (they add up to 1).
const WEIGHTS = { upload: 0.08, extract: 0.17, map: 0.55, collapse: 0.12, reduce: 0.08 };
const STAGE_ORDER = ["upload", "extract", "map", "collapse", "reduce"];

// ---------------------------------------------------------------------------
// state
// ---------------------------------------------------------------------------

const config = {
  models: [],
  model: null,
  summary_words: 250,
  max_document_bytes: null,
  reachable: null,
};

let job = null; // the current SummaryJob
let st = freshState(); // what the page shows about the current job
const dirty = { all: true, chunks: new Set(), summary: false, overviewCells: false };
let frameRequested = false;
let renderedSummary = ""; // the text #summary-body shows
let ticker = null;
let secrets = { password: null, token: sessionStorage.getItem("summarizer.token") };
let jobMode = "start"; // how the current job was opened: start | reopen (Recent jobs) | retry (resume after a lost connection)

function freshState() {
  return {
    phase: "idle", // idle | connecting | uploading | processing | done | cancelled | error
    file: null,
    filename: "",
    size: 0,
    options: {},
    startedAt: 0,
    endedAt: 0,
    finalElapsed: null,
    upload: { sent: 0, acked: 0 },
    stages: {
      upload: { status: "pending" },
      extract: { status: "pending", done: 0, total: null, eta: null, at: 0 },
      map: { status: "pending", done: 0, total: null, eta: null, at: 0 },
      collapse: { status: "pending", level: 0, done: 0, total: null, eta: null, at: 0 },
      reduce: { status: "pending", done: 0, total: 1, eta: null, at: 0 },
    },
    accepted: null,
    doc: null, // the `document` event
    chunks: [], // by index: {index, pages, characters, state, parts, text, card, cell}
    maxPageSeen: 0,
    summaryParts: [],
    summary: null, // the `summary` event
    warnings: [],
    error: null,
    shownPercent: 0,
    collapsed: false,
    jobId: null,
    reconnecting: null, // {attempt, attempts} while the page reconnects by itself
  };
}

// Test and debugging hooks (read-only by convention).
const hooks = {
  phase: "idle",
  lastSummary: null, // `summary.text` exactly as the protocol sent it
  lastError: null,
  events: 0,
  chunks: 0,
  maxInFlight: 0,
  ackWindow: 0,
  percent: 0,
  lastResumed: null, // the last `resumed` answer
  reconnects: 0, // reconnect attempts of the current job
  duplicates: 0, // events the client dropped as already processed
  jobId: null,
  reconnect: reconnectPolicy, // tests may tune the backoff
  dropConnection: () => job?.dropConnection(),
};
window.__summarizer = hooks;

// ---------------------------------------------------------------------------
// rendering loop
// ---------------------------------------------------------------------------

// At most this often (ms): streaming text at ~20 frames a second reads as smooth and
// leaves the CPU to the rest of the machine (software-rendered browsers included).
const MIN_FRAME_MS = 50;
let lastRender = 0;

function schedule() {
  if (frameRequested) return;
  frameRequested = true;
  const wait = lastRender + MIN_FRAME_MS - performance.now();
  if (wait > 4) setTimeout(() => requestAnimationFrame(render), wait);
  else requestAnimationFrame(render);
}

function markAll() {
  dirty.all = true;
  schedule();
}

function render() {
  frameRequested = false;
  lastRender = performance.now();
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

function isRunning(phase = st.phase) {
  return phase === "connecting" || phase === "uploading" || phase === "processing";
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

function cancelledNotice() {
  const s = st.stages.map;
  const seconds = st.finalElapsed ?? (st.endedAt - st.startedAt) / 1000;
  return {
    kind: "info",
    title: "Cancelled",
    hint: `You stopped this summary after ${formatDuration(seconds)}${s.done ? `, with ${plural(s.done, "chunk")} summarized` : ""}. The chunk summaries so far stay below.`,
  };
}

function reconnectingWords() {
  return `Connection lost — reconnecting (attempt ${st.reconnecting.attempt})…`;
}

function reconnectNotice() {
  return {
    kind: "info",
    title: reconnectingWords(),
    hint: "The job keeps running on the server; the page picks it up where it left off.",
  };
}

function currentStage() {
  const s = st.stages;
  for (const name of ["reduce", "collapse", "map", "extract"]) {
    if (s[name].status === "active") return name;
  }
  if (st.phase === "uploading" || st.phase === "connecting") return "upload";
  return null;
}

function renderProgress() {
  const s = st.stages;
  const phase = st.phase;
  const now = performance.now();

  // Headline: one sentence saying where the job stands.
  let headline;
  const stage = currentStage();
  if (isRunning() && job?.cancelRequested) headline = "Cancelling…";
  else if (isRunning() && st.reconnecting) headline = reconnectingWords();
  else if (phase === "connecting") headline = "Connecting to the server…";
  else if (phase === "done") headline = `Done: ${st.doc ? `${plural(st.doc.pages, "page")} summarized` : "summarized"} in ${formatDuration(st.finalElapsed)}`;
  else if (phase === "cancelled") headline = "Cancelled";
  else if (phase === "error") headline = `Stopped: ${describeError(st.error).title}`;
  else if (stage === "upload") headline = `Uploading: ${formatBytes(st.upload.acked)} of ${formatBytes(st.size)}`;
  else if (stage === "extract" && s.map.status === "pending") headline = s.extract.total ? `Reading pages: ${formatCount(s.extract.done)} of ${formatCount(s.extract.total)}` : "Reading the document…";
  else if (stage === "map" || (stage === "extract" && s.map.status !== "pending")) {
    const total = st.doc?.chunks;
    const running = st.chunks.filter((c) => c && c.state === "running").length;
    headline = total
      ? `Summarizing chunks: ${formatCount(s.map.done)} of ${formatCount(total)} done`
      : `Summarizing chunks: ${formatCount(s.map.done)} done, still reading pages`;
    if (running > 1) headline += ` (${running} at once)`;
  } else if (stage === "collapse") headline = `Combining chunk summaries: level ${s.collapse.level}, group ${Math.min(s.collapse.done + 1, s.collapse.total ?? 1)} of ${s.collapse.total ?? "?"}`;
  else if (stage === "reduce") headline = "Writing the summary…";
  else headline = "Working…";
  setText($("headline"), headline);

  // Elapsed time and ETA.
  const seconds = phase === "done" && st.finalElapsed != null
    ? st.finalElapsed
    : ((isRunning() ? now : st.endedAt || now) - st.startedAt) / 1000;
  setText($("elapsed"), `${formatDuration(seconds)} elapsed`);
  let eta = "";
  if (isRunning() && stage === "upload" && st.upload.acked > 0) {
    const rate = st.upload.acked / Math.max(0.05, seconds);
    eta = ` · about ${formatDuration((st.size - st.upload.acked) / rate, true)} left to upload`;
  } else if (isRunning()) {
    // The furthest stage that has an estimate (the map has none until the chunks are counted).
    const labels = { reduce: "", collapse: " to combine", map: " for the chunks", extract: " to read the pages" };
    for (const name of ["reduce", "collapse", "map", "extract"]) {
      const info = s[name];
      if (info.status === "active" && info.eta != null) {
        const left = Math.max(0, info.eta - (now - info.at) / 1000);
        eta = ` · about ${formatDuration(left, true)} left${labels[name]}`;
        break;
      }
    }
  }
  setText($("eta"), eta);

  // The bar.
  const fraction = overallFraction();
  let percent = Math.floor(fraction * 100);
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
    bar.setAttribute("aria-valuetext", `${percent} percent, ${headline}`);
    bar.firstElementChild.style.transform = `scaleX(${percent / 100})`;
    $("mini-bar").firstElementChild.style.transform = `scaleX(${percent / 100})`;
  }
  bar.dataset.state = phase;
  $("mini-bar").dataset.state = phase;
  // The same, small, in the top bar for when the job card is scrolled away.
  setText($("mini-status"), `${headline} · ${percent}\u00a0%`);

  // The stages.
  for (const li of $("stages").children) {
    const name = li.dataset.stage;
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
  return STAGE_ORDER.find((name) => s[name].status === "pending" && !(name === "collapse" && s.reduce.status !== "pending")) ?? null;
}

function stageDetail(name, status) {
  const s = st.stages[name];
  switch (name) {
    case "upload":
      if (status === "pending") return "";
      return status === "done" ? formatBytes(st.size) : `${Math.floor((100 * st.upload.acked) / Math.max(1, st.size))}\u00a0%`;
    case "extract":
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

function overallFraction() {
  if (st.phase === "done") return 1;
  const s = st.stages;
  const part = {};
  part.upload = st.size ? st.upload.acked / st.size : s.upload.status === "done" ? 1 : 0;
  if (s.upload.status === "done") part.upload = 1;
  part.extract = s.extract.total ? s.extract.done / s.extract.total : st.doc ? 1 : 0;
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
  let total = 0;
  for (const name of STAGE_ORDER) total += WEIGHTS[name] * Math.max(0, Math.min(1, part[name]));
  return total;
}

/** Chunks expected before the `document` event tells: by how far into the pages they reach. */
function estimateChunks() {
  const pages = st.stages.extract.total;
  const seen = st.chunks.length;
  if (!pages || !st.maxPageSeen || !seen) return seen || null;
  return Math.max(seen, Math.ceil((seen * pages) / st.maxPageSeen));
}

function renderCellCount() {
  const total = st.doc?.chunks;
  setText($("chunk-count"), total != null ? `${formatCount(total)}` : st.chunks.length ? `${formatCount(st.chunks.length)}+` : "");
}

function renderSummary() {
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
  renderStats(text);
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
    const missing = st.summary.missing_pages;
    if (Array.isArray(missing) && missing.length) {
      rows.push(["Left out", `${plural(missing.length, "page")}: ${missing.slice(0, 12).join(", ")}${missing.length > 12 ? ", …" : ""}`]);
    }
  }
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

function renderWarnings() {
  const box = $("warnings");
  box.hidden = st.warnings.length === 0;
  if (!st.warnings.length) return;
  const first = st.warnings[0];
  setText($("warnings-summary"), st.warnings.length === 1 ? first : `${st.warnings.length} warnings: ${first}`);
  const list = $("warnings-list");
  while (list.children.length < st.warnings.length) list.append(el("li", "", st.warnings[list.children.length]));
}

/** Show an error (or notice) with friendly words, the server's message and ways out. */
function renderAlert(box, error, notice = null) {
  const key = error ? `${error.code}|${error.message}` : notice ? `notice|${notice.title}|${notice.hint}` : "";
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren();
  box.hidden = !key;
  if (!key) return;
  const words = error ? describeError(error) : notice;
  box.dataset.kind = error ? "error" : notice.kind;
  if (error) box.dataset.code = error.code;
  else delete box.dataset.code;
  const icon = el("div", "alert-icon");
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = error ? "!" : "i";
  const content = el("div", "alert-content");
  content.append(el("p", "alert-title", words.title), el("p", "alert-hint", words.hint));
  if (words.detail) content.append(el("p", "alert-detail", `Server said: ${words.detail}`));
  const actions = el("div", "alert-actions");
  if (error?.code === "encrypted_pdf" || error?.code === "unauthorized") {
    const form = el("form", "secret-form");
    const id = `secret-${error.code}`;
    const label = el("label", "", error.code === "encrypted_pdf" ? "PDF password" : "Access token");
    label.htmlFor = id;
    const input = el("input");
    input.type = "password";
    input.id = id;
    input.autocomplete = "off";
    input.required = true;
    const submit = el("button", "btn btn-primary btn-small", error.code === "encrypted_pdf" ? "Open with password" : "Connect");
    submit.type = "submit";
    form.append(label, input, submit);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (error.code === "encrypted_pdf") secrets.password = input.value;
      else {
        secrets.token = input.value;
        sessionStorage.setItem("summarizer.token", input.value);
      }
      retry();
    });
    actions.append(form);
  }
  if (error && box.id === "job-alert" && (st.file || canResume(error)) && error.retryable !== false) {
    const again = el("button", "btn btn-primary btn-small", "Try again");
    again.type = "button";
    again.dataset.action = "retry";
    again.addEventListener("click", retry);
    actions.append(again);
  }
  if (error && box.id === "job-alert") {
    const other = el("button", "btn btn-small", "Choose another file");
    other.type = "button";
    other.addEventListener("click", () => { reset(); openPicker(); });
    actions.append(other);
  }
  if (actions.children.length) content.append(actions);
  box.append(icon, content);
}

// ---------------------------------------------------------------------------
// chunks: overview cells and cards
// ---------------------------------------------------------------------------

function chunkAt(index) {
  for (let i = st.chunks.length; i <= index; i++) {
    st.chunks[i] = { index: i, pages: null, characters: 0, state: "pending", parts: [], text: null, card: null, cell: null, restarts: 0 };
    addCell(st.chunks[i]);
    dirty.overviewCells = true;
  }
  return st.chunks[index];
}

function addCell(chunk) {
  const cell = el("button", "cell");
  cell.type = "button";
  cell.dataset.index = String(chunk.index);
  cell.dataset.state = "pending";
  cell.tabIndex = chunk.index === 0 ? 0 : -1;
  cell.setAttribute("aria-label", `Chunk ${chunk.index + 1}: waiting`);
  chunk.cell = cell;
  $("overview").append(cell);
}

function ensureCard(chunk) {
  if (chunk.card) return chunk.card;
  const card = el("li", "chunk-card");
  card.id = `chunk-${chunk.index}`;
  card.dataset.index = String(chunk.index);
  const heading = el("h3", "chunk-heading");
  const toggle = el("button", "chunk-toggle");
  toggle.type = "button";
  toggle.setAttribute("aria-expanded", String(!st.collapsed));
  toggle.setAttribute("aria-controls", `chunk-${chunk.index}-body`);
  toggle.append(el("span", "chev"), el("span", "chunk-no", `#${chunk.index + 1}`), el("span", "chunk-pages", ""), el("span", "chunk-badge", ""));
  heading.append(toggle);
  const body = el("p", "chunk-body");
  body.id = `chunk-${chunk.index}-body`;
  body.hidden = st.collapsed;
  card.append(heading, body);
  chunk.card = card;
  // Keep document order: insert before the next card that exists already.
  let next = null;
  for (let i = chunk.index + 1; i < st.chunks.length; i++) {
    if (st.chunks[i]?.card) { next = st.chunks[i].card; break; }
  }
  $("cards").insertBefore(card, next);
  hooks.chunks = $("cards").children.length;
  return card;
}

const STATE_WORDS = { pending: "waiting", running: "writing…", done: "done", failed: "failed", stopped: "stopped" };

function renderChunk(chunk) {
  if (!chunk) return;
  const { cell } = chunk;
  const range = chunk.pages ? pageRange(chunk.pages) : "";
  if (cell.dataset.state !== chunk.state) cell.dataset.state = chunk.state;
  cell.setAttribute("aria-label", `Chunk ${chunk.index + 1}${range ? `, ${range}` : ""}: ${STATE_WORDS[chunk.state]}`);
  cell.title = `#${chunk.index + 1}${range ? ` · ${range}` : ""} · ${STATE_WORDS[chunk.state]}`;
  if (chunk.state === "pending") return;
  const card = ensureCard(chunk);
  card.dataset.state = chunk.state;
  setText(card.querySelector(".chunk-pages"), range);
  setText(card.querySelector(".chunk-badge"), chunk.restarts && chunk.state === "running" ? "retrying…" : STATE_WORDS[chunk.state]);
  const body = card.querySelector(".chunk-body");
  const text = chunk.text ?? chunk.parts.join("");
  if (chunk.text == null && chunk.parts.length > 1) chunk.parts = [text];
  setText(body, text);
  body.classList.toggle("empty", !text);
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// ---------------------------------------------------------------------------
// events from the server
// ---------------------------------------------------------------------------

function onEvent(ev) {
  hooks.events += 1;
  const now = performance.now();
  const s = st.stages;
  if (st.reconnecting && ev.type !== "reconnecting") {
    st.reconnecting = null;
    dirty.all = true;
  }
  if (job) hooks.duplicates = job.duplicates;
  switch (ev.type) {
    case "reconnecting":
      st.reconnecting = { attempt: ev.attempt, attempts: ev.attempts };
      hooks.reconnects += 1;
      break;
    case "resumed":
      hooks.lastResumed = ev;
      st.jobId = hooks.jobId = ev.job_id;
      remember({ state: ev.state, force: true });
      break;
    case "accepted":
      st.jobId = hooks.jobId = ev.job_id;
      remember({ state: "uploading" });
      st.accepted = ev;
      st.phase = "uploading";
      s.upload.status = "active";
      hooks.ackWindow = ev.limits?.ack_window_bytes ?? 0;
      if (Array.isArray(ev.models) && ev.models.length) fillModels(ev.models, ev.model);
      break;
    case "ack":
      st.upload.acked = ev.received;
      if (ev.received >= st.size) uploadDone();
      break;
    case "progress": {
      const stage = s[ev.stage];
      if (!stage) break;
      if (ev.stage !== "upload") uploadDone();
      st.phase = "processing";
      remember({ state: "processing" });
      stage.done = ev.done;
      if (ev.total != null) stage.total = ev.total;
      stage.eta = ev.eta_s;
      stage.at = now;
      const finished = ev.total != null && ev.done >= ev.total && (ev.stage !== "map" || st.doc);
      stage.status = finished ? "done" : "active";
      if (ev.stage === "collapse" || ev.stage === "reduce") {
        if (s.map.status !== "done") s.map.status = "done";
        if (s.extract.status !== "done") s.extract.status = "done";
      }
      if (ev.stage === "reduce" && s.collapse.status === "active") s.collapse.status = "done";
      if (ev.stage === "map" && ev.done > 0 && s.extract.status === "pending") s.extract.status = "active";
      break;
    }
    case "document":
      st.doc = ev;
      uploadDone();
      s.extract.status = "done";
      s.extract.total ??= ev.pages;
      s.extract.done = s.extract.total;
      if (ev.chunks > 0) chunkAt(ev.chunks - 1);
      s.map.total = ev.chunks;
      if (s.map.done >= ev.chunks) s.map.status = "done";
      else if (s.map.status === "pending") s.map.status = "active";
      dirty.overviewCells = true;
      break;
    case "chunk.started": {
      const chunk = chunkAt(ev.index);
      chunk.pages = ev.pages;
      chunk.characters = ev.characters ?? 0;
      chunk.state = "running";
      chunk.parts = [];
      chunk.text = null;
      st.maxPageSeen = Math.max(st.maxPageSeen, ev.pages?.[1] ?? 0);
      if (s.map.status === "pending") s.map.status = "active";
      st.phase = "processing";
      dirty.chunks.add(ev.index);
      break;
    }
    case "chunk.token": {
      const chunk = chunkAt(ev.index);
      if (chunk.state === "pending") chunk.state = "running";
      chunk.pages ??= ev.pages;
      chunk.parts.push(ev.text);
      dirty.chunks.add(ev.index);
      break;
    }
    case "chunk.summary": {
      const chunk = chunkAt(ev.index);
      chunk.pages = ev.pages;
      chunk.state = "done";
      chunk.text = ev.text;
      chunk.parts = [];
      dirty.chunks.add(ev.index);
      break;
    }
    case "chunk.restart": {
      const chunk = chunkAt(ev.index);
      chunk.state = "running";
      chunk.parts = [];
      chunk.text = null;
      chunk.restarts += 1;
      dirty.chunks.add(ev.index);
      break;
    }
    case "collapse":
      s.map.status = "done";
      s.extract.status = "done";
      s.collapse.status = "active";
      s.collapse.level = ev.level;
      s.collapse.total = ev.groups;
      s.collapse.done = 0;
      s.collapse.eta = null;
      break;
    case "summary.token":
      if (s.reduce.status === "pending") s.reduce.status = "active";
      st.summaryParts.push(ev.text);
      dirty.summary = true;
      break;
    case "summary.restart":
      st.summaryParts = [];
      dirty.summary = true;
      break;
    case "summary":
      remember({ state: "done" });
      st.summary = ev;
      hooks.lastSummary = ev.text;
      st.finalElapsed = ev.elapsed_s;
      for (const name of STAGE_ORDER) if (s[name].status === "active") s[name].status = "done";
      s.reduce.status = "done";
      end("done");
      dirty.summary = true;
      break;
    case "warning":
      st.warnings.push(ev.message);
      break;
    case "cancelled":
      if (!ev.local) remember({ state: "cancelled" });
      st.finalElapsed = ev.elapsed_s ?? null;
      stopChunks("stopped");
      end("cancelled");
      break;
    case "error":
      if (ev.code === "unknown_job" && jobMode !== "start") {
        forgetUnknownJob();
        return;
      }
      if (!ev.local) remember({ state: "failed" });
      st.error = ev;
      hooks.lastError = { code: ev.code, message: ev.message };
      stopChunks("failed");
      end("error");
      break;
    default:
      // collapse.token / collapse.summary / collapse.restart and fields unknown to v1 clients: nothing to show.
      return;
  }
  markAll();
}

function uploadDone() {
  if (st.stages.upload.status !== "done") {
    st.stages.upload.status = "done";
    st.upload.acked = st.size;
  }
}

function stopChunks(state) {
  for (const chunk of st.chunks) {
    if (chunk && chunk.state === "running") {
      chunk.state = state;
      dirty.chunks.add(chunk.index);
    }
  }
}

function end(phase) {
  st.phase = phase;
  st.endedAt = performance.now();
  clearInterval(ticker);
  ticker = null;
  dirty.summary = true;
  if (phase !== "done") {
    // Move focus to the explanation so keyboard and screen-reader users notice.
    requestAnimationFrame(() => {
      const alert = $("job-alert");
      if (!alert.hidden) {
        const action = alert.querySelector("input, button");
        (action ?? $("again")).focus({ preventScroll: true });
      }
    });
  }
}

// ---------------------------------------------------------------------------
// actions
// ---------------------------------------------------------------------------

function chooseFile(file) {
  if (!file) return;
  if (isRunning()) {
    toast("A document is being summarized. Cancel it first, or wait until it is done.");
    return;
  }
  const ext = /\.([^.]+)$/.exec(file.name)?.[1]?.toLowerCase();
  if (ext && !ACCEPTED_EXTENSIONS.has(ext) && !ACCEPTED_TYPES.has(file.type)) {
    reset();
    renderAlert($("intake-alert"), { code: "unsupported_file", message: `“${file.name}” is not a PDF, .txt or .md file.` });
    return;
  }
  if (config.max_document_bytes && file.size > config.max_document_bytes) {
    reset();
    renderAlert($("intake-alert"), {
      code: "document_too_large",
      message: `“${file.name}” is ${formatBytes(file.size)}; this server accepts at most ${formatBytes(config.max_document_bytes)}.`,
    });
    return;
  }
  secrets.password = null;
  startJob(file);
}

function startJob(file) {
  const options = {
    model: $("opt-model").value || null,
    summary_words: Number($("opt-words").value) || null,
  };
  if (secrets.password) options.password = secrets.password;
  st = freshState();
  st.file = file;
  st.filename = file.name || "document";
  st.size = file.size;
  st.options = options;
  connectJob({ mode: "start", file, options });
}

/** Show a fresh view for the job in `st` and connect: `start` it, or `resume` it by id. */
function connectJob({ mode, file = null, options = {}, jobId = null }) {
  st.phase = "connecting";
  document.body.dataset.phase = "connecting"; // at once: the last job's end state is stale now
  st.startedAt = st.startedAt || performance.now();
  st.stages.upload.status = "active";
  $("overview").replaceChildren();
  $("cards").replaceChildren();
  $("warnings-list").replaceChildren();
  $("warnings").open = false;
  $("summary-body").replaceChildren();
  renderedSummary = "";
  $("toggle-all").textContent = "Collapse all";
  $("toggle-all").setAttribute("aria-pressed", "false");
  renderAlert($("intake-alert"), null);
  Object.assign(hooks, { lastSummary: null, lastError: null, events: 0, chunks: 0, maxInFlight: 0, percent: 0, reconnects: 0, duplicates: 0, jobId });
  jobMode = mode;
  const current = new SummaryJob({
    url: defaultSocketUrl(),
    file,
    filename: st.filename,
    options,
    token: secrets.token,
    jobId,
    lastSeq: 0, // a re-opened job replays its whole log into the fresh view
    onEvent: (ev) => { if (current === job) onEvent(ev); },
    onUpload: (u) => {
      if (current !== job) return;
      hooks.maxInFlight = u.maxInFlight;
      st.upload.sent = u.sent;
      st.upload.acked = Math.max(st.upload.acked, u.acked);
      schedule();
    },
  });
  job = current;
  clearInterval(ticker);
  ticker = setInterval(() => { dirty.all = true; schedule(); }, 250);
  markAll();
  job.start();
  $("main").focus({ preventScroll: true });
}

/** Re-open a job by id (from Recent jobs, or after a lost connection): replay its log, then follow it live. */
function resumeJob(jobId, { mode, file = null, filename, size = 0, started = null, options = {} }) {
  st = freshState();
  st.jobId = jobId;
  st.file = file;
  st.filename = filename || "document";
  st.size = file ? file.size : size || 0;
  st.options = options;
  // Elapsed time counts from when the job was started, not from now.
  if (started) st.startedAt = performance.now() - Math.max(0, Date.now() - started);
  connectJob({ mode, file, options, jobId });
}

function canResume(error) {
  return error?.code === "connection_lost" && Boolean(st.jobId);
}

function retry() {
  if (isRunning()) return;
  if (canResume(st.error)) {
    // The job may well be alive on the server: pick it up; re-upload only if it is unknown.
    const known = recentJobs().find((r) => r.job_id === st.jobId);
    resumeJob(st.jobId, { mode: "retry", file: st.file, filename: st.filename, size: st.size, started: known?.started, options: st.options });
    return;
  }
  if (!st.file) return;
  startJob(st.file);
}

/** `unknown_job` for a job opened by id: it expired (or a retry found nothing to resume). */
function forgetUnknownJob() {
  const { jobId, file, filename } = st;
  forget(jobId);
  if (jobMode === "retry" && file) {
    startJob(file); // nothing to resume: upload it again
    return;
  }
  reset();
  renderAlert($("intake-alert"), null, {
    kind: "info",
    title: `“${filename}” is no longer available`,
    hint: "The server keeps finished jobs for a limited time and this one has expired, so it was removed from Recent jobs. Drop the file again to summarize it anew.",
  });
}

// ---------------------------------------------------------------------------
// recent jobs (localStorage)
// ---------------------------------------------------------------------------

const RECENT_KEY = "summarizer.jobs";
const RECENT_MAX = 20;
const RECENT_WORDS = { uploading: "uploading", processing: "running", done: "done", cancelled: "cancelled", failed: "failed" };

function recentJobs() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) || "[]");
    return Array.isArray(list) ? list.filter((r) => r && typeof r.job_id === "string") : [];
  } catch {
    return [];
  }
}

function saveRecent(list) {
  try {
    localStorage.setItem(RECENT_KEY, JSON.stringify(list.slice(0, RECENT_MAX)));
  } catch {
    /* storage full or disabled: the list is a convenience */
  }
  renderRecent();
}

const STATE_RANK = { uploading: 1, processing: 2, done: 3, cancelled: 3, failed: 3 };

/**
 * Record the current job (newest first) with its last known state. Events replayed
 * after a `resume` do not move a job back to an earlier state; `force` (the
 * server's own `resumed.state`) does.
 */
function remember({ state, force = false }) {
  if (!st.jobId) return;
  const list = recentJobs();
  const index = list.findIndex((r) => r.job_id === st.jobId);
  const old = index >= 0 ? list[index] : null;
  if (old && (old.state === state || (!force && (STATE_RANK[old.state] ?? 0) >= (STATE_RANK[state] ?? 0)))) return;
  const record = { job_id: st.jobId, filename: st.filename, size: st.size, started: old?.started ?? Date.now(), state };
  if (index >= 0) list[index] = record;
  else list.unshift(record);
  saveRecent(list);
}

function forget(jobId) {
  saveRecent(recentJobs().filter((r) => r.job_id !== jobId));
}

function openRecent(jobId) {
  if (isRunning()) {
    toast("A document is being summarized. Cancel it first, or wait until it is done.");
    return;
  }
  const record = recentJobs().find((r) => r.job_id === jobId);
  if (!record) return;
  secrets.password = null;
  resumeJob(record.job_id, { mode: "reopen", filename: record.filename, size: record.size, started: record.started });
}

function renderRecent() {
  const list = recentJobs();
  const box = $("recent");
  box.hidden = list.length === 0;
  const items = list.map((record) => {
    const li = el("li", "recent-item");
    li.dataset.jobId = record.job_id;
    const open = el("button", "recent-open");
    open.type = "button";
    open.dataset.jobId = record.job_id;
    const when = record.started ? new Date(record.started).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
    open.append(el("span", "recent-name", record.filename || "document"), el("span", "recent-meta", [RECENT_WORDS[record.state] ?? record.state, when].filter(Boolean).join(" · ")));
    open.dataset.state = record.state || "";
    open.setAttribute("aria-label", `Open ${record.filename || "document"} (${RECENT_WORDS[record.state] ?? record.state}${when ? `, started ${when}` : ""})`);
    li.append(open);
    return li;
  });
  $("recent-list").replaceChildren(...items);
}

function cancel() {
  if (!job || !isRunning()) return;
  job.cancel();
  markAll();
}

function reset() {
  if (job && isRunning()) job.cancel();
  jobMode = "start";
  job = null;
  clearInterval(ticker);
  ticker = null;
  st = freshState();
  secrets.password = null;
  hooks.lastSummary = null;
  hooks.lastError = null;
  $("file-input").value = "";
  renderAlert($("job-alert"), null);
  renderAlert($("intake-alert"), null);
  markAll();
  render();
  $("dropzone").focus();
}

function openPicker() {
  $("file-input").click();
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

function toggleAll() {
  st.collapsed = !st.collapsed;
  const button = $("toggle-all");
  button.textContent = st.collapsed ? "Expand all" : "Collapse all";
  button.setAttribute("aria-pressed", String(st.collapsed));
  for (const card of $("cards").children) setExpanded(card, !st.collapsed);
}

function setExpanded(card, expanded) {
  card.querySelector(".chunk-toggle").setAttribute("aria-expanded", String(expanded));
  card.querySelector(".chunk-body").hidden = !expanded;
  card.classList.toggle("collapsed", !expanded);
}

function jumpTo(index) {
  const chunk = st.chunks[index];
  if (!chunk) return;
  if (!chunk.card) {
    toast(`Chunk ${index + 1} has not started yet.`);
    return;
  }
  setExpanded(chunk.card, true);
  // Cards far away are not rendered (content-visibility), so their size is only an
  // estimate until they are: scroll, let them render, and correct until it holds.
  const card = chunk.card;
  let tries = 0;
  let lastTop = null;
  const settle = () => {
    const box = card.getBoundingClientRect();
    const tall = box.height > window.innerHeight * 0.8;
    const target = tall ? 80 : (window.innerHeight - box.height) / 2;
    const off = Math.abs(box.top - target);
    if (tries >= 30 || box.top === lastTop) return; // settled (or as close as the page allows)
    if (off > 40) card.scrollIntoView({ block: tall ? "start" : "center" });
    lastTop = card.getBoundingClientRect().top;
    tries += 1;
    requestAnimationFrame(settle);
  };
  settle();
  chunk.card.classList.remove("flash");
  void chunk.card.offsetWidth; // restart the highlight animation
  chunk.card.classList.add("flash");
}

let toastTimer = null;
function toast(message) {
  const box = $("toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 3500);
}

// ---------------------------------------------------------------------------
// options from the server
// ---------------------------------------------------------------------------

function fillModels(models, selected) {
  const select = $("opt-model");
  const current = select.value || selected;
  select.replaceChildren(...models.map((name) => {
    const option = el("option", "", name === "extractive" ? "extractive (built in, no API)" : name);
    option.value = name;
    return option;
  }));
  select.value = models.includes(current) ? current : models[0];
  select.disabled = models.length < 2;
}

function fillLengths(serverDefault) {
  const select = $("opt-words");
  const entries = LENGTHS.map(([words, label]) => [words, `${label} · about ${words} words`]);
  if (!LENGTHS.some(([w]) => w === serverDefault)) entries.push([serverDefault, `Server default · about ${serverDefault} words`]);
  entries.sort((a, b) => a[0] - b[0]);
  select.replaceChildren(...entries.map(([words, label]) => {
    const option = el("option", "", label);
    option.value = String(words);
    return option;
  }));
  select.value = String(serverDefault);
}

async function loadConfig() {
  const status = $("server-status");
  try {
    const response = await fetch("api/config", { headers: { accept: "application/json" }, cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const data = await response.json();
    Object.assign(config, data, { reachable: true });
    fillModels(data.models?.length ? data.models : [data.model], data.model);
    fillLengths(data.summary_words ?? 250);
    if (data.max_document_bytes) setText($("size-limit"), ` · up to ${formatBytes(data.max_document_bytes)}`);
    status.dataset.status = "ok";
    setText(status.querySelector(".status-text"), "Server ready");
    status.title = `Model: ${data.model}`;
  } catch (err) {
    config.reachable = false;
    fillLengths(config.summary_words);
    fillModels([], null);
    $("opt-model").disabled = true;
    status.dataset.status = "down";
    setText(status.querySelector(".status-text"), "Server unreachable");
    status.title = String(err?.message ?? err);
    renderAlert($("intake-alert"), { code: "connection_lost", unreachable: true, message: `Loading the server's settings failed: ${err?.message ?? err}` });
  }
}

// ---------------------------------------------------------------------------
// wiring
// ---------------------------------------------------------------------------

function fileKind(name, type) {
  const ext = /\.([^.]+)$/.exec(name || "")?.[1]?.toLowerCase();
  if (ext === "pdf" || type === "application/pdf") return "PDF";
  if (ext === "md" || ext === "markdown") return "MD";
  return "TXT";
}

function wordCount(text) {
  const m = text.match(/\S+/g);
  return m ? m.length : 0;
}

function wireDragAndDrop() {
  let depth = 0;
  const overlay = $("drop-overlay");
  const hasFiles = (e) => Array.from(e.dataTransfer?.types ?? []).includes("Files");
  document.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth += 1;
    if (!isRunning()) overlay.hidden = false;
  });
  document.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = isRunning() ? "none" : "copy";
  });
  document.addEventListener("dragleave", (e) => {
    if (!hasFiles(e)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) overlay.hidden = true;
  });
  document.addEventListener("drop", (e) => {
    if (!hasFiles(e) && !e.dataTransfer?.files?.length) return;
    e.preventDefault();
    depth = 0;
    overlay.hidden = true;
    const file = e.dataTransfer.files[0];
    if (!isRunning() && st.phase !== "idle") reset();
    chooseFile(file);
  });
}

function wireOverview() {
  const overview = $("overview");
  overview.addEventListener("click", (e) => {
    const cell = e.target.closest(".cell");
    if (!cell) return;
    focusCell(cell);
    jumpTo(Number(cell.dataset.index));
  });
  overview.addEventListener("keydown", (e) => {
    const cell = e.target.closest(".cell");
    if (!cell) return;
    const cells = overview.children;
    const index = Number(cell.dataset.index);
    const perRow = Math.max(1, Math.round(overview.clientWidth / Math.max(1, cell.offsetWidth + 4)));
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: perRow, ArrowUp: -perRow, Home: -Infinity, End: Infinity, PageDown: perRow * 4, PageUp: -perRow * 4 };
    if (e.key in moves) {
      e.preventDefault();
      const target = Math.max(0, Math.min(cells.length - 1, index + moves[e.key]));
      focusCell(cells[target]);
    }
  });
}

function focusCell(cell) {
  for (const other of $("overview").querySelectorAll('.cell[tabindex="0"]')) other.tabIndex = -1;
  cell.tabIndex = 0;
  cell.focus();
}

function wireMiniProgress() {
  // Show the top bar's small progress line only while the job card is out of sight.
  const observer = new IntersectionObserver(([entry]) => {
    document.body.classList.toggle("job-card-away", !entry.isIntersecting);
  });
  observer.observe(document.querySelector(".job-card"));
}

function wireCards() {
  $("cards").addEventListener("click", (e) => {
    const toggle = e.target.closest(".chunk-toggle");
    if (!toggle) return;
    const card = toggle.closest(".chunk-card");
    setExpanded(card, toggle.getAttribute("aria-expanded") !== "true");
  });
}

function init() {
  const input = $("file-input");
  $("dropzone").addEventListener("click", openPicker);
  input.addEventListener("change", () => chooseFile(input.files[0]));
  $("cancel").addEventListener("click", cancel);
  $("again").addEventListener("click", () => { reset(); });
  $("copy").addEventListener("click", copySummary);
  $("download").addEventListener("click", downloadSummary);
  $("toggle-all").addEventListener("click", toggleAll);
  $("options").addEventListener("submit", (e) => e.preventDefault());
  $("recent-list").addEventListener("click", (e) => {
    const open = e.target.closest(".recent-open");
    if (open) openRecent(open.dataset.jobId);
  });
  renderRecent();
  window.addEventListener("beforeunload", (e) => {
    if (isRunning()) e.preventDefault();
  });
  wireDragAndDrop();
  wireOverview();
  wireCards();
  wireMiniProgress();
  fillLengths(config.summary_words);
  loadConfig();
  markAll();
}

init();
