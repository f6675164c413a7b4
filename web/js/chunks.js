// Chunks: one cell per chunk in the overview, one card per chunk that has started.
//
// Cards far from the viewport are not rendered by the browser (CSS
// `content-visibility: auto` on .chunk-card), so a book with hundreds of chunks
// stays fast; screenshots turn that off with `body.capture` (see app.css).

import { toast } from "./alerts.js";
import { $, el, setText } from "./dom.js";
import { describeError } from "./errors.js";
import { formatCount, pageRange } from "./format.js";
import { dirty } from "./scheduler.js";
import { hooks, st } from "./state.js";

const STATE_WORDS = { pending: "waiting", running: "writing…", done: "done", failed: "failed", stopped: "stopped" };

/** Chunk `index` of the current job, creating it (and the ones before it) if needed. */
export function chunkAt(index) {
  for (let i = st.chunks.length; i <= index; i++) {
    st.chunks[i] = { index: i, pages: null, characters: 0, ocr: false, state: "pending", parts: [], text: null, failure: null, card: null, cell: null, restarts: 0 };
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
  const ocr = el("span", "chunk-ocr", "OCR");
  ocr.title = "Made from text recognized in scanned pages (OCR): it may contain recognition errors";
  ocr.hidden = true;
  toggle.append(el("span", "chev"), el("span", "chunk-no", `#${chunk.index + 1}`), el("span", "chunk-pages", ""), ocr, el("span", "chunk-badge", ""));
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

/** Draw a chunk's cell and (once it started) its card. */
export function renderChunk(chunk) {
  if (!chunk) return;
  const { cell } = chunk;
  const range = chunk.pages ? pageRange(chunk.pages) : "";
  const ocr = chunk.ocr ? " (OCR)" : "";
  if (cell.dataset.state !== chunk.state) cell.dataset.state = chunk.state;
  if (chunk.ocr) cell.dataset.ocr = "true";
  else delete cell.dataset.ocr;
  cell.setAttribute("aria-label", `Chunk ${chunk.index + 1}${range ? `, ${range}` : ""}${ocr}: ${STATE_WORDS[chunk.state]}`);
  cell.title = `#${chunk.index + 1}${range ? ` · ${range}` : ""}${ocr} · ${STATE_WORDS[chunk.state]}`;
  if (chunk.state === "pending") return;
  const card = ensureCard(chunk);
  card.dataset.state = chunk.state;
  if (chunk.failure) card.dataset.code = chunk.failure.code;
  else delete card.dataset.code;
  card.querySelector(".chunk-ocr").hidden = !chunk.ocr;
  setText(card.querySelector(".chunk-pages"), range);
  setText(card.querySelector(".chunk-badge"), chunk.restarts && chunk.state === "running" ? "retrying…" : STATE_WORDS[chunk.state]);
  const body = card.querySelector(".chunk-body");
  if (chunk.failure) {
    // Why it failed, instead of the partial text (which the protocol says to discard).
    const words = describeError(chunk.failure);
    setText(body, `Left out of the summary: ${words.title.replace(/^./, (c) => c.toLowerCase())}. ${words.detail}`);
    body.classList.add("failure");
    body.classList.remove("empty");
    return;
  }
  body.classList.remove("failure");
  const text = chunk.text ?? chunk.parts.join("");
  if (chunk.text == null && chunk.parts.length > 1) chunk.parts = [text];
  setText(body, text);
  body.classList.toggle("empty", !text);
}

/** The count beside "Chunks": known, or "12+" while the document is still being read. */
export function renderCellCount() {
  const total = st.doc?.chunks;
  setText($("chunk-count"), total != null ? `${formatCount(total)}` : st.chunks.length ? `${formatCount(st.chunks.length)}+` : "");
}

/** Empty the overview and the cards (a new job). */
export function clearChunks() {
  $("overview").replaceChildren();
  $("cards").replaceChildren();
  $("toggle-all").textContent = "Collapse all";
  $("toggle-all").setAttribute("aria-pressed", "false");
}

/** Any chunk still running gets `state` (the job ended without its summary). */
export function stopChunks(state) {
  for (const chunk of st.chunks) {
    if (chunk && chunk.state === "running") {
      chunk.state = state;
      dirty.chunks.add(chunk.index);
    }
  }
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

/** Scroll chunk `index`'s card into view and highlight it. */
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

function focusCell(cell) {
  for (const other of $("overview").querySelectorAll('.cell[tabindex="0"]')) other.tabIndex = -1;
  cell.tabIndex = 0;
  cell.focus();
}

/** Clicks and keys: cells jump to their card (arrow keys move), card headings fold, "Collapse all". */
export function wireChunks() {
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
  $("cards").addEventListener("click", (e) => {
    const toggle = e.target.closest(".chunk-toggle");
    if (!toggle) return;
    const card = toggle.closest(".chunk-card");
    setExpanded(card, toggle.getAttribute("aria-expanded") !== "true");
  });
  $("toggle-all").addEventListener("click", toggleAll);
}
