"""Resolve a model name (``"extractive"`` or ``"provider:model"``) to a chat model."""

from __future__ import annotations

from typing import Any

from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel

from ..errors import ErrorCode, ModelError
from .extractive import ExtractiveChatModel

__all__ = ["EXTRACTIVE", "load_model"]

EXTRACTIVE = "extractive"
"""Name of the embedded model; ``"extractive:<anything>"`` selects it too."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def load_model(name: str, *, base_url: str | None = None, **kwargs: Any) -> BaseChatModel:
    """Create the chat model a name designates, without calling it.

    ``"extractive"`` (or ``"extractive:<anything>"``, case-insensitive) is the
    embedded :class:`~summarizer.models.extractive.ExtractiveChatModel`; keyword
    arguments it does not know (e.g. ``temperature``) are ignored. Any other
    ``"provider:model"`` goes to LangChain's ``init_chat_model`` with the provider
    given explicitly (e.g. ``"openai:gpt-4o-mini"``, ``"ollama:llama3.1"``).

    Args:
        name: The model name.
        base_url: Endpoint of an OpenAI-compatible server; passed on for the
            ``openai`` provider only, and only if given.
        **kwargs: Passed to the model's constructor (e.g. ``api_key``,
            ``temperature``, ``default_words``).

    Returns:
        The chat model. No network call is made.

    Raises:
        ModelError: With code ``UNKNOWN_MODEL`` if the name is malformed, the
            provider is unknown, its integration package is not installed, or
            the model cannot be constructed (e.g. missing credentials).
    """
    cleaned = name.strip()
    provider, colon, model = cleaned.partition(":")
    provider, model = provider.strip().lower().replace("-", "_"), model.strip()
    if provider == EXTRACTIVE:
        try:
            return ExtractiveChatModel(**kwargs)
        except ValueError as error:
            raise ModelError(
                f"Invalid option for the extractive model: {_first_line(error)}",
                code=ErrorCode.UNKNOWN_MODEL,
            ) from error
    if not colon or not provider or not model:
        raise ModelError(
            f"Unknown model {name!r}: use 'extractive' or 'provider:model' "
            "(for example 'openai:gpt-4o-mini').",
            code=ErrorCode.UNKNOWN_MODEL,
        )
    if provider == "openai" and base_url is not None:
        kwargs["base_url"] = base_url
    try:
        chat_model = init_chat_model(model, model_provider=provider, **kwargs)
    except ImportError as error:
        raise ModelError(
            f"Model {cleaned!r} needs a package that is not installed: {_first_line(error)}",
            code=ErrorCode.UNKNOWN_MODEL,
        ) from error
    except ValueError as error:
        message = _first_line(error)
        if message.startswith("Unsupported provider"):
            message = f"unknown provider {provider!r}"
        raise ModelError(f"Cannot load model {cleaned!r}: {message}", code=ErrorCode.UNKNOWN_MODEL) from error
    except Exception as error:  # e.g. openai.OpenAIError for missing credentials
        raise ModelError(
            f"Cannot create model {cleaned!r}: {_first_line(error)}",
            code=ErrorCode.UNKNOWN_MODEL,
        ) from error
    if not isinstance(chat_model, BaseChatModel):  # pragma: no cover - init_chat_model contract
        raise ModelError(f"Model {cleaned!r} did not resolve to a chat model", code=ErrorCode.UNKNOWN_MODEL)
    return chat_model
