// Alerts (an error or a notice, in friendly words, with ways out) and toasts.

import { $, el } from "./dom.js";
import { describeError } from "./errors.js";
import { formatDuration, plural } from "./format.js";
import { st } from "./state.js";

/**
 * What the buttons of an alert do; app.js sets them (this module only draws).
 * `canRetry(error)`: whether "Try again" makes sense for the current job.
 */
export const alertActions = {
  retry: () => {},
  chooseAnother: () => {},
  canRetry: () => false,
  setSecret: () => {},
};

/**
 * Show an error (or notice) in `box`: friendly words, the server's message, and ways out.
 * @param {HTMLElement} box #job-alert or #intake-alert
 * @param {object|null} error an `error` event
 * @param {{kind: string, title: string, hint: string}|null} notice shown when there is no error
 */
export function renderAlert(box, error, notice = null) {
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
  const needsPassword = error?.code === "encrypted_pdf" || (error?.code === "password_required" && alertActions.canRetry(error));
  if (needsPassword || error?.code === "unauthorized") actions.append(secretForm(error.code));
  if (error && box.id === "job-alert" && alertActions.canRetry(error) && error.retryable !== false) {
    const again = el("button", "btn btn-primary btn-small", "Try again");
    again.type = "button";
    again.dataset.action = "retry";
    again.addEventListener("click", () => alertActions.retry());
    actions.append(again);
  }
  if (error && box.id === "job-alert") {
    const other = el("button", "btn btn-small", "Choose another file");
    other.type = "button";
    other.addEventListener("click", () => alertActions.chooseAnother());
    actions.append(other);
  }
  if (actions.children.length) content.append(actions);
  box.append(icon, content);
}

/** A form for the PDF password (`encrypted_pdf`) or the server's token (`unauthorized`). */
function secretForm(code) {
  const form = el("form", "secret-form");
  const id = `secret-${code}`;
  const password = code !== "unauthorized";
  const label = el("label", "", password ? "PDF password" : "Access token");
  label.htmlFor = id;
  const input = el("input");
  input.type = "password";
  input.id = id;
  input.autocomplete = "off";
  input.required = true;
  const submit = el("button", "btn btn-primary btn-small", password ? "Open with password" : "Connect");
  submit.type = "submit";
  form.append(label, input, submit);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    alertActions.setSecret(code, input.value);
    alertActions.retry();
  });
  return form;
}

/** The notice of a cancelled job. */
export function cancelledNotice() {
  const s = st.stages.map;
  const seconds = st.finalElapsed ?? (st.endedAt - st.startedAt) / 1000;
  return {
    kind: "info",
    title: "Cancelled",
    hint: `You stopped this summary after ${formatDuration(seconds)}${s.done ? `, with ${plural(s.done, "chunk")} summarized` : ""}. The chunk summaries so far stay below.`,
  };
}

export function reconnectingWords() {
  return `Connection lost — reconnecting (attempt ${st.reconnecting.attempt})…`;
}

/** The notice while the page reconnects by itself. */
export function reconnectNotice() {
  return {
    kind: "info",
    title: reconnectingWords(),
    hint: "The job keeps running on the server; the page picks it up where it left off.",
  };
}

let toastTimer = null;

/** A short message at the bottom of the screen, for 3.5 s. */
export function toast(message) {
  const box = $("toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 3500);
}
