// Friendly words for every `error.code` of docs/protocol.md ("Error codes").
// The page shows `title`, then `hint`, then the server's own message in small print.

const PAGE_BUG = {
  title: "The page and the server did not understand each other",
  hint: "This is a bug, not something you did. Reload the page and try again; if it keeps happening, report it with the details below.",
};

export const FRIENDLY = {
  bad_json: PAGE_BUG,
  unknown_type: PAGE_BUG,
  invalid_message: PAGE_BUG,
  unexpected_message: PAGE_BUG,
  unsupported_protocol: {
    title: "This page is out of date for the server",
    hint: "The server speaks a different protocol version. Reload the page to get the current one.",
  },
  invalid_option: {
    title: "One of the options is not valid",
    hint: "Change the options (for example the summary length) and try again.",
  },
  size_mismatch: {
    title: "The upload did not arrive complete",
    hint: "The file may have changed while it was being sent. Try again.",
  },
  checksum_mismatch: {
    title: "The file arrived damaged",
    hint: "Its checksum did not match what was sent, so the server discarded it. Try again.",
  },
  document_too_large: {
    title: "This document is too large",
    hint: "It is over this server's size, text or page limit. Split it into parts, or ask the operator to raise the limit.",
  },
  frame_too_large: {
    title: "The server refused a piece of the upload as too large",
    hint: "Reload the page and try again.",
  },
  too_many_messages: {
    title: "The server is being flooded",
    hint: "This connection sent too many messages too fast. Wait a moment and try again.",
  },
  too_many_jobs: {
    title: "This connection has summarized too many documents",
    hint: "Reload the page to start afresh.",
  },
  server_busy: {
    title: "The server is busy",
    hint: "It is summarizing as many documents as it can right now. Try again in a minute.",
  },
  idle_timeout: {
    title: "The connection was idle for too long",
    hint: "Try again.",
  },
  unauthorized: {
    title: "This server needs an access token",
    hint: "Enter the token the server's operator gave you.",
  },
  unknown_job: {
    title: "The server no longer knows this job",
    hint: "It may have expired. Start again.",
  },
  upload_interrupted: {
    title: "The upload of this document did not finish",
    hint: "The connection dropped while the file was being sent, and this page no longer has the file. Drop it again to start over.",
  },
  unsupported_media_type: {
    title: "This kind of file is not supported",
    hint: "Use a PDF, a plain-text file (.txt) or a Markdown file (.md).",
  },
  not_a_pdf: {
    title: "This file is not really a PDF",
    hint: "It is named like a PDF but its contents are something else (or it is badly damaged).",
  },
  bad_encoding: {
    title: "This text file is not UTF-8",
    hint: "Save it with UTF-8 encoding (most editors offer this under “Save as”) and try again.",
  },
  empty_document: {
    title: "This document is empty",
    hint: "There is no text in it to summarize.",
  },
  password_required: {
    title: "This PDF needs its password again",
    hint: "The server restarted while the job was running and keeps passwords in memory only. Enter the password below and start the job again.",
  },
  encrypted_pdf: {
    title: "This PDF is password-protected",
    hint: "Enter its password below, or save an unprotected copy (for example with “Print to PDF”) and drop that instead.",
  },
  damaged_pdf: {
    title: "This PDF is damaged",
    hint: "It cannot be read. Try re-saving or re-exporting it from the program that made it.",
  },
  no_text: {
    title: "This PDF has no text to read",
    hint: "It looks like scanned images without a text layer. Run it through OCR (text recognition) first, then try again.",
  },
  unreadable_text: {
    title: "The text in this PDF cannot be read",
    hint: "Its fonts do not say which letters they draw, so the text comes out as garbage. Running OCR on it usually helps.",
  },
  parse_timeout: {
    title: "Reading this document took too long",
    hint: "The server gave up extracting its text. Try a smaller or simpler file.",
  },
  unknown_model: {
    title: "The selected model is not available",
    hint: "Pick another model in the options and try again.",
  },
  model_error: {
    title: "The language model failed",
    hint: "A call to the model that writes the summaries did not succeed. Try again in a moment.",
  },
  authentication_failed: {
    title: "The model provider refused the server's credentials",
    hint: "The API key the server uses is missing, wrong or not allowed to use this model. Ask the server's operator to check it, or pick another model.",
  },
  model_not_found: {
    title: "The model provider does not know this model",
    hint: "The model's name may be misspelt, or the account cannot use it. Pick another model, or ask the operator to fix its name.",
  },
  rate_limited: {
    title: "The model provider is rate-limiting the server",
    hint: "Too many requests, or the account's quota is used up. Wait a minute and try again.",
  },
  provider_unavailable: {
    title: "The model provider is not answering",
    hint: "Its service failed or could not be reached, even after several retries. Try again in a few minutes.",
  },
  context_too_long: {
    title: "A part of the document is too long for the model",
    hint: "Even split into smaller pieces it did not fit the model's context window. Try a model with a larger window, or a smaller chunk size.",
  },
  slow_reader: {
    title: "The connection fell behind",
    hint: "The page did not keep up with the server's events. The job goes on; the page reconnects and resumes where it stopped.",
  },
  superseded: {
    title: "Another window took over this upload",
    hint: "The same job was resumed from another connection, which now sends the document. Keep that window open, or resume the job here to send it from this page.",
  },
  storage_error: {
    title: "The server could not store this job",
    hint: "Its disk may be full. Nothing that was not stored was shown as done. Try again later, or tell the server's operator.",
  },
  store_unavailable: {
    title: "The server cannot reach its job store",
    hint: "It could not look this job up just now (its Redis is down or restarting). The job may still be running: the page keeps trying to resume it.",
  },
  model_timeout: {
    title: "The model took too long to answer",
    hint: "It did not answer, or stopped in the middle, even after several retries. Try again in a moment, or pick another model.",
  },
  cancelled: {
    title: "Cancelled",
    hint: "The summary was stopped.",
  },
  internal_error: {
    title: "Something went wrong on the server",
    hint: "This is a bug in the server, not in your document. Try again; if it keeps happening, report it with the details below.",
  },
  connection_lost: {
    title: "The connection to the server was lost",
    hint: "The network dropped or the server restarted before the summary was finished.",
  },
  unreachable: {
    title: "The server cannot be reached",
    hint: "Check that “summarizer serve” is running and that you are online, then try again.",
  },
  unsupported_file: {
    title: "This kind of file is not supported",
    hint: "Drop a PDF, a plain-text file (.txt) or a Markdown file (.md).",
  },
};

/**
 * Words for an `error` event.
 * @param {{code: string, message?: string, unreachable?: boolean}} ev
 * @returns {{title: string, hint: string, detail: string}}
 */
export function describeError(ev) {
  const key = ev.code === "connection_lost" && ev.unreachable ? "unreachable" : ev.code;
  const words = FRIENDLY[key] ?? {
    title: "Something went wrong",
    hint: "The server reported a problem it did not explain further.",
  };
  return { ...words, detail: ev.message ? `${ev.message} [${ev.code}]` : `[${ev.code}]` };
}
