"""Lazy package exports (PEP 562), so that importing one submodule stays cheap.

The PDF worker process imports only ``summarizer.ingest.pdf``; with eager
package ``__init__`` files it would load LangChain, Starlette and numpy too.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, homes: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` that import each name on first use.

    Args:
        package: The package's ``__name__``.
        homes: Exported name → submodule (relative to ``package``) that defines it.
        namespace: The package's ``globals()``; a loaded name is cached there.

    Returns:
        ``(__getattr__, __dir__)`` for the package module.
    """

    def getattr_(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(homes)

    return getattr_, dir_
