"""The settings object: env vars, validation, and the README kept in step."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from summarizer.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`SUMMARIZER_{name.upper()}`" not in text]
    assert not missing


def test_env_vars_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUMMARIZER_CONCURRENCY", "7")
    monkeypatch.setenv("SUMMARIZER_MODELS", '["openai:gpt-4o-mini"]')
    monkeypatch.setenv("SUMMARIZER_TOKEN", "secret")
    settings = Settings()
    assert settings.concurrency == 7
    assert settings.allowed_models()[-1] == "openai:gpt-4o-mini"
    assert settings.token is not None and "secret" not in repr(settings)


def test_inconsistent_values_are_refused_with_the_values() -> None:
    with pytest.raises(ValidationError, match=r"chunk_overlap \(500\).*chunk_size \(400\)"):
        Settings(chunk_size=400, chunk_overlap=500)
