"""Summarize a file by speaking protocol v1 directly with the `websockets` library.

Copy this script to talk to a summarizer server from anywhere; it needs only
`pip install websockets`. Usage:

    python samples/upload.py FILE [ws://127.0.0.1:8000/ws]

It sends `start`, the file as binary frames within the server's acknowledgement
window, then `end` with the SHA-256, and prints chunk summaries and the final
summary as they stream in. See docs/protocol.md for every message.
"""

import asyncio
import hashlib
import json
import sys
from pathlib import Path

import websockets

FRAME = 256 * 1024  # bytes per binary frame


async def summarize(path: Path, url: str) -> int:
    data = path.read_bytes()
    media = {".pdf": "application/pdf", ".md": "text/markdown"}.get(path.suffix.lower(), "text/plain")
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "start",
                    "protocol": 1,
                    "filename": path.name,
                    "media_type": media,
                    "size": len(data),
                    "options": {},
                }
            )
        )
        accepted = json.loads(await ws.recv())
        if accepted["type"] != "accepted":
            print(f"refused: {accepted['code']}: {accepted['message']}", file=sys.stderr)
            return 1
        window = accepted["limits"]["ack_window_bytes"]
        frame = min(FRAME, accepted["limits"]["max_frame_bytes"])
        acked = 0
        acked_changed = asyncio.Event()

        async def upload() -> None:
            sent = 0
            while sent < len(data):
                while sent - acked >= window:  # flow control: wait for acks
                    acked_changed.clear()
                    await acked_changed.wait()
                piece = data[sent : sent + frame]
                await ws.send(piece)
                sent += len(piece)
            await ws.send(json.dumps({"type": "end", "sha256": hashlib.sha256(data).hexdigest()}))

        uploader = asyncio.create_task(upload())
        async for raw in ws:
            event = json.loads(raw)
            kind = event["type"]
            if kind == "ack":
                acked = event["received"]
                acked_changed.set()
            elif kind == "progress":
                total = event["total"] if event["total"] is not None else "?"
                print(f"[{event['stage']}] {event['done']}/{total}", file=sys.stderr)
            elif kind == "chunk.summary":
                first, last = event["pages"]
                print(
                    f"\n--- chunk {event['index']} (pages {first}-{last})\n{event['text']}", file=sys.stderr
                )
            elif kind == "summary.token":
                print(event["text"], end="", flush=True)
            elif kind == "summary":
                print()
                return 0
            elif kind in ("error", "cancelled"):
                print(f"\n{kind}: {event.get('code', '')} {event.get('message', '')}", file=sys.stderr)
                return 1
        await uploader
    return 1


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    target = sys.argv[2] if len(sys.argv) > 2 else "ws://127.0.0.1:8000/ws"
    sys.exit(asyncio.run(summarize(Path(sys.argv[1]), target)))
