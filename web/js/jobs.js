// A job's life on the page: choose a file, start it, re-open or resume it, retry, cancel, reset.

import { SummaryJob, defaultSocketUrl } from "./client.js";
import { renderAlert, toast } from "./alerts.js";
import { clearChunks } from "./chunks.js";
import { $ } from "./dom.js";
import { applyEvent } from "./events.js";
import { formatBytes } from "./format.js";
import { chosenOptions } from "./options.js";
import { forget, recentJobs } from "./recent.js";
import { markAll, renderNow, schedule, startTicker, stopTicker } from "./scheduler.js";
import { config, hooks, isRunning, job, jobMode, resetState, secrets, setJob, st } from "./state.js";
import { clearSummary } from "./summary.js";
import { clearWarnings } from "./view.js";

const ACCEPTED_EXTENSIONS = new Set(["pdf", "txt", "text", "md", "markdown"]);
const ACCEPTED_TYPES = new Set(["application/pdf", "text/plain", "text/markdown", "text/x-markdown"]);
const BUSY = "A document is being summarized. Cancel it first, or wait until it is done.";

/** The user chose (or dropped) `file`: check it here, then start a job for it. */
export function chooseFile(file) {
  if (!file) return;
  if (isRunning()) {
    toast(BUSY);
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

/** A dropped file: from a finished job's view, go back first. */
export function dropFile(file) {
  if (!isRunning() && st.phase !== "idle") reset();
  chooseFile(file);
}

function startJob(file) {
  const options = chosenOptions();
  if (secrets.password) options.password = secrets.password;
  const state = resetState();
  state.file = file;
  state.filename = file.name || "document";
  state.size = file.size;
  state.options = options;
  connectJob({ mode: "start", file, options });
}

/** The current job's events; `unknown_job` for a job opened by id is handled here. */
function onEvent(ev) {
  if (ev.type === "error" && ev.code === "unknown_job" && jobMode !== "start") {
    hooks.events += 1;
    forgetUnknownJob();
    return;
  }
  applyEvent(ev);
}

/** Show a fresh view for the job in `st` and connect: `start` it, or `resume` it by id. */
function connectJob({ mode, file = null, options = {}, jobId = null }) {
  st.phase = "connecting";
  document.body.dataset.phase = "connecting"; // at once: the last job's end state is stale now
  st.startedAt = st.startedAt || performance.now();
  st.stages.upload.status = "active";
  clearChunks();
  clearWarnings();
  clearSummary();
  renderAlert($("intake-alert"), null);
  Object.assign(hooks, { lastSummary: null, lastError: null, events: 0, chunks: 0, maxInFlight: 0, percent: 0, reconnects: 0, duplicates: 0, jobId });
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
  setJob(current, mode);
  startTicker();
  markAll();
  current.start();
  $("main").focus({ preventScroll: true });
}

/** Re-open a job by id (from Recent jobs, or after a lost connection): replay its log, then follow it live. */
function resumeJob(jobId, { mode, file = null, filename, size = 0, started = null, options = {} }) {
  const state = resetState();
  state.jobId = jobId;
  state.file = file;
  state.filename = filename || "document";
  state.size = file ? file.size : size || 0;
  state.options = options;
  // Elapsed time counts from when the job was started, not from now.
  if (started) state.startedAt = performance.now() - Math.max(0, Date.now() - started);
  connectJob({ mode, file, options, jobId });
}

/** Open a job of the Recent jobs list. */
export function openRecent(record) {
  if (isRunning()) {
    toast(BUSY);
    return;
  }
  secrets.password = null;
  resumeJob(record.job_id, { mode: "reopen", filename: record.filename, size: record.size, started: record.started });
}

function canResume(error) {
  return error?.code === "connection_lost" && Boolean(st.jobId);
}

/** Whether "Try again" can do something for this error of the current job. */
export function canRetry(error) {
  return Boolean(st.file) || canResume(error);
}

export function retry() {
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

export function cancel() {
  if (!job || !isRunning()) return;
  job.cancel();
  markAll();
}

/** Back to the start page (cancelling a running job). */
export function reset() {
  if (job && isRunning()) job.cancel();
  setJob(null, "start");
  stopTicker();
  resetState();
  secrets.password = null;
  hooks.lastSummary = null;
  hooks.lastError = null;
  $("file-input").value = "";
  renderAlert($("job-alert"), null);
  renderAlert($("intake-alert"), null);
  markAll();
  renderNow();
  $("dropzone").focus();
}

export function openPicker() {
  $("file-input").click();
}
