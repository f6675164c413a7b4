// The rendering loop: events mark what is dirty, one animation frame writes the DOM.
//
// At most every MIN_FRAME_MS: streaming text at ~20 frames a second reads as
// smooth and leaves the CPU to the rest of the machine (software-rendered
// browsers included). While a job runs, a ticker redraws every 250 ms so that
// the elapsed time and the ETA move between events.

const MIN_FRAME_MS = 50;

/** What the next frame must redraw: everything, some chunks, the summary, the chunk count. */
export const dirty = { all: true, chunks: new Set(), summary: false, overviewCells: false };

let renderer = () => {};
let frameRequested = false;
let lastRender = 0;
let ticker = null;

/** Set the function that draws a frame (view.js `render`). */
export function setRenderer(fn) {
  renderer = fn;
}

function frame() {
  frameRequested = false;
  lastRender = performance.now();
  renderer();
}

/** Ask for a frame (at most one is pending). */
export function schedule() {
  if (frameRequested) return;
  frameRequested = true;
  const wait = lastRender + MIN_FRAME_MS - performance.now();
  if (wait > 4) setTimeout(() => requestAnimationFrame(frame), wait);
  else requestAnimationFrame(frame);
}

/** Redraw everything in the next frame. */
export function markAll() {
  dirty.all = true;
  schedule();
}

/** Draw now, without waiting for a frame. */
export function renderNow() {
  renderer();
}

export function startTicker() {
  clearInterval(ticker);
  ticker = setInterval(markAll, 250);
}

export function stopTicker() {
  clearInterval(ticker);
  ticker = null;
}
