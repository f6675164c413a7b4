"""Chat models: the embedded extractive summarizer and ``provider:model`` loading.

* :class:`ExtractiveChatModel`: the default model, a LexRank-based extractive
  summarizer with LangChain's chat model interface (no network, no model files).
* :func:`load_model`: turn ``"extractive"`` or ``"provider:model"`` into a chat model.

Both load on first use (PEP 562): the light submodules (``usage``, ``pricing``,
``retry``) are imported without LangChain's language models, which take about
1 s of CPU (the dry run needs only the light ones).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from summarizer._lazy import lazy_exports

if TYPE_CHECKING:
    from summarizer.models.extractive import ExtractiveChatModel
    from summarizer.models.loader import load_model

__all__ = ["ExtractiveChatModel", "load_model"]

__getattr__, __dir__ = lazy_exports(
    __name__, {"ExtractiveChatModel": "extractive", "load_model": "loader"}, globals()
)
