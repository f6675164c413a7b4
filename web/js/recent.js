// Recent jobs: the jobs this browser started, kept in localStorage, listed on the start page.

import { $, el } from "./dom.js";
import { st } from "./state.js";

const RECENT_KEY = "summarizer.jobs";
const RECENT_MAX = 20;
const RECENT_WORDS = { uploading: "uploading", processing: "running", done: "done", cancelled: "cancelled", failed: "failed" };
const STATE_RANK = { uploading: 1, processing: 2, done: 3, cancelled: 3, failed: 3 };

/** The list, newest first: `{job_id, filename, size, started (ms since the epoch), state}`. */
export function recentJobs() {
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

/**
 * Record the current job (newest first) with its last known state. Events replayed
 * after a `resume` do not move a job back to an earlier state; `force` (the
 * server's own `resumed.state`) does.
 */
export function remember({ state, force = false }) {
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

export function forget(jobId) {
  saveRecent(recentJobs().filter((r) => r.job_id !== jobId));
}

export function renderRecent() {
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

/** Call `open(record)` when a recent job is clicked. */
export function wireRecent(open) {
  $("recent-list").addEventListener("click", (e) => {
    const button = e.target.closest(".recent-open");
    if (!button) return;
    const record = recentJobs().find((r) => r.job_id === button.dataset.jobId);
    if (record) open(record);
  });
  renderRecent();
}
