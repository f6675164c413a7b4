"""Cost of token usage from a per-model price table (``SUMMARIZER_PRICES``).

The table maps a model name to USD per million input and output tokens::

    {"openai:gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}

A model is looked up by its full name (``provider:model``), then by the part
after the colon (``gpt-4o-mini``). The embedded ``extractive`` model is free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .usage import TokenCount

__all__ = ["FREE_MODELS", "cost_usd", "price_of"]

FREE_MODELS = frozenset({"extractive"})
"""Providers (the part before any colon) that cost nothing."""

Prices = Mapping[str, Mapping[str, float]]


def price_of(model: str, prices: Prices) -> tuple[float, float] | None:
    """``(input, output)`` USD per million tokens of ``model``, or ``None`` if unknown.

    Args:
        model: ``provider:model`` or a bare model name.
        prices: The price table.

    Returns:
        The two prices (a key missing from an entry counts as 0), ``(0, 0)`` for
        the embedded model, or ``None`` if the table has no entry.
    """
    provider, _, bare = model.partition(":")
    if provider.strip().lower() in FREE_MODELS:
        return (0.0, 0.0)
    for key in (model, bare):
        entry = prices.get(key) if key else None
        if entry is not None:
            return (float(entry.get("input_per_mtok", 0.0)), float(entry.get("output_per_mtok", 0.0)))
    return None


def cost_usd(usage: Iterable[tuple[str, TokenCount]], prices: Prices) -> float | None:
    """The price of ``usage`` in US dollars, rounded to 1e-6.

    Args:
        usage: ``(model name, tokens)`` pairs, e.g. a
            :class:`~summarizer.models.usage.UsageLedger`.
        prices: The price table.

    Returns:
        The cost, or ``None`` if a model that used tokens has no price.
    """
    total = 0.0
    for model, count in usage:
        if not count:
            continue
        price = price_of(model, prices)
        if price is None:
            return None
        total += count.input_tokens * price[0] / 1e6 + count.output_tokens * price[1] / 1e6
    return round(total, 6)
