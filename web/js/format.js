// Small formatting helpers for numbers, sizes, durations and page ranges.

const numberFormat = new Intl.NumberFormat("en");

/** 12345 → "12,345". */
export function formatCount(n) {
  return numberFormat.format(n);
}

/** "1 page", "14 pages" (with thousands separators). */
export function plural(n, word, many = `${word}s`) {
  return `${formatCount(n)} ${n === 1 ? word : many}`;
}

/** Bytes as "812 B", "1.0 MB" (powers of 1024, as file managers show them). */
export function formatBytes(bytes) {
  if (bytes == null || Number.isNaN(bytes)) return "";
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)}\u00a0${units[unit]}`;
}

/**
 * Seconds as "4.8 s", "27 s", "2:05", "1:02:03"; with `rough`, as "7 s", "2 min", "1 h 2 min".
 */
export function formatDuration(seconds, rough = false) {
  if (seconds == null || !Number.isFinite(seconds)) return rough ? "a while" : "–";
  const s = Math.max(0, seconds);
  if (rough) {
    if (s < 1) return "a second";
    if (s < 60) return `${Math.ceil(s)}\u00a0s`;
    if (s < 3600) return `${Math.round(s / 60)}\u00a0min`;
    return `${Math.floor(s / 3600)}\u00a0h ${Math.round((s % 3600) / 60)}\u00a0min`;
  }
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}\u00a0s`;
  const whole = Math.floor(s);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const sec = String(whole % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** [3, 3] → "page 3"; [3, 5] → "pages 3–5". */
export function pageRange(pages) {
  if (!pages) return "";
  const [first, last] = pages;
  return first === last ? `page ${first}` : `pages ${first}–${last}`;
}

/** Words in a text (runs of non-space). */
export function wordCount(text) {
  const m = text.match(/\S+/g);
  return m ? m.length : 0;
}

/** The badge for a file: "PDF", "MD" or "TXT". */
export function fileKind(name, type) {
  const ext = /\.([^.]+)$/.exec(name || "")?.[1]?.toLowerCase();
  if (ext === "pdf" || type === "application/pdf") return "PDF";
  if (ext === "md" || ext === "markdown") return "MD";
  return "TXT";
}

/**
 * Page ranges `[[first, last], ...]` (as in `summary.missing_pages`) in words.
 * [[12, 14], [30, 30]] → {count: 4, text: "12–14, 30"}: `count` is the number of
 * pages (a page in two overlapping ranges counts once); at most `max` ranges are
 * listed, then "…".
 * @returns {{count: number, text: string}}
 */
export function pageRanges(ranges, max = 12) {
  const clean = (Array.isArray(ranges) ? ranges : [])
    .filter((r) => Array.isArray(r) && Number.isInteger(r[0]) && Number.isInteger(r[1] ?? r[0]))
    .map(([first, last = first]) => [Math.min(first, last), Math.max(first, last)])
    .sort((a, b) => a[0] - b[0]);
  const merged = [];
  for (const [first, last] of clean) {
    const prev = merged[merged.length - 1];
    if (prev && first <= prev[1] + 1) prev[1] = Math.max(prev[1], last);
    else merged.push([first, last]);
  }
  const count = merged.reduce((n, [first, last]) => n + last - first + 1, 0);
  const shown = merged.slice(0, max).map(([first, last]) => (first === last ? `${first}` : `${first}–${last}`));
  if (merged.length > max) shown.push("…");
  return { count, text: shown.join(", ") };
}

/** [[12, 14], [30, 30]] → "4 pages: 12–14, 30"; "" for none. */
export function pageRangesWords(ranges, max = 12) {
  const { count, text } = pageRanges(ranges, max);
  return count ? `${plural(count, "page")}: ${text}` : "";
}
