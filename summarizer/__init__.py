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

from typing import TYPE_CHECKING

from summarizer._lazy import lazy_exports

if TYPE_CHECKING:
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

# Imported on first use (PEP 562): ``import summarizer.errors`` (as the PDF worker
# process does) must not drag in LangChain, Starlette and numpy.
_HOME = {
    "PROTOCOL_VERSION": "protocol",
    "ErrorCode": "errors",
    "ExtractiveChatModel": "models",
    "PipelineConfig": "pipeline",
    "Settings": "settings",
    "SummarizerClient": "client",
    "SummarizerError": "errors",
    "create_app": "server",
    "iter_chunks": "ingest",
    "load_model": "models",
    "summarize_chunks": "pipeline",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOME, globals())
