// A tiny, safe Markdown renderer: it builds DOM nodes and sets text with
// textContent / createTextNode only, so nothing in the source can become HTML.
//
// Supported: ATX headings (#), paragraphs, hard line breaks, unordered (- * +)
// and ordered (1.) lists (one level), block quotes (>), fenced code (```),
// horizontal rules, **bold**, *italic* / _italic_, `code`, ~~strike~~ and
// [links](https://...) whose URL is http(s) or mailto (others stay text).
// Anything else is shown literally.

const SAFE_URL = /^(https?:|mailto:)/i;

/**
 * Render Markdown `source` into `target`, replacing its children.
 * @param {HTMLElement} target
 * @param {string} source
 */
export function renderMarkdown(target, source) {
  const fragment = document.createDocumentFragment();
  for (const block of parseBlocks(String(source ?? ""))) fragment.append(buildBlock(block));
  target.replaceChildren(fragment);
}

/** Split the source into block descriptions. */
export function parseBlocks(source) {
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  const blocks = [];
  let para = null;
  let list = null;
  let quote = null;
  const flush = () => {
    if (para) blocks.push({ kind: "p", lines: para });
    if (list) blocks.push(list);
    if (quote) blocks.push({ kind: "quote", children: parseBlocks(quote.join("\n")) });
    para = list = quote = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m;
    if ((m = /^\s{0,3}(```|~~~)\s*([\w+-]*)\s*$/.exec(line))) {
      flush();
      const fence = m[1];
      const code = [];
      for (i++; i < lines.length && !lines[i].trimStart().startsWith(fence); i++) code.push(lines[i]);
      blocks.push({ kind: "code", text: code.join("\n"), lang: m[2] });
      continue;
    }
    if (!line.trim()) { flush(); continue; }
    if ((m = /^\s{0,3}>\s?(.*)$/.exec(line))) {
      if (!quote) { flush(); quote = []; }
      quote.push(m[1]);
      continue;
    }
    if (quote) flush();
    if ((m = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line))) {
      flush();
      blocks.push({ kind: "h", level: m[1].length, text: m[2] });
      continue;
    }
    if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) { flush(); blocks.push({ kind: "hr" }); continue; }
    if ((m = /^\s{0,3}([-*+]|\d{1,9}[.)])\s+(.*)$/.exec(line))) {
      const ordered = /\d/.test(m[1]);
      if (para) { blocks.push({ kind: "p", lines: para }); para = null; }
      if (!list || list.ordered !== ordered) {
        if (list) blocks.push(list);
        list = { kind: "list", ordered, start: ordered ? parseInt(m[1], 10) : 1, items: [] };
      }
      list.items.push([m[2]]);
      continue;
    }
    if (list && /^\s+\S/.test(line)) { list.items[list.items.length - 1].push(line.trim()); continue; }
    if (list) { blocks.push(list); list = null; }
    (para ??= []).push(line);
  }
  flush();
  return blocks;
}

function buildBlock(block) {
  switch (block.kind) {
    case "h": {
      // Headings inside the summary start at h3 so they stay below the panel's own title.
      const el = document.createElement(`h${Math.min(6, block.level + 2)}`);
      appendInline(el, block.text);
      return el;
    }
    case "hr":
      return document.createElement("hr");
    case "code": {
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      code.textContent = block.text;
      pre.append(code);
      return pre;
    }
    case "quote": {
      const el = document.createElement("blockquote");
      for (const child of block.children) el.append(buildBlock(child));
      return el;
    }
    case "list": {
      const el = document.createElement(block.ordered ? "ol" : "ul");
      if (block.ordered && block.start !== 1) el.start = block.start;
      for (const item of block.items) {
        const li = document.createElement("li");
        appendLines(li, item);
        el.append(li);
      }
      return el;
    }
    default: {
      const p = document.createElement("p");
      appendLines(p, block.lines);
      return p;
    }
  }
}

function appendLines(el, lines) {
  lines.forEach((line, i) => {
    if (i > 0) {
      // Two trailing spaces or a backslash mark a hard break; otherwise a soft one (a space).
      if (/( {2,}|\\)$/.test(lines[i - 1])) el.append(document.createElement("br"));
      else el.append(" ");
    }
    appendInline(el, line.replace(/( {2,}|\\)$/, "").trim());
  });
}

// One pass over the text: the earliest match of any inline rule wins.
const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*(?=\S)([\s\S]*?\S)\*\*|(?<!\w)__(?=\S)([\s\S]*?\S)__(?!\w)|~~(?=\S)([\s\S]*?\S)~~|\*(?=[^\s*])([\s\S]*?[^\s*])\*|(?<![\w])_(?=[^\s_])([\s\S]*?[^\s_])_(?![\w])|\[([^\]\n]+)\]\(\s*<?([^()\s<>]+)>?\s*\)/;

/**
 * Append the inline Markdown of `text` to `el` as nodes.
 * @param {Node} el
 * @param {string} text
 */
export function appendInline(el, text) {
  let rest = text;
  while (rest) {
    const m = INLINE.exec(rest);
    if (!m) { el.append(rest); return; }
    if (m.index > 0) el.append(rest.slice(0, m.index));
    let node;
    if (m[1] !== undefined) {
      node = document.createElement("code");
      node.textContent = m[2].trim() || m[2];
    } else if (m[3] !== undefined || m[4] !== undefined) {
      node = document.createElement("strong");
      appendInline(node, m[3] ?? m[4]);
    } else if (m[5] !== undefined) {
      node = document.createElement("del");
      appendInline(node, m[5]);
    } else if (m[6] !== undefined || m[7] !== undefined) {
      node = document.createElement("em");
      appendInline(node, m[6] ?? m[7]);
    } else if (SAFE_URL.test(m[9])) {
      node = document.createElement("a");
      node.href = m[9];
      node.rel = "noopener noreferrer nofollow";
      node.target = "_blank";
      appendInline(node, m[8]);
    } else {
      node = document.createTextNode(m[0]);
    }
    el.append(node);
    rest = rest.slice(m.index + m[0].length);
  }
}
