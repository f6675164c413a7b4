"""Render the benchmark results (the JSON of :mod:`bench.__main__`) as ``docs/benchmarks.md``.

One section per benchmark: what is measured and against what reference, a
table of the figures, and the goal with the measured ratio. Only numbers from
the results are printed; nothing is measured here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["render"]

Goal = list[str]
"""A row of the goals table: number, what, goal, measured, status."""


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:,.{digits}f}"
    return str(value)


def _ms(seconds: Any) -> str:
    return "–" if seconds is None else _num(1000 * seconds, 0)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A markdown table; ``align`` has one ``l`` or ``r`` per column (default: first left)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _goal(number: str, what: str, goal: str, measured: str, passed: Any) -> Goal:
    """A goals-table row; ``passed`` ``None`` (not measured) shows as a dash."""
    return [number, what, goal, measured, _status(passed)]


def _status(passed: Any) -> str:
    if passed is None:
        return "–"
    return "**met**" if passed else "**missed**"


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else math.nan


# ---------------------------------------------------------------------------
# sections: each returns (markdown, goal rows)


def _overhead(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    header = [
        "document",
        "chunks",
        "c",
        "calls on the critical path (map + collapse + reduce)",
        "collapse groups",
        "peak in flight",
        "limit (s)",
        "wall (s)",
        "ratio",
        "CPU (s)",
    ]
    rows = []
    for row in r["rows"]:
        collapse = "+".join(map(str, row["collapse_rounds"])) or "0"
        rows.append(
            [
                row["document"],
                _num(row["chunks"]),
                _num(row["concurrency"]),
                f"{row['map_rounds']} + {collapse} + 1 = {row['critical_path_calls']}",
                ", ".join(map(str, row["collapse_groups"])) or "–",
                _num(row["peak_in_flight"]),
                _num(row["limit_s"]),
                _num(row["wall_s"]),
                f"**{_num(row['ratio'], 3)}**",
                _num(row["cpu_s"]),
            ]
        )
    table = _table(header, rows, "lrrlrrrrrr")
    text = f"""## 1. Pure-pipeline overhead against the critical path (not the user path)

**Pure pipeline only**: no upload, no parsing, no server, no HTTP. Our pipeline
(`summarize_chunks`) on chunks that already exist in memory, with the in-process
latency model. The user path is section 0. With every call lasting the same `T`, no scheduler can finish
before **T x (ceil(chunks / c) + sum over collapse levels of ceil(groups / c) + 1)**:
the map is `ceil(chunks / c)` rounds of `c` parallel calls; a collapse level can
only start when every summary of the stage before exists (its grouping depends
on all of them), and its `groups` calls also run in rounds of `c` (the same
semaphore bounds them), so a level costs `ceil(groups / c)` calls, not one;
the reduce is one more call. The groups per level are read from the run's
`collapse` events. `T` = {_num(r["call_s_measured"], 4)} s is measured in the same run
(median of bare `model.astream` calls; nominal {_num(r["call_s_nominal"], 3)} s).
Ratio = wall / limit, goal at most {r["goal"]}. CPU is this process's CPU time
during the run. Short cases: best of three runs.

{table}
"""
    goal = _goal(
        "1",
        "pure-pipeline overhead (chunks in memory, not the user path): wall / limit (worst)",
        f"≤ {r['goal']}",
        _num(r["worst_ratio"], 3),
        r["passed"],
    )
    return text, [goal]


_PEER_ROWS = (
    ("ours", "ours"),
    ("langchain-classic", "langchain-classic"),
    ("langgraph", "langgraph (recipe)"),
    ("langchain-classic-uncapped", "langchain-classic, model uncapped"),
)


def _peers(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    rows: list[list[str]] = []
    for case in r["rows"]:
        for key, label in _PEER_ROWS:
            s = case[key]
            rows.append(
                [
                    f"{case['document']} ({case['chunks']} chunks)",
                    _num(case["concurrency"]),
                    label,
                    _num(s["wall_s"]),
                    _ms(s["first_chunk_token_s"]),
                    _ms(s["first_summary_token_s"]),
                    _num(s["calls"]),
                    _num(s["peak_in_flight"]),
                ]
            )
    ratios = [
        [
            case["document"],
            _num(case["concurrency"]),
            _num(case["ours"]["wall_s"] / case["langchain-classic"]["wall_s"], 3),
            _num(case["ours"]["wall_s"] / case["langgraph"]["wall_s"], 3),
            f"**{_num(case['ours_vs_best_peer'], 3)}**",
            f"**{_num(case['ours_first_token_ratio'], 3)}**",
        ]
        for case in r["rows"]
    ]
    times = _table(
        [
            "document",
            "c",
            "system",
            "total (s)",
            "first chunk token (ms)",
            "first summary token (ms)",
            "model calls",
            "peak in flight",
        ],
        rows,
        "lrlrrrrr",
    )
    first = _ms(r["first_token_s"])
    ratio_table = _table(
        [
            "document",
            "c",
            "ours / classic",
            "ours / langgraph",
            "ours / best peer",
            f"first chunk token / {first} ms",
        ],
        ratios,
    )
    repeats = r.get("repeats", 1)
    best_of = f" Short cases: best of {repeats} runs, systems interleaved." if repeats > 1 else ""
    text = f"""## 2. Against LangChain and LangGraph (same model, same chunks, same budget)

The same chunks, our prompts and the same latency model for all; concurrency
`c` is `max_concurrency` in the RunnableConfig for the peers and
`PipelineConfig.concurrency` for us. Budget: ours `reduce_budget_chars` =
{_num(r["budget_chars"])} characters, theirs `token_max` = {_num(r["token_max"])} with a
character-based length function (the model's `get_num_tokens` = `len(text) // 4`; no
tokenizer). **langchain-classic** is `load_summarize_chain(chain_type="map_reduce")`
streamed with `astream_events(version="v2")`; **langgraph** is the map-reduce
summarization recipe of the LangChain docs (`Send` fan-out,
`split_list_of_docs` / `acollapse_docs`, `token_max`) streamed with
`stream_mode="messages"`. Both peers collapse one group after the other (the
recipe's `for` loop; `ReduceDocumentsChain._acollapse`); we collapse the groups
of a level concurrently.

The model is capped at `c` calls in flight, like a provider's concurrency
limit: `load_summarize_chain`'s map step calls `agenerate` for all chunks at
once and ignores `max_concurrency` (the "model uncapped" row: peak in flight =
number of chunks). Times are from the start, when every chunk's text exists;
"first chunk token" is the first token of any per-chunk summary the caller can
see, "first summary token" the first token of the final summary.{best_of}

{times}

{ratio_table}
"""
    goals = [
        _goal(
            "2a",
            "total time / best peer's (worst case)",
            f"≤ 1.0 (± {r.get('noise', 0):.0%} noise)",
            _num(r["worst_total_ratio"], 3),
            r["passed_total"],
        ),
        _goal(
            "2b",
            "first chunk token / model's first-token latency (worst case)",
            "≤ 1.1",
            _num(r["worst_first_token_ratio"], 3),
            r["passed_first_token"],
        ),
    ]
    return text, goals


def _pipelining(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    rows = [
        ["upload duration (first to last piece)", _num(r["upload_s"])],
        ["first `chunk.started`", _num(r["first_chunk_started_s"])],
        ["characters sent by then", _num(r["chars_sent_at_first_started"])],
        [
            f"`chunk_size + chunk_overlap` = {_num(r['lookahead_chars'])} characters had been sent at",
            _num(r["lookahead_sent_s"]),
        ],
        ["first `chunk.token`", _num(r["first_chunk_token_s"])],
        ["… of which model first-token latency", _num(r["model_first_token_s"])],
        ["`chunk.token` events before the upload ended", _num(r["tokens_before_upload_end"])],
        ["first `summary.token`", _num(r["first_summary_token_s"])],
        ["`summary` (job done)", _num(r["total_s"])],
    ]
    table = _table(["", "seconds / count"], rows)
    ratio = _num(r["ratio_first_token_to_upload"], 3)
    text = f"""## 3. Pipelining: summaries while the upload is still arriving

{_num(r["characters"])} characters of *Free Culture* sent as {r["pieces"]} `text` messages
{r["interval_s"]} s apart (`SummarizerClient.summarize_text` with an async generator)
to the real server (uvicorn, own process, latency model). Seconds from the first
piece. The incremental chunker cuts a chunk as soon as it holds
`chunk_size` + 1 = {_num(r["chunk_size"] + 1)} characters past the chunk's start.

{table}

First chunk token / upload duration = **{ratio}** (goal < 1: the map starts
before the upload ends).
"""
    goal = _goal("3", "first chunk token / upload duration", "< 1", ratio, r["passed"])
    return text, [goal]


def _upload(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    s = r["summary"]
    servers = r.get("servers", {})
    ours = servers.get("ours", {})
    frame_kib = r["frame_bytes"] // 1024
    rows = []
    for frame, summary in sorted(
        r.get("by_frame", {str(r["frame_bytes"]): s}).items(), key=lambda x: int(x[0])
    ):
        for name in ("ours", "bare"):
            rows.append(
                [
                    f"{int(frame) // 1024} KiB",
                    name,
                    _num(summary[name]["median_mib_s"], 1),
                    _num(summary[name]["best_mib_s"], 1),
                    _num(summary[name]["server_cpu_per_s"]),
                    _num(summary[name]["server_cpu_ms_per_mib"], 1),
                    _num(summary["ratio"]["value"], 3) if name == "ours" else "",
                ]
            )
    header = [
        "frames",
        "server",
        "median MiB/s",
        "best MiB/s",
        "server CPU / s",
        "server CPU ms / MiB",
        "ours / bare",
    ]
    table = _table(header, rows, "llrrrrr")
    mps = ours.get("max_messages_per_second")
    cap = ""
    if mps is not None:
        cap = (
            f"Binary frames of 16 KiB or more do not count against the server's "
            f"`max_messages_per_second` ({_num(mps, 0)}): the ack window bounds them, so the "
            "message rate does not cap this figure."
        )
    ratio = _num(r["ratio"], 3)
    write = s.get("disk_write_cpu_ms_per_mib")
    limit = ""
    if write is not None:
        ours_cpu = s["ours"]["server_cpu_ms_per_mib"]
        limit = (
            f"Where our server's CPU goes: committing the frames before they are acknowledged "
            f"(`SqliteStore.append_uploads`: the {frame_kib} KiB frames the transport has read "
            "are committed together, at most 512 KiB at a time, as one `writev` of the payloads and "
            "one `write` of their 5-byte index entries, into a store in the "
            f"temporary directory, where the server keeps its data; timed in this run) costs "
            f"{_num(write, 1)} ms per MiB of the "
            f"{_num(ours_cpu, 1)}; the other {_num(ours_cpu - write, 1)} are uvicorn, Starlette, the "
            f"session and the job, against the bare server's {_num(s['bare']['server_cpu_ms_per_mib'], 1)} "
            "(the same frame parser; it writes nothing). The client runs on the same two cores."
        )
    text = f"""## 4. Upload throughput over loopback

{_num(r["bytes"] / 1024**2, 0)} MiB in {frame_kib} KiB binary frames, at most
`ack_window_bytes` unacknowledged, from the first frame to the `ack` of the last
byte (then `cancel`: the synthetic PDF is never parsed). The same client drives
our server (uvicorn, `{ours.get("uvicorn_ws", "?")}`, own process) and a bare
`websockets` server that only acknowledges (own process); no permessage-deflate
on either side. Median of {r["repeats"]} alternating runs. "server CPU" is the
server process's CPU seconds per second of upload, and per MiB. The goal is
judged with {frame_kib} KiB frames; 256 KiB is `SummarizerClient`'s default frame size.

{table}

Ours / bare = **{ratio}** (goal ≥ {r["goal"]}). {cap}

{limit}
"""
    goal = _goal("4", "upload MiB/s, ours / bare websockets", f"≥ {r['goal']}", ratio, r["passed"])
    return text, [goal]


def _ingestion(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    def row(name: str, runs: list[dict[str, Any]]) -> list[str]:
        return [
            name,
            _num(runs[0]["pages"]),
            _num(_median([x["wall_s"] for x in runs])),
            _num(max(x["pages_per_s"] for x in runs), 1),
            _num(_median([x["cpu_s"] for x in runs])),
            _num(_median([x["cpu_per_wall"] for x in runs])),
        ]

    table = _table(
        ["path", "pages", "wall (s)", "pages/s (best)", "CPU (s)", "CPU / wall"],
        [row("ours", r["ours"]), row("bare pypdf", r["bare"])],
    )
    cores = "a second core is used" if r["two_cores"] else "no second core is used, on balance"
    ratio = _num(r["overhead_ratio"], 3)
    cpu_wall = _num(r["ours_cpu_per_wall"], 2)
    text = f"""## 5. PDF ingestion

`{r["document"]}` ({_num(r["bytes"])} bytes). **ours**: `iter_chunks` on the bytes
(extraction in the worker process, cleaning and chunking here, pages streamed
between them); **bare**: `PdfReader` + `extract_text()` for every page in one
process. CPU = this process (all threads) + the worker (reaped by the
multiprocessing forkserver, read from its `cutime`/`cstime`). Median of
{r["repeats"]} runs.

{table}

Overhead ratio (our wall / bare wall) = **{ratio}**; our CPU / wall = **{cpu_wall}**
({cores}).
"""
    goal = [
        "5",
        "PDF ingestion wall, ours / bare pypdf (our CPU / wall)",
        "report",
        f"{ratio} ({cpu_wall})",
        "–",
    ]
    return text, [goal]


def _embedded(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    rows = [
        [
            row["input"],
            _num(row["characters"]),
            _num(row["chunks"]),
            " / ".join(str(v) for v in (row["calls"] or {}).values()),
            _num(row["wall_s"]),
            _num(row["job_s"]),
            _num(row["cpu_s"]),
            _num(row["maxrss_mib"], 0),
            _num(row["tree_peak_mib"], 0),
            _num(row["wall_per_char_ratio"], 3),
            _num(row["job_per_char_ratio"], 3),
        ]
        for row in r["rows"]
    ]
    table = _table(
        [
            "input",
            "characters",
            "chunks",
            "calls (map / collapse / reduce)",
            "wall (s)",
            "job (s)",
            "CPU (s)",
            "peak RSS (MiB)",
            "tree peak (MiB)",
            "wall/char vs 1x",
            "job/char vs 1x",
        ],
        rows,
    )
    marginal_rows = [
        [label, _num(m["per_mchar_1x_2x"], 1), _num(m["per_mchar_2x_4x"], 1), f"**{_num(m['ratio'], 3)}**"]
        for label, m in (
            ("job time (`summary.elapsed_s`)", r["marginal"]["job_s"]),
            ("CPU (process tree)", r["marginal"]["cpu_s"]),
            ("wall time", r["marginal"]["wall_s"]),
        )
    ]
    marginal = _table(["measure", "1x → 2x", "2x → 4x", "ratio"], marginal_rows)
    text = f"""## 6. Embedded default model, end to end

`python -m summarizer summarize FILE --json` as a child process (in-process
server, default extractive model): wall time, job time (`summary.elapsed_s`),
CPU, peak RSS of the largest process (`wait4`) and the peak summed RSS of the
process tree (sampled from `/proc` every 0.1 s; includes the PDF worker). Then
the same text repeated 1x, 2x and 4x as `.txt`; "per char" columns are time per
character relative to the 1x text (1.0 = linear; fixed start-up costs pull the
larger inputs below 1).

{table}

Marginal cost in seconds per extra million characters (differences cancel
start-up and other fixed costs; 2x→4x / 1x→2x near 1 = linear; CPU is the
steadiest on a shared machine):

{marginal}
"""
    goal = [
        "6",
        "embedded: marginal CPU per character, 2x→4x / 1x→2x (linear = 1)",
        "report",
        _num(r["marginal"]["cpu_s"]["ratio"], 3),
        "–",
    ]
    return text, [goal]


def _many_users(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    server = r.get("server", {})
    lag = server.get("lag_ms", {})
    ours, bare = r.get("session_s", {}), r.get("bare_session_s", {})
    delivery, bare_delivery = r["delivery_ms"], r.get("bare_delivery_ms", {})
    client_lag = r["client_lag_ms"]

    def pair(values: dict[str, Any], digits: int = 1) -> str:
        return f"{_num(values.get('p50'), digits)} / {_num(values.get('p99'), digits)}"

    rows = [
        ["sessions completed", f"{r['completed']} / {r['sessions']}", ""],
        ["session time p50 / p99 (s)", pair(ours, 2), pair(bare, 2)],
        ["tokens delivered", _num(r["tokens"]), _num(r.get("bare_tokens"))],
        ["token events (coalesced, ≤ 25 ms)", _num(r.get("token_events")), ""],
        ["token delivery delay p50 / p99 (ms)", pair(delivery), pair(bare_delivery)],
        ["server event-loop lag p50 / p99 / max (ms)", f"{pair(lag)} / {_num(lag.get('max'), 1)}", ""],
        ["client event-loop lag p50 / p99 (ms)", pair(client_lag), ""],
        [
            "server RSS at start / peak (MiB)",
            f"{_num(server.get('start_rss_mib'), 0)} / {_num(server.get('peak_rss_mib'), 0)}",
            "",
        ],
        ["server CPU during the sessions (s)", _num(server.get("cpu_s")), ""],
        ["all sessions' wall time (s)", _num(r["wall_s"]), ""],
    ]
    table = _table(["", "ours (through the server)", "bare (httpx)"], rows)
    profile = r.get("profile") or {}
    layer_rows = [[name, _num(us, 1)] for name, us in profile.get("us_per_token", {}).items()]
    layers = (
        _table(["layer (server event-loop thread)", "CPU µs per token"], layer_rows) if layer_rows else ""
    )
    failures = f"\n\nFailures: {r['failures']}\n" if r.get("failures") else ""
    text = f"""## 7. Many sessions on one server

{r["sessions"]} sessions at once on one server (uvicorn, own process, `max_jobs`
raised to {server.get("max_jobs", "?")}), model `openai:latency` through langchain-openai
to the OpenAI-compatible model server on loopback, which stamps `time.time()` into
every token. Each session uploads a {_num(r.get("document_chars"))}-character text (one chunk: one
map call, one reduce call). **Reference (bare)**: the same two calls per session,
100 sessions at once, streamed with `httpx` straight to the model server in the same
run. Delivery delay = arrival at the client (parsed) - the time the model server
produced the token. The server's event-loop lag is the oversleep of a 10 ms sleep,
sampled while jobs run.

{table}{failures}

CPU per token by layer, from a second run with the server's event-loop thread
under cProfile on that thread's CPU clock ({_num(profile.get("tokens"))} tokens,
{_num(profile.get("cpu_s"))} s of profiled CPU), builtins and library code charged to
their callers' layers, and the shares scaled to the event-loop thread's CPU in the unprofiled run
({_num(profile.get("loop_cpu_s"))} s; profiling slows every call down):

{layers}
"""
    goals = [
        _goal(
            "7a",
            "100 sessions: added p99 token delay, ours - bare (ms)",
            f"≤ {_num(100.0, 0)}",
            _num(r.get("added_p99_ms"), 0),
            r.get("passed_delay"),
        ),
        _goal(
            "7b",
            "100 sessions: p99 session time, ours / bare",
            "≤ 1.2",
            _num(r.get("session_ratio_p99"), 2),
            r.get("passed_session"),
        ),
        _goal(
            "7c",
            "100 sessions: server event-loop lag p99 (ms)",
            "≤ 20",
            _num(lag.get("p99"), 1),
            r.get("passed_lag"),
        ),
    ]
    return text, goals


def _quality(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    from bench.quality import format_table

    if "margins" not in r:  # a result of the earlier quality benchmark (SQuALITY and lead-k only)
        text = """## 8. Quality of the embedded default

Not measured in this run: the stored result comes from the earlier benchmark
(SQuALITY against lead-k only). Run `python -m bench --only quality --merge` for
the current one (both sets, lead-k and sumy's LSA, LexRank and TextRank).
"""
        return text, [["8", "ROUGE ahead of every baseline on both sets", "> 0", "–", "not run"]]
    margins = "; ".join(
        f"{name}: " + ", ".join(f"{m} {v:+.2f}" for m, v in per.items()) for name, per in r["margins"].items()
    )
    text = f"""## 8. Quality of the embedded default

`bench.quality.run_benchmark`: ROUGE F1 of the extractive model's summaries,
end to end (ingestion and map-reduce), against the human references of the
SQuALITY dev stories and the QMSum dev meetings, next to lead-k and sumy's
LSA, LexRank and TextRank on the same pysbd sentences; every summary cut to the
reference's length.

{format_table(r)}

Margin of ours over the best baseline (all documents, F1 x 100): {margins}.
"""
    goal = _goal(
        "8",
        "ROUGE-1 / 2 / Lsum F1: ours ahead of every baseline, both sets, both halves",
        "> 0",
        margins,
        bool(r["ahead"]),
    )
    return text, [goal]


def _ocr(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    from .ocr import report

    return report(r)


def _user_path(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    bare = r["bare"]
    load = r.get("load", {})

    def loads(key: str) -> str:
        return " / ".join(_num(x, 2) for x in load.get(key, [])) or "–"

    first_rows = [
        [
            f"{row['document']} (run {row['attempt']})",
            f"{row['first_chunk_pages'][0]}–{row['first_chunk_pages'][1]}",
            _ms(row["bare_parse_first_chunk_s"]),
            _ms(row["reference_s"]),
            _ms(row["first_chunk_token_s"]),
            f"**{_num(row['ratio'], 2)}**",
        ]
        for row in r["first_token"]
    ]
    first_table = _table(
        [
            "document",
            "first chunk's pages",
            "bare parse of them (ms)",
            "reference (ms)",
            "ours (ms)",
            "ours / ref",
        ],
        first_rows,
    )
    total_rows = [
        [
            row["document"],
            row["concurrency"],
            "yes" if row["budget"] == "collapse" else "no",
            row["chunks"],
            ", ".join(map(str, row["collapse_groups"])) or "–",
            _ms(row["first_chunk_token_s"]),
            _num(row["map_end_s"]),
            _num(row["limit_s"]),
            _num(row["wall_s"]),
            f"**{_num(row['ratio'], 3)}**",
        ]
        for row in r["total"]
    ]
    total_table = _table(
        [
            "document",
            "c",
            "small budget",
            "chunks",
            "collapse groups",
            "first chunk token (ms)",
            "limit: map end (s)",
            "limit (s)",
            "wall (s)",
            "wall / limit",
        ],
        total_rows,
    )
    recipe_rows = [
        [
            row["document"],
            row["concurrency"],
            f"{row['ours_chunks']} / {row['recipe_chunks']}",
            _ms(row["ours_first_chunk_token_s"]),
            _ms(row["recipe_first_chunk_token_s"]),
            _num(row["recipe_parse_s"]),
            _num(row["ours_wall_s"]),
            _num(row["recipe_wall_s"]),
            f"**{_num(row['ratio'], 3)}**",
        ]
        for row in r["recipe"]
    ]
    recipe_table = _table(
        [
            "document",
            "c",
            "chunks ours / recipe",
            "first chunk token ours (ms)",
            "recipe (ms)",
            "recipe parse (s)",
            "ours total (s)",
            "recipe total (s)",
            "ours / recipe",
        ],
        recipe_rows,
    )
    uploads = ", ".join(f"{name} {_ms(s)} ms" for name, s in bare["upload_s"].items())
    parses = ", ".join(f"{name} {_num(s)} s" for name, s in bare["parse_total_s"].items())
    text = f"""## 0. The user path: a PDF uploaded to the running server

What a user sees: `SummarizerClient.summarize_file` uploads the PDF to our server
(uvicorn, own process) whose model is `openai:latency` through langchain-openai,
talking HTTP to an OpenAI-compatible model server on loopback (`bench/model_server.py`,
own process: {_ms(r.get("first_token_s", 0.3))} ms to the first token, 60 tokens 10 ms apart).
Seconds from just before the client connects. References measured in this run:
a bare streamed call made with `httpx` to the model server takes
T = {_num(bare["call_s"], 3)} s, first token after {_ms(bare["ttft_s"])} ms; bare upload to a
`websockets` server: {uploads}; bare pypdf (open + `extract_text()` of every page,
one process): {parses}.

**First chunk token on a freshly started server** (its first job; a new server
process for every run). Reference = TTFT + bare upload + bare pypdf open and
extract of the first chunk's pages + {_ms(r["first_token_slack_s"])} ms. Load average
after: {loads("first_token")}.

{first_table}

**Total against the critical path**, upload and parsing included. The limit
lets map call *i* start once the upload ended and bare pypdf extracted chunk
*i*'s last page, `c` calls at once lasting T each, then `ceil(groups / c)`
rounds per collapse level and the reduce. "small budget" runs a server with
`reduce_budget_chars` = 3,000, which forces collapse levels. Best of the runs
(the others are in the JSON). Load average after: {loads("total")}.

{total_table}

**Against the LangGraph map-reduce recipe** (`bench/peers.py` graph), with its
own parse: pypdf page by page into documents, `RecursiveCharacterTextSplitter`
(4,000 / 200) `split_documents`, the same `ChatOpenAI` client and model
server, `max_concurrency` = `c`. Systems interleaved; best run of each. Load
average after: {loads("recipe")}.

{recipe_table}
"""
    goals = [
        _goal(
            "0a",
            "user path: first chunk token / (TTFT + upload + bare parse of its pages + 0.2 s), fresh server",
            "≤ 1",
            _num(r["worst_first_token_ratio"], 2),
            r["passed_first_token"],
        ),
        _goal(
            "0b",
            "user path: total / critical path incl. upload and parse (worst; c = 4, 16; ± collapse)",
            f"≤ {r['goal_total']}",
            _num(r["worst_total_ratio"], 3),
            r["passed_total"],
        ),
        _goal(
            "0c",
            "user path: total / LangGraph recipe with its parse (worst)",
            "≤ 1",
            _num(r["worst_recipe_ratio"], 3),
            r["passed_recipe"],
        ),
    ]
    return text, goals


def _packing(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    rows = []
    for row in r["rows"]:
        if "error" in row:
            rows.append([row["document"], "–", "–", "–", "–", "–", "–", row["error"][:60]])
            continue
        rows.append(
            [
                row["document"],
                _num(row["characters"]),
                row["chunks"],
                row["ideal"],
                row["stock_raw"],
                f"**{_num(row['ratio'], 3)}**",
                _num(row["longest"]),
                _num(row["map_input_tokens"]),
            ]
        )
    table = _table(
        [
            "document",
            "characters",
            "chunks",
            "ideal",
            "stock splitter on raw pages",
            "chunks / ideal",
            "longest chunk",
            "map input tokens",
        ],
        rows,
    )
    text = f"""## 0p. Chunk packing (map calls)

Each chunk is a paid map call that repeats the prompt and the overlap. Our chunks
(`read_document`, {_num(r["chunk_size"])} / {_num(r["chunk_overlap"])} characters) against the ideal
`ceil(characters / (chunk_size - chunk_overlap))` of the cleaned text, and against the stock
`RecursiveCharacterTextSplitter` (same sizes) on the raw page texts. The chunker
cuts greedily at the last paragraph, sentence, line or word boundary in the last
6% of the window. "map input tokens" = characters of all chunks / 4 (the
`document` event's `input_tokens`).

{table}
"""
    goal = _goal(
        "0p",
        "chunks / ceil(characters / (size - overlap)) (worst), and ≤ stock splitter",
        f"≤ {r['goal']}",
        _num(r["worst_ratio"], 3),
        r["passed"],
    )
    return text, [goal]


def _worker_start(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    rows = [[job, _ms(v.get("opened_s")), _ms(v.get("first_page_s"))] for job, v in r["worker"].items()]
    table = _table(["job in a fresh process", "PdfOpened (ms)", "first PdfPage (ms)"], rows)
    text = f"""## 0w. Before the first page: the PDF worker's start

`extract_pages` on {r["document"]} for the first three jobs of a fresh process (no
prewarmed worker: this is the cost `pdf.prewarm`, called at server start, takes
off the first page's path), against bare pypdf in a warm interpreter: open
{_ms(r["bare_open_s"])} ms, open + page 1 {_ms(r["bare_open_and_page1_s"])} ms; `import pypdf` alone in a
fresh interpreter: {_ms(r["import_pypdf_s"])} ms (paid by every worker after it receives its
document).

{table}
"""
    goal = [
        "0w",
        "first PDF page, second job without prewarm / bare open + page 1",
        "report",
        _num(r["worker"]["job2"]["first_page_s"] / r["bare_open_and_page1_s"], 1),
        "–",
    ]
    return text, [goal]


def _memory(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    rows = [
        [
            f"{row['times']}x",
            _num(row["bytes"]),
            _num(row["wall_s"]),
            _num(row.get("bare_wall_s")),
            _num(row["tree_peak_mib"], 0),
            _num(row["above_baseline_mib"], 0),
            _num(row["largest_process_mib"], 0),
        ]
        for row in r["rows"]
    ]
    table = _table(
        [
            "book",
            "bytes",
            "ours wall (s)",
            "bare pypdf loop (s)",
            "tree peak (MiB)",
            "above baseline",
            "largest",
        ],
        rows,
    )
    first = r["rows"][0]
    text = f"""## 5m. The book: ingestion wall and memory of the whole process tree

`python -m summarizer summarize <pdf> --dry-run` (the CLI and its PDF worker:
ingestion and the call estimate, no model call) on `freeculture.pdf` and the same
pages written 2x / 4x into one PDF; peak summed RSS of the process tree sampled
from `/proc`; the interpreter with `summarizer.cli` imported uses
{_num(r["baseline_mib"], 0)} MiB ("above baseline" subtracts it). Reference: a bare
single-process pypdf loop over the same file.

{table}

Growth of the memory above baseline, {r["largest_times"]}x / 1x = {_num(r["growth_largest_over_1x"], 2)}
(linear in size would be {r["largest_times"]}; flat means memory does not depend on the size).
"""
    goals = [
        _goal(
            "5m",
            "book: peak RSS of the process tree (MiB)",
            f"≤ {_num(r['memory_goal_mib'], 0)}",
            _num(first["tree_peak_mib"], 0),
            r["passed_memory"],
        ),
        _goal(
            "5w",
            "book: ingestion wall / bare single-process pypdf loop (2 cores)",
            f"≤ {r['wall_goal']}",
            _num(first["wall_ratio"], 2),
            r["passed_wall"],
        ),
    ]
    return text, goals


_TAKEOVER_KEYS = ("lease_s", "claimed_after_s", "next_event_after_s", "goal_s")


def _scaleout(r: dict[str, Any]) -> tuple[str, list[Goal]]:
    jt = r["job_time"]
    rows = [
        [label, _num(jt[kind]["median_s"]), ", ".join(map(_num, jt[kind]["runs_s"]))]
        for kind, label in (("sqlite", "one replica on SQLite"), ("redis", "one replica on Redis (AOF)"))
    ]
    times = _table(["", "median job time (s)", "runs (s)"], rows, "lrl")
    take = _table(
        ["lease (s)", "other replica holds the lease after (s)", "job's next event after (s)", "goal (s)"],
        [[_num(t[k], 1 if k in ("lease_s", "goal_s") else 2) for k in _TAKEOVER_KEYS] for t in r["takeover"]],
    )
    ratio = _num(jt["ratio_redis_over_sqlite"], 2)
    pairs = ", ".join(map(_num, jt.get("pairwise_ratios", [])))
    worst = max((t["next_event_after_s"] or math.inf) for t in r["takeover"])
    text = f"""## Scale-out: Redis vs SQLite, takeover after SIGKILL

`bench/scaleout.py`: {r["document"]} summarized with the embedded model by one `summarizer serve`
on SQLite and one on a local Redis (`appendonly yes`, `appendfsync everysec`), both running,
the runs alternating. Then two replicas on one Redis (`tests/slow_server.py`), a job on the
first, SIGKILL after 3 chunk summaries: seconds until the other replica holds the job's lease
and until it commits the job's next event.

{times}

Redis / SQLite job time (medians) = **{ratio}** (run by run: {pairs}).

{take}
"""
    goals = [
        ["", "Redis / SQLite job time, one replica", "–", ratio, "–"],
        _goal(
            "", "takeover after SIGKILL (next event)", f"≤ {_num(r['goal_s'], 1)} s", _num(worst), r["passed"]
        ),
    ]
    return text, goals


_SECTIONS: dict[str, Callable[[dict[str, Any]], tuple[str, list[Goal]]]] = {
    "user_path": _user_path,
    "packing": _packing,
    "worker_start": _worker_start,
    "overhead": _overhead,
    "peers": _peers,
    "pipelining": _pipelining,
    "upload": _upload,
    "ingestion": _ingestion,
    "memory": _memory,
    "embedded": _embedded,
    "many_users": _many_users,
    "quality": _quality,
    "ocr": _ocr,
    "scaleout": _scaleout,
}


def _header(meta: dict[str, Any], goals: list[Goal]) -> str:
    machine = meta["machine"]
    model = meta["latency_model"]
    machine_table = _table(
        ["", ""],
        [
            ["CPU", f"{machine['cpu']}, {machine['cores']} cores ({machine.get('cores_usable')} usable)"],
            ["RAM", f"{_num(machine['ram_gib'], 1)} GiB"],
            ["OS / Python", f"{machine['os']} / {machine['python']}"],
            ["load average (1 / 5 / 15 min) at start", " / ".join(map(str, machine["loadavg"]))],
            ["load average at end", " / ".join(map(str, meta.get("loadavg_end", [])))],
        ],
        "ll",
    )
    versions = _table(["package", "version"], sorted(meta["versions"].items()), "ll")
    goal_table = _table(["#", "what", "goal", "measured", "status"], goals, "lllrl")
    return f"""# Benchmarks

Generated by `{meta["command"]}` on {meta["date"]} (mode: {meta["mode"]}; run time
{_num(meta["seconds"] / 60, 1)} min; commit `{meta.get("commit", "?")}`).{_kept(meta)} Raw figures:
[`bench/results/latest.json`](../bench/results/latest.json). Every ratio compares
figures measured in the same run. Regenerate with `python -m bench` (`--quick`
for a short run, `--only overhead,upload` for some); the peer packages come with
the `bench` extra: `pip install -e .[bench]`.

The latency-simulating model (`bench/latency_model.py`) stands in for a remote
API so that the orchestration's own cost is visible: every call waits
{_ms(model["first_token_s"])} ms for its first token, then streams {model["tokens"]} tokens
{_ms(model["token_delay_s"])} ms apart (one call = {_num(model["call_s"], 2)} s), on an absolute
schedule (a late event loop does not stretch a call), answering with words of
the prompt's document (deterministic).

## Machine

{machine_table}

The machine is shared: other jobs ran at the same time (see the load average
above and per section in the JSON), so absolute times are noisy; read the
ratios of figures measured side by side, and the CPU times.

## Versions

{versions}

## Goals

{goal_table}
"""


def _kept(meta: dict[str, Any]) -> str:
    """The sections a ``--merge`` run kept from earlier runs, with when and at which commit they ran."""
    kept: dict[tuple[str, str], list[str]] = {}
    for name, origin in (meta.get("kept") or {}).items():
        kept.setdefault((str(origin.get("date")), str(origin.get("commit"))), []).append(name)
    if not kept:
        return ""
    runs = "; ".join(
        f"{', '.join(f'`{n}`' for n in sorted(names))} on {date} (commit `{commit}`)"
        for (date, commit), names in sorted(kept.items())
    )
    return f" Sections kept from earlier runs (`--merge`): {runs}."


def render(results: dict[str, Any]) -> str:
    """The whole markdown page for ``results`` (the JSON written by ``python -m bench``)."""
    sections: list[str] = []
    goals: list[Goal] = []
    for name, section in _SECTIONS.items():
        result = results["benchmarks"].get(name)
        if result is None:
            continue
        if "error" in result:
            sections.append(f"## {name}\n\nFailed: `{result['error']}`\n")
            goals.append(["", name, "", "error", "**error**"])
            continue
        text, goal = section(result)
        load = " / ".join(map(str, result.get("loadavg", [])))
        origin = f" **Figures of an earlier run: {result['from_run']}.**" if result.get("from_run") else ""
        sections.append(
            text + f"\n_Ran in {_num(result.get('run_s'), 0)} s; load average after: {load}._{origin}\n"
        )
        goals += goal
    return _header(results["meta"], goals) + "\n" + "\n".join(sections)
