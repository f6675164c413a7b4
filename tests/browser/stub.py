"""A scripted stand-in for the server's WebSocket, for page states the real server cannot yet produce.

:class:`ScriptedSocket` answers the page's ``/ws`` through Playwright's
``page.route_web_socket`` (nothing reaches a server): it accepts the upload and
acknowledges it as the protocol says, and the test then :meth:`~ScriptedSocket.emit`
the events it wants the page to show, with increasing ``seq`` like a real job log.
Used for the OCR stage (issue 14) until the server emits it; the events follow
``docs/protocol.md`` and the fields the OCR work adds (progress ``stage: "ocr"``,
``document.ocr_pages``, ``chunk.started.ocr``).
"""

from __future__ import annotations

import json
import re
from typing import Any

JOB_ID = "5c0a1f2e3d4b5a69788796a5b4c3d2e1"

LIMITS = {
    "max_document_bytes": 209_715_200,
    "max_frame_bytes": 4_194_304,
    "ack_window_bytes": 8_388_608,
    "max_text_chars": 20_000_000,
    "max_concurrency": 16,
}


class ScriptedSocket:
    """The page's WebSocket, answered by the test.

    Args:
        page: A Playwright page, before it opens its socket.
        on_end: Called (with this object) when the page sends ``end``: the upload is complete.
    """

    def __init__(self, page: Any, on_end: Any = None) -> None:
        self.ws: Any = None
        self.seq = 0
        self.size = 0
        self.received = 0
        self.messages = 0
        self.client: list[dict[str, Any]] = []
        self.on_end = on_end
        page.route_web_socket(re.compile(r".*/ws$"), self._route)

    def _route(self, ws: Any) -> None:
        self.ws = ws
        ws.on_message(self._on_message)

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self.received += len(message)
            self.messages += 1
            self.emit("ack", received=self.received, messages=self.messages)
            return
        data = json.loads(message)
        self.client.append(data)
        if data["type"] == "start":
            self.size = int(data.get("size") or 0)
            self.emit(
                "accepted",
                protocol=1,
                limits=LIMITS,
                model="extractive",
                models=["extractive"],
                chunk_size=4000,
                chunk_overlap=200,
                concurrency=4,
            )
        elif data["type"] == "end" and self.on_end is not None:
            self.on_end(self)

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Send one server event (``job_id`` and the next ``seq`` added); returns it."""
        self.seq += 1
        event = {"type": kind, "job_id": JOB_ID, "seq": self.seq, **fields}
        self.ws.send(json.dumps(event))
        return event


def ocr_words(page: int) -> str:
    return f"Page {page} of the scanned report describes the harbour survey and its findings."


def emit_ocr_stage(sock: ScriptedSocket, *, pages: int = 12, ocr_done: int = 5, text_pages: int = 2) -> None:
    """A scanned PDF's job up to the middle of its OCR stage.

    Pages ``1..text_pages`` have a text layer; the rest are scans, of which ``ocr_done``
    are recognized. The first chunks (from the text pages, and one from OCR'd pages) are
    summarized or streaming, as on a real server where the map starts after the first page.
    """
    scans = pages - text_pages
    sock.emit("progress", stage="extract", done=text_pages + ocr_done, total=pages, elapsed_s=1.2, eta_s=None)
    for done in range(1, ocr_done + 1):
        eta = (scans - done) * 1.9
        sock.emit("progress", stage="ocr", done=done, total=scans, elapsed_s=1.2 + 1.9 * done, eta_s=eta)
    sock.emit("chunk.started", index=0, pages=[1, 2], characters=3900, ocr=False)
    text = "The survey report opens with the harbour's history and the reasons for a new survey."
    for word in text.split(" "):
        sock.emit("chunk.token", index=0, pages=[1, 2], text=word + " ")
    sock.emit("chunk.summary", index=0, pages=[1, 2], text=text + " ", elapsed_s=0.4)
    sock.emit("progress", stage="map", done=1, total=None, elapsed_s=9.0, eta_s=None)
    sock.emit("chunk.started", index=1, pages=[3, 4], characters=3800, ocr=True)
    partial = ocr_words(3).split(" ")[:7]
    for word in partial:
        sock.emit("chunk.token", index=1, pages=[3, 4], text=word + " ")
    sock.emit(
        "progress", stage="ocr", done=ocr_done, total=scans, elapsed_s=10.7, eta_s=(scans - ocr_done) * 1.9
    )


def emit_ocr_rest(sock: ScriptedSocket, *, pages: int = 12, text_pages: int = 2) -> None:
    """The rest of :func:`emit_ocr_stage`'s job: OCR done, ``document``, every chunk, the summary."""
    scans = pages - text_pages
    sock.emit("progress", stage="ocr", done=scans, total=scans, elapsed_s=20.0, eta_s=0.0)
    sock.emit("progress", stage="extract", done=pages, total=pages, elapsed_s=20.0, eta_s=0.0)
    chunks = pages // 2
    sock.emit(
        "document", pages=pages, characters=chunks * 3800, chunks=chunks, ocr_pages=[[text_pages + 1, pages]]
    )
    sock.emit("chunk.summary", index=1, pages=[3, 4], text=ocr_words(3), elapsed_s=0.4)
    for index in range(2, chunks):
        first = 2 * index + 1
        sock.emit("chunk.started", index=index, pages=[first, first + 1], characters=3800, ocr=True)
        sock.emit(
            "chunk.summary", index=index, pages=[first, first + 1], text=ocr_words(first), elapsed_s=0.3
        )
        sock.emit("progress", stage="map", done=index + 1, total=chunks, elapsed_s=20.0 + index, eta_s=None)
    summary = "The scanned report surveys the harbour, page by page, and lists its findings."
    sock.emit("progress", stage="reduce", done=0, total=1, elapsed_s=27.0, eta_s=1.0)
    sock.emit("summary.token", text=summary)
    sock.emit(
        "summary",
        text=summary,
        elapsed_s=28.0,
        calls={"map": chunks, "collapse": 0, "reduce": 1},
        model="extractive",
        missing_pages=[],
        usage=None,
        cost_usd=0.0,
        retries=0,
    )
