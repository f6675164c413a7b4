// Drag and drop of a file anywhere on the page, with an overlay while a file is dragged over it.

import { $ } from "./dom.js";
import { isRunning } from "./state.js";

/** Call `onDrop(file)` when a file is dropped (not while a job runs: the overlay does not show then). */
export function wireDragAndDrop(onDrop) {
  let depth = 0;
  const overlay = $("drop-overlay");
  const hasFiles = (e) => Array.from(e.dataTransfer?.types ?? []).includes("Files");
  document.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth += 1;
    if (!isRunning()) overlay.hidden = false;
  });
  document.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = isRunning() ? "none" : "copy";
  });
  document.addEventListener("dragleave", (e) => {
    if (!hasFiles(e)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) overlay.hidden = true;
  });
  document.addEventListener("drop", (e) => {
    if (!hasFiles(e) && !e.dataTransfer?.files?.length) return;
    e.preventDefault();
    depth = 0;
    overlay.hidden = true;
    onDrop(e.dataTransfer.files[0]);
  });
}
