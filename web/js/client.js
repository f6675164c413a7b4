// Client of wire protocol v1 (docs/protocol.md) for one document.
//
// SummaryJob opens a WebSocket, sends `start`, uploads the file in binary
// slices while honouring the server's ack window (and the socket's own
// bufferedAmount, so nothing is buffered without bound), sends `end`, and hands
// every server event to `onEvent`.
//
// Jobs outlive connections: when the socket drops before the terminal event and
// the job's id is known, the client reconnects by itself (exponential backoff,
// full jitter) and sends `resume` with the last `seq` it processed; it continues
// an unfinished upload from `resumed.received`. Every event is handed on exactly
// once: an event whose `seq` is not above the last one processed is dropped.
// Only when every attempt fails does the job end with a client-side `error`,
// code `connection_lost`. Given a `jobId` (and no file), SummaryJob re-opens an
// existing job instead: `resume` from `lastSeq` (0 replays its whole log).
//
// Client-side events (`local: true`): `reconnecting` {attempt, attempts, delay_ms},
// and `error` / `cancelled` when the client ends a job by itself.

export const PROTOCOL_VERSION = 1;
export const TERMINAL = new Set(["summary", "cancelled", "error"]);

const DEFAULT_SLICE = 256 * 1024; // bytes per binary frame (capped by limits.max_frame_bytes)
const HIGH_WATER = 512 * 1024; // do not queue more than this in the socket's own buffer
const HASH_LIMIT = 64 * 1024 * 1024; // hash files up to this size for `end.sha256`

const MEDIA_TYPES = new Set(["application/pdf", "text/plain", "text/markdown", "text/x-markdown"]);

/** The ws:// or wss:// URL of the server that served this page. */
export function defaultSocketUrl(loc = window.location) {
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}/ws`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * How the client reconnects after a dropped socket: attempt n waits a random time
 * in [0, min(maxMs, baseMs * 2^(n-1))) ("full jitter"). Tests may tune it; `rewind`
 * (tests only) resumes that many events early, to prove duplicates are dropped.
 */
export const reconnectPolicy = { baseMs: 500, maxMs: 10000, attempts: 8, rewind: 0 };

/** The wait before reconnect attempt `attempt` (1-based), in ms. */
export function backoffDelay(attempt, policy = reconnectPolicy, random = Math.random) {
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * cap);
}

export class SummaryJob {
  /**
   * @param {object} p
   * @param {string} p.url WebSocket URL.
   * @param {File|Blob|null} p.file The document (null to re-open a job without re-uploading).
   * @param {string} p.filename
   * @param {object} [p.options] `start.options` (nulls are dropped).
   * @param {string|null} [p.token] The server's shared token, if it needs one.
   * @param {string|null} [p.jobId] Re-open this job with `resume` instead of sending `start`.
   * @param {number} [p.lastSeq] With `jobId`: the last `seq` already processed (0: replay all).
   * @param {(ev: object) => void} p.onEvent Every server event, plus client-side ones.
   * @param {(info: object) => void} [p.onUpload] Upload counters after each send/ack.
   */
  constructor({ url, file = null, filename, options, token = null, jobId = null, lastSeq = 0, onEvent, onUpload = () => {} }) {
    this.url = url;
    this.file = file;
    this.filename = filename;
    this.options = Object.fromEntries(Object.entries(options || {}).filter(([, v]) => v !== null && v !== undefined && v !== ""));
    this.token = token;
    this.onEvent = onEvent;
    this.onUpload = onUpload;
    this.size = file ? file.size : 0;
    this.ws = null;
    this.jobId = jobId;
    this.lastSeq = jobId ? lastSeq : 0; // the last `seq` handed to onEvent
    this.sent = 0; // bytes handed to the socket
    this.acked = 0; // bytes the server acknowledged
    this.window = 0; // limits.ack_window_bytes
    this.slice = DEFAULT_SLICE;
    this.maxInFlight = 0; // largest sent - acked seen (for tests)
    this.endSent = false;
    this.uploadReady = false; // the current socket may carry upload frames (after `accepted` / `resumed`)
    this.pumping = false;
    this.finished = false;
    this.cancelRequested = false;
    this.cancelSent = false;
    this.opened = false; // some socket of this job opened
    this.digest = null;
    this.attempt = 0; // reconnect attempts since the last successful `resumed`
    this.reconnectTimer = null;
    this.duplicates = 0; // events dropped because their `seq` was already processed (for tests)
  }

  /** Open the socket and send `start` (or `resume` for a job id given). */
  start() {
    if (this.file && this.size <= HASH_LIMIT && globalThis.crypto?.subtle) {
      this.digest = this.file
        .arrayBuffer()
        .then((buf) => crypto.subtle.digest("SHA-256", buf))
        .then((hash) => [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join(""))
        .catch(() => null);
    }
    this.connect();
  }

  connect() {
    this.reconnectTimer = null;
    if (this.finished) return;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.fail("connection_lost", `Cannot open a WebSocket to ${this.url}: ${err.message}`, { unreachable: true });
      return;
    }
    this.ws = ws;
    this.hello = null; // what this socket opened with: "start" or "resume"
    this.uploadReady = false;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.opened = true;
      if (this.jobId) {
        const resume = { type: "resume", job_id: this.jobId, last_seq: Math.max(0, this.lastSeq - (this.attempt ? reconnectPolicy.rewind : 0)) };
        if (this.token) resume.token = this.token;
        this.hello = "resume";
        ws.send(JSON.stringify(resume));
        if (this.cancelRequested) this.sendCancel();
        return;
      }
      if (this.cancelRequested) { this.finishLocally({ type: "cancelled", elapsed_s: 0 }); return; }
      const start = {
        type: "start",
        protocol: PROTOCOL_VERSION,
        filename: this.filename,
        media_type: MEDIA_TYPES.has(this.file.type) ? this.file.type.replace("text/x-markdown", "text/markdown") : "",
        size: this.size,
        options: this.options,
      };
      if (this.token) start.token = this.token;
      this.hello = "start";
      ws.send(JSON.stringify(start));
    };
    ws.onmessage = (msg) => {
      if (ws !== this.ws || typeof msg.data !== "string") return; // the server sends no binary frames
      let ev;
      try {
        ev = JSON.parse(msg.data);
      } catch {
        return;
      }
      if (!ev || typeof ev.type !== "string") return;
      this.handle(ev);
    };
    ws.onclose = (close) => {
      if (ws !== this.ws || this.finished) return;
      this.dropped(close);
    };
  }

  /** The socket closed before the terminal event: reconnect, or give up. */
  dropped(close) {
    const why = close.reason ? ` (${close.reason})` : close.code && close.code !== 1006 ? ` (close code ${close.code})` : "";
    if (this.jobId && this.attempt < reconnectPolicy.attempts) {
      this.attempt += 1;
      const delay = backoffDelay(this.attempt);
      this.onEvent({
        type: "reconnecting", job_id: this.jobId, seq: null, local: true,
        attempt: this.attempt, attempts: reconnectPolicy.attempts, delay_ms: delay, reason: why.trim(),
      });
      this.reconnectTimer = setTimeout(() => this.connect(), this.cancelRequested ? 0 : delay);
      return;
    }
    const unreachable = !this.opened;
    const tries = this.attempt ? ` Gave up after ${this.attempt} attempts to reconnect.` : "";
    this.fail(
      "connection_lost",
      unreachable
        ? `Could not connect to ${this.url}${why}.${tries}`
        : `The connection closed before the job ended${why}.${tries}`,
      { unreachable, closeCode: close.code },
    );
  }

  handle(ev) {
    if (ev.type === "error" && !ev.job_id && (ev.code === "superseded" || ((ev.code === "store_unavailable" || ev.code === "server_busy") && this.jobId))) {
      // superseded: another connection took our upload over; store_unavailable: the server
      // cannot read its job store now; server_busy once the job exists: it moved to another
      // replica. Either way the server closes this socket and we resume.
      return;
    }
    if (ev.type === "resumed") {
      this.resumed(ev);
      return;
    }
    if (typeof ev.seq === "number" && ev.seq > 0) {
      if (ev.seq <= this.lastSeq) {
        this.duplicates += 1; // already processed (sent again after a resume)
        return;
      }
      this.lastSeq = ev.seq;
    }
    if (ev.job_id && !this.jobId) this.jobId = ev.job_id;
    if (ev.type === "accepted") {
      this.window = Math.max(1, ev.limits?.ack_window_bytes ?? DEFAULT_SLICE);
      this.slice = Math.max(1, Math.min(DEFAULT_SLICE, ev.limits?.max_frame_bytes ?? DEFAULT_SLICE, this.window));
      if (this.hello === "start") this.uploadReady = true; // (a replayed `accepted` after `resume` is not)
      this.onEvent(ev);
      this.pump();
      return;
    }
    if (ev.type === "ack") {
      this.acked = Math.max(this.acked, ev.received ?? 0);
      this.reportUpload();
      this.onEvent(ev);
      this.pump();
      return;
    }
    if (TERMINAL.has(ev.type)) {
      this.finished = true;
      clearTimeout(this.reconnectTimer);
      this.onEvent(ev);
      this.close();
      return;
    }
    this.onEvent(ev);
  }

  /** The server re-attached this socket to the job: continue the upload if it was not finished. */
  resumed(ev) {
    this.attempt = 0;
    this.onEvent(ev);
    if (this.finished || this.cancelRequested) return;
    if (ev.state !== "uploading") {
      this.endSent = true; // the server has the whole upload
      return;
    }
    if (!this.file) {
      this.fail("upload_interrupted", "The upload of this document did not finish, and this page no longer has the file.", { retryable: false });
      return;
    }
    this.sent = this.acked = Math.min(this.size, Math.max(0, ev.received ?? 0));
    this.endSent = false;
    this.uploadReady = true;
    this.reportUpload();
    this.pump();
  }

  reportUpload() {
    this.onUpload({ sent: this.sent, acked: this.acked, size: this.size, maxInFlight: this.maxInFlight, window: this.window });
  }

  /** Send slices while the ack window and the socket buffer allow; then `end`. */
  async pump() {
    if (this.pumping || this.endSent || !this.uploadReady || !this.file) return;
    this.pumping = true;
    const ws = this.ws;
    const live = () => !this.finished && !this.cancelRequested && ws === this.ws && ws.readyState === WebSocket.OPEN;
    try {
      while (live()) {
        if (this.sent >= this.size) {
          const sha256 = this.digest ? await this.digest : null;
          if (!live()) return;
          ws.send(JSON.stringify(sha256 ? { type: "end", sha256 } : { type: "end" }));
          this.endSent = true;
          return;
        }
        const length = Math.min(this.slice, this.size - this.sent);
        if (this.sent + length - this.acked > this.window) return; // the next ack calls pump() again
        if (ws.bufferedAmount > HIGH_WATER) {
          await sleep(15);
          continue;
        }
        const offset = this.sent;
        const bytes = await this.file.slice(offset, offset + length).arrayBuffer();
        if (!live() || this.sent !== offset) return;
        ws.send(bytes);
        this.sent += length;
        this.maxInFlight = Math.max(this.maxInFlight, this.sent - this.acked);
        this.reportUpload();
      }
    } finally {
      this.pumping = false;
      // A resume on a new socket while this loop was waiting: carry on there.
      if (ws !== this.ws) this.pump();
    }
  }

  /** Ask the server to cancel; it answers with `cancelled`. */
  cancel() {
    if (this.finished) return;
    this.cancelRequested = true;
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN && this.jobId) {
      this.sendCancel();
    } else if (this.reconnectTimer !== null) {
      // Between reconnect attempts: reconnect now, so that the cancel reaches the server.
      clearTimeout(this.reconnectTimer);
      this.connect();
      setTimeout(() => { if (!this.finished) this.finishLocally({ type: "cancelled", elapsed_s: null }); }, 10000);
    } else if (!ws || ws.readyState !== WebSocket.CONNECTING) {
      this.finishLocally({ type: "cancelled", elapsed_s: null });
    }
    // Still connecting: onopen sees cancelRequested (sends `cancel` after `resume`, or finishes locally).
  }

  sendCancel() {
    if (this.cancelSent) return;
    this.cancelSent = true;
    this.ws.send(JSON.stringify({ type: "cancel" }));
    // Should the server not answer, do not leave the page waiting forever.
    setTimeout(() => { if (!this.finished) this.finishLocally({ type: "cancelled", elapsed_s: null }); }, 10000);
  }

  /** Tests only: drop the socket as a network failure would (the job goes on, the page reconnects). */
  dropConnection() {
    const ws = this.ws;
    if (this.finished || !ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.close(4000, "dropped by a test");
    return true;
  }

  finishLocally(ev) {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.reconnectTimer);
    this.onEvent({ job_id: this.jobId, seq: null, local: true, ...ev });
    this.close();
  }

  fail(code, message, extra = {}) {
    this.finishLocally({ type: "error", code, message, retryable: true, ...extra });
  }

  close() {
    const ws = this.ws;
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) {
      try {
        ws.close(1000, "done");
      } catch {
        /* already closing */
      }
    }
  }
}
