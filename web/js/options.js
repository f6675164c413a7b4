// The options form (summary length, model) and the server's settings behind it.

import { renderAlert } from "./alerts.js";
import { $, el, setText } from "./dom.js";
import { formatBytes } from "./format.js";
import { config } from "./state.js";

const LENGTHS = [
  [100, "Short"],
  [250, "Medium"],
  [500, "Long"],
  [1000, "Very long"],
];

/** The models the server offers, `selected` (or the one chosen before) selected. */
export function fillModels(models, selected) {
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

/** `start.options` as chosen in the form (nulls: the server's default). */
export function chosenOptions() {
  return {
    model: $("opt-model").value || null,
    summary_words: Number($("opt-words").value) || null,
  };
}

/** Fetch `api/config`: fill the options, show whether the server is up. */
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

export function wireOptions() {
  $("options").addEventListener("submit", (e) => e.preventDefault());
  fillLengths(config.summary_words);
  loadConfig();
}
