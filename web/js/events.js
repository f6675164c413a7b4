// Server events → page state. `applyEvent` changes `st` and marks what to redraw;
// it never writes the DOM itself (chunkAt adds overview cells, which is all).

import { $ } from "./dom.js";
import { chunkAt, stopChunks } from "./chunks.js";
import { fillModels } from "./options.js";
import { remember } from "./recent.js";
import { dirty, markAll, stopTicker } from "./scheduler.js";
import { STAGE_ORDER, hooks, job, st } from "./state.js";

/** Apply one event of the current job (server events, and the client's own `local` ones). */
export function applyEvent(ev) {
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
      if (ev.stage === "ocr") {
        s.ocr.seen = true;
        if (s.extract.status === "pending") s.extract.status = "active";
      }
      if (ev.stage === "collapse" || ev.stage === "reduce") {
        if (s.map.status !== "done") s.map.status = "done";
        if (s.extract.status !== "done") s.extract.status = "done";
        if (s.ocr.status === "active") s.ocr.status = "done";
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
      if (s.ocr.status === "active" || (s.ocr.status === "pending" && ev.ocr_pages?.length)) s.ocr.status = "done";
      if (ev.ocr_pages?.length) s.ocr.seen = true;
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
      chunk.ocr = ev.ocr === true;
      chunk.state = "running";
      chunk.parts = [];
      chunk.text = null;
      chunk.failure = null;
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
      chunk.failure = null;
      dirty.chunks.add(ev.index);
      break;
    }
    case "chunk.failed": {
      // Left out of the summary (its pages are in `summary.missing_pages`): drop its partial text.
      const chunk = chunkAt(ev.index);
      chunk.pages = ev.pages ?? chunk.pages;
      chunk.state = "failed";
      chunk.parts = [];
      chunk.text = null;
      chunk.failure = { code: ev.code, message: ev.message ?? "" };
      dirty.chunks.add(ev.index);
      break;
    }
    case "chunk.restart": {
      const chunk = chunkAt(ev.index);
      chunk.state = "running";
      chunk.parts = [];
      chunk.text = null;
      chunk.failure = null;
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

function end(phase) {
  st.phase = phase;
  st.endedAt = performance.now();
  stopTicker();
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
