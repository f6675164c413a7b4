"""Chat models: the embedded extractive summarizer and ``provider:model`` loading.

* :class:`ExtractiveChatModel`: the default model, a LexRank-based extractive
  summarizer with LangChain's chat model interface (no network, no model files).
* :func:`load_model`: turn ``"extractive"`` or ``"provider:model"`` into a chat model.
"""

from __future__ import annotations

from .extractive import ExtractiveChatModel
from .loader import load_model

__all__ = ["ExtractiveChatModel", "load_model"]
