"""summarizer: streaming map-reduce document summarization over a WebSocket.

Public API:

* :func:`summarize_chunks` and :class:`PipelineConfig`: the map-reduce pipeline as
  an async iterator of protocol events, usable without the server.
* :func:`iter_chunks`: ingestion (PDF, text, Markdown) as an async iterator of chunks.
* :class:`ExtractiveChatModel` and :func:`load_model`: the embedded model and
  ``provider:model`` resolution.
* :func:`create_app`: the Starlette app; :class:`SummarizerClient`: the client.
* :mod:`summarizer.protocol`: the wire messages; :mod:`summarizer.errors`: errors.
"""

from __future__ import annotations

from .client import SummarizerClient
from .errors import ErrorCode, SummarizerError
from .ingest import iter_chunks
from .models import ExtractiveChatModel, load_model
from .pipeline import PipelineConfig, summarize_chunks
from .protocol import PROTOCOL_VERSION
from .server import create_app
from .settings import Settings

__all__ = [
    "PROTOCOL_VERSION",
    "ErrorCode",
    "ExtractiveChatModel",
    "PipelineConfig",
    "Settings",
    "SummarizerClient",
    "SummarizerError",
    "create_app",
    "iter_chunks",
    "load_model",
    "summarize_chunks",
]

__version__ = "0.1.0"
