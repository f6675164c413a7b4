"""Benchmark 4: upload throughput over loopback, our server against a bare ``websockets`` server.

The same minimal client drives both servers: ``start`` (a PDF of ``size`` bytes),
then 64 KiB binary frames while no more than the announced ``ack_window_bytes``
are unacknowledged, measuring from the first frame sent to the ``ack`` of the
last byte; then ``cancel`` (the synthetic PDF is never parsed). Messages are
parsed with ``json.loads`` in both cases, and permessage-deflate is off on both
sides. The reference is :mod:`bench.server_proc`'s ``bare`` mode: a
``websockets`` server that only answers every frame with an ``ack``-shaped JSON.
Both servers run in their own process (the client in this one); runs alternate
between them. We also read each server's CPU seconds from ``/proc`` to tell
where the time goes (CPU-bound server or waiting).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.client import connect

from summarizer.client import SummarizerClient
from summarizer.protocol import Cancel, Start, dump
from summarizer.session import FRAME_RUN_BYTES
from summarizer.store.sqlite import SqliteStore

from .common import Context, median, proc_cpu_s, server_process

__all__ = ["FRAME_BYTES", "GOAL", "run"]

FRAME_BYTES = 64 * 1024
GOAL = 0.6
"""Our throughput at least this fraction of the bare server's."""

MiB = 1024 * 1024


async def upload_once(url: str, total: int, frame: int = FRAME_BYTES) -> dict[str, Any]:
    """Upload ``total`` bytes of a synthetic PDF; time until the last byte is acknowledged.

    Returns:
        ``seconds``, ``mib_s``, ``acks`` and the terminal event type after ``cancel``.

    Raises:
        RuntimeError: The server answered with an error or closed early.
    """
    head = b"%PDF-1.7\n%synthetic benchmark upload\n"
    first = head + bytes(frame - len(head))
    body = bytes(frame)
    frames = -(-total // frame)
    async with connect(url, max_size=None, compression=None, open_timeout=30) as ws:
        await ws.send(dump(Start(filename="upload.pdf", media_type="application/pdf", size=total)))
        accepted = json.loads(await ws.recv())
        if accepted.get("type") != "accepted":
            raise RuntimeError(f"expected 'accepted', got {accepted}")
        window = int(accepted["limits"]["ack_window_bytes"])
        sent = acked = acks = 0
        changed = asyncio.Event()

        async def sender() -> None:
            nonlocal sent
            for index in range(frames):
                size = min(frame, total - index * frame)
                payload = first if index == 0 else body
                if size < frame:
                    payload = payload[:size]
                while sent - acked + size > window and sent != acked:
                    changed.clear()
                    await changed.wait()
                await ws.send(payload)
                sent += size

        began = time.perf_counter()
        sending = asyncio.create_task(sender())
        try:
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ack":
                    acks += 1
                    acked = int(message["received"])
                    changed.set()
                    if acked >= total:
                        break
                elif kind in ("error", "cancelled"):
                    raise RuntimeError(f"the server ended the upload: {message}")
            else:
                raise RuntimeError(f"the server closed the connection ({ws.close_code} {ws.close_reason})")
            elapsed = time.perf_counter() - began
        finally:
            if not sending.done():
                sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
        await ws.send(dump(Cancel()))
        terminal = ""
        try:
            async with asyncio.timeout(10):
                async for raw in ws:
                    kind = json.loads(raw).get("type")
                    if kind in ("cancelled", "error", "summary"):
                        terminal = kind
                        break
        except TimeoutError:
            terminal = "timeout"
    return {"seconds": elapsed, "mib_s": total / MiB / elapsed, "acks": acks, "after_cancel": terminal}


def disk_write_cpu_ms_per_mib(total: int, frame: int, repeats: int = 3) -> float:
    """CPU (ms per MiB) of committing an upload with the SQLite store, measured here.

    ``total`` bytes go through :meth:`SqliteStore.append_uploads` as
    ``frame``-byte payloads in runs of at most ``FRAME_RUN_BYTES`` (512 KiB, the
    session's largest run of frames read together), into a fresh temporary store (the temporary
    directory, where the benchmark server keeps its data); the median of
    ``repeats`` runs of this thread's CPU time. This is the part of our server's
    CPU per MiB that the bare server, which writes nothing, does not have.
    """
    payload = bytes(frame)
    frames = -(-total // frame)
    per_run = max(1, FRAME_RUN_BYTES // frame)
    samples = []
    for _ in range(repeats):
        store = SqliteStore(None)
        try:
            began = time.thread_time()
            for start in range(0, frames, per_run):
                store.append_uploads("bench", [payload] * min(per_run, frames - start))
            samples.append(time.thread_time() - began)
        finally:
            store.close()
    return 1000 * median(samples) / (total / MiB)


def _summary(runs: list[dict[str, Any]], total: int) -> dict[str, float]:
    return {
        "median_mib_s": median([r["mib_s"] for r in runs]),
        "best_mib_s": max(r["mib_s"] for r in runs),
        "server_cpu_per_s": median([r["server_cpu_s"] / r["seconds"] for r in runs]),
        "server_cpu_ms_per_mib": median([1000 * r["server_cpu_s"] / (total / MiB) for r in runs]),
    }


def run(ctx: Context) -> dict[str, Any]:
    """Alternate uploads to our server and the bare one; compare median throughputs.

    The goal is judged with 64 KiB frames; the client's default frame size
    (256 KiB, ``SummarizerClient.frame_bytes``) is measured too, for information.
    """
    total = (24 if ctx.quick else 80) * MiB
    # Seven alternating runs: one upload takes a fraction of a second, and on a shared machine
    # a three-run median of either server moved by a third between full benchmark runs.
    repeats = ctx.repeats(7)
    frames = (FRAME_BYTES, SummarizerClient().frame_bytes)
    runs: dict[int, dict[str, list[dict[str, Any]]]] = {f: {"ours": [], "bare": []} for f in frames}
    with server_process("app") as ours, server_process("bare") as bare:
        for attempt in range(repeats):
            for frame in frames:
                for name, server in (("ours", ours), ("bare", bare)):
                    ctx.log(
                        f"upload: {total // MiB} MiB in {frame // 1024} KiB frames to {name} "
                        f"({attempt + 1}/{repeats})"
                    )
                    cpu = proc_cpu_s(server.pid)
                    result = asyncio.run(asyncio.wait_for(upload_once(server.url, total, frame), timeout=300))
                    result["server_cpu_s"] = proc_cpu_s(server.pid) - cpu
                    runs[frame][name].append(result)
    by_frame = {
        frame: {name: _summary(rows, total) for name, rows in per_server.items()}
        for frame, per_server in runs.items()
    }
    for frame, summary in by_frame.items():
        summary["ratio"] = {"value": summary["ours"]["median_mib_s"] / summary["bare"]["median_mib_s"]}
        summary["disk_write_cpu_ms_per_mib"] = disk_write_cpu_ms_per_mib(total, frame)
    ratio = by_frame[FRAME_BYTES]["ratio"]["value"]
    return {
        "bytes": total,
        "frame_bytes": FRAME_BYTES,
        "repeats": repeats,
        "runs": {str(frame): per_server for frame, per_server in runs.items()},
        "summary": by_frame[FRAME_BYTES],
        "by_frame": {str(frame): summary for frame, summary in by_frame.items()},
        "servers": {"ours": ours.result, "bare": bare.result},
        "ratio": ratio,
        "goal": GOAL,
        "passed": ratio >= GOAL,
    }
