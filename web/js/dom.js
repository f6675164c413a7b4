// DOM shorthands. Text only ever reaches the page through textContent.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** A new element with an optional class name and text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Set a node's text, touching the DOM only when it changes. */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
