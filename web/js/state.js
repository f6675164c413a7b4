// What the page knows: server settings, the current job's state, and the test hooks.
//
// Server events change `st` (see events.js); views read it (see view.js). `st`,
// `job` and `jobMode` are live bindings: other modules read them, and change them
// only through the setters here.

import { reconnectPolicy } from "./client.js";

/**
 * Share of the overall progress bar per stage (they add up to 1). OCR, when a
 * document needs it, shares the reading pages' share (see progress.js).
 */
export const WEIGHTS = { upload: 0.08, extract: 0.17, ocr: 0, map: 0.55, collapse: 0.12, reduce: 0.08 };
/** The stages in order; `ocr` only shows for a document with pages that have no text layer. */
export const STAGE_ORDER = ["upload", "extract", "ocr", "map", "collapse", "reduce"];

/** Settings from `GET api/config`. */
export const config = {
  models: [],
  model: null,
  summary_words: 250,
  max_document_bytes: null,
  reachable: null,
};

/** The PDF password for the next start (never stored) and the server's access token (this tab only). */
export const secrets = { password: null, token: sessionStorage.getItem("summarizer.token") };

export function freshState() {
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
      ocr: { status: "pending", done: 0, total: null, eta: null, at: 0, seen: false },
      map: { status: "pending", done: 0, total: null, eta: null, at: 0 },
      collapse: { status: "pending", level: 0, done: 0, total: null, eta: null, at: 0 },
      reduce: { status: "pending", done: 0, total: 1, eta: null, at: 0 },
    },
    accepted: null,
    doc: null, // the `document` event
    chunks: [], // by index: {index, pages, characters, ocr, state, parts, text, failure, card, cell}
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

/** What the page shows about the current job. */
export let st = freshState();
/** The current SummaryJob (client.js), or null. */
export let job = null;
/** How the current job was opened: start | reopen (Recent jobs) | retry (resume after a lost connection). */
export let jobMode = "start";

/** Forget the last job's state; returns the fresh one. */
export function resetState() {
  st = freshState();
  return st;
}

export function setJob(value, mode = jobMode) {
  job = value;
  jobMode = mode;
}

export function isRunning(phase = st.phase) {
  return phase === "connecting" || phase === "uploading" || phase === "processing";
}

/** Test and debugging hooks (read-only by convention). */
export const hooks = {
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
