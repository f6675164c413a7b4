"""A real summarizer server process for fault tests: `python -m tests.slow_server PORT DATA_DIR CALLS_FILE`.

It serves the embedded extractive model slowed down (``token_delay_s``) under the
name ``slow``, and appends one line per model call to CALLS_FILE ("map",
"collapse" or "reduce"), so that a test can kill it with SIGKILL mid-map, start
it again on the same data directory and count what was sent to the model.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from summarizer.models import ExtractiveChatModel
from summarizer.server import create_app
from summarizer.settings import Settings
from summarizer.ws_protocol import uvicorn_options


class CountingModel(ExtractiveChatModel):
    """The extractive model, recording every call's step in a file."""

    calls_file: str = ""

    def _record(self, messages: list[BaseMessage]) -> None:
        prompt = str(messages[-1].content)
        step = (
            "map"
            if prompt.startswith("Summarize this part")
            else "reduce"
            if "final summary" in prompt
            else "collapse"
        )
        with open(self.calls_file, "a", encoding="utf-8") as f:
            f.write(step + "\n")

    async def _astream(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        self._record(messages)
        async for chunk in super()._astream(messages, *args, **kwargs):
            yield chunk


def main() -> None:
    port, data_dir, calls_file = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    settings = Settings(model="slow", data_dir=data_dir, concurrency=2)
    model = CountingModel(token_delay_s=0.004, calls_file=calls_file)
    app = create_app(settings, models={"slow": model})
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options(settings))


if __name__ == "__main__":
    main()
