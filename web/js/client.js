// Client of wire protocol v1 (docs/protocol.md) for one document.
//
// SummaryJob opens a WebSocket, sends `start`, uploads the file in binary
// slices while honouring the server's ack window (and the socket's own
// bufferedAmount, so nothing is buffered without bound), sends `end`, and hands
// every server event to `onEvent`. A socket that closes before a terminal event
// becomes a client-side `error` with code `connection_lost`.

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

export class SummaryJob {
  /**
   * @param {object} p
   * @param {string} p.url WebSocket URL.
   * @param {File|Blob} p.file The document.
   * @param {string} p.filename
   * @param {object} p.options `start.options` (nulls are dropped).
   * @param {string|null} [p.token] The server's shared token, if it needs one.
   * @param {(ev: object) => void} p.onEvent Every server event, plus client-side ones.
   * @param {(info: object) => void} [p.onUpload] Upload counters after each send/ack.
   */
  constructor({ url, file, filename, options, token = null, onEvent, onUpload = () => {} }) {
    this.url = url;
    this.file = file;
    this.filename = filename;
    this.options = Object.fromEntries(Object.entries(options || {}).filter(([, v]) => v !== null && v !== undefined && v !== ""));
    this.token = token;
    this.onEvent = onEvent;
    this.onUpload = onUpload;
    this.size = file.size;
    this.ws = null;
    this.jobId = null;
    this.lastSeq = 0;
    this.sent = 0; // bytes handed to the socket
    this.acked = 0; // bytes the server acknowledged
    this.window = 0; // limits.ack_window_bytes
    this.slice = DEFAULT_SLICE;
    this.maxInFlight = 0; // largest sent - acked seen (for tests)
    this.endSent = false;
    this.pumping = false;
    this.finished = false;
    this.cancelRequested = false;
    this.opened = false;
    this.digest = null;
  }

  /** Open the socket and send `start`. */
  start() {
    if (this.size <= HASH_LIMIT && globalThis.crypto?.subtle) {
      this.digest = this.file
        .arrayBuffer()
        .then((buf) => crypto.subtle.digest("SHA-256", buf))
        .then((hash) => [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join(""))
        .catch(() => null);
    }
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.fail("connection_lost", `Cannot open a WebSocket to ${this.url}: ${err.message}`, { unreachable: true });
      return;
    }
    this.ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      this.opened = true;
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
      ws.send(JSON.stringify(start));
    };
    ws.onmessage = (msg) => {
      if (typeof msg.data !== "string") return; // the server sends no binary frames
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
      if (this.finished) return;
      const unreachable = !this.opened;
      const why = close.reason ? ` (${close.reason})` : close.code && close.code !== 1006 ? ` (close code ${close.code})` : "";
      this.fail(
        "connection_lost",
        unreachable
          ? `Could not connect to ${this.url}${why}.`
          : `The connection closed before the job ended${why}.`,
        { unreachable, closeCode: close.code },
      );
    };
  }

  handle(ev) {
    if (ev.job_id && !this.jobId) this.jobId = ev.job_id;
    if (typeof ev.seq === "number" && ev.seq > this.lastSeq) this.lastSeq = ev.seq;
    if (ev.type === "accepted") {
      this.window = Math.max(1, ev.limits?.ack_window_bytes ?? DEFAULT_SLICE);
      this.slice = Math.max(1, Math.min(DEFAULT_SLICE, ev.limits?.max_frame_bytes ?? DEFAULT_SLICE, this.window));
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
      this.onEvent(ev);
      this.close();
      return;
    }
    this.onEvent(ev);
  }

  reportUpload() {
    this.onUpload({ sent: this.sent, acked: this.acked, size: this.size, maxInFlight: this.maxInFlight, window: this.window });
  }

  /** Send slices while the ack window and the socket buffer allow; then `end`. */
  async pump() {
    if (this.pumping || this.endSent) return;
    this.pumping = true;
    try {
      const ws = this.ws;
      while (!this.finished && !this.cancelRequested && ws.readyState === WebSocket.OPEN) {
        if (this.sent >= this.size) {
          const sha256 = this.digest ? await this.digest : null;
          if (this.finished || this.cancelRequested || ws.readyState !== WebSocket.OPEN) return;
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
        const bytes = await this.file.slice(this.sent, this.sent + length).arrayBuffer();
        if (this.finished || this.cancelRequested || ws.readyState !== WebSocket.OPEN) return;
        ws.send(bytes);
        this.sent += length;
        this.maxInFlight = Math.max(this.maxInFlight, this.sent - this.acked);
        this.reportUpload();
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Ask the server to cancel; it answers with `cancelled`. */
  cancel() {
    if (this.finished) return;
    this.cancelRequested = true;
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN && this.jobId) {
      ws.send(JSON.stringify({ type: "cancel" }));
      // Should the server not answer, do not leave the page waiting forever.
      setTimeout(() => { if (!this.finished) this.finishLocally({ type: "cancelled", elapsed_s: null }); }, 10000);
    } else if (!ws || ws.readyState !== WebSocket.CONNECTING) {
      this.finishLocally({ type: "cancelled", elapsed_s: null });
    }
    // Still connecting: onopen sees cancelRequested and finishes locally.
  }

  finishLocally(ev) {
    if (this.finished) return;
    this.finished = true;
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
