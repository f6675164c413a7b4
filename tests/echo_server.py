"""A summarizer server process serving the instrumented echo model, for chaos and resource runs.

``python -m tests.echo_server PORT DATA_DIR`` with ``SUMMARIZER_*`` env vars for
the limits (``SUMMARIZER_IDLE_TIMEOUT_S`` ...). The model (``echo``) answers with
the first words of each prompt's document, word by word, after
``ECHO_DELAY_S`` seconds (default 0.02), so that a job has a map phase to drop
a connection in.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import uvicorn

from summarizer.server import create_app
from summarizer.settings import Settings
from summarizer.ws_protocol import uvicorn_options

from .fakes import EchoModel


class QuietEcho(EchoModel):
    """The echo model without its prompt log (which would grow the server's memory)."""

    def _answer(self, messages: list[Any]) -> str:
        answer = super()._answer(messages)
        self.prompts.clear()
        return answer


def main() -> None:
    port, data_dir = int(sys.argv[1]), Path(sys.argv[2])
    settings = Settings(model="echo", data_dir=data_dir)
    model = QuietEcho(words=8, delay_s=float(os.environ.get("ECHO_DELAY_S", "0.02")))
    app = create_app(settings, models={"echo": model})
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options(settings))


if __name__ == "__main__":
    main()
