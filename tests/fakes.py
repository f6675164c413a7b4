"""Test doubles: a deterministic, instrumented chat model."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field


def burn(seconds: float) -> None:
    """Hold the thread (and the event loop) busy for ``seconds`` of CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


_DOC = re.compile(r"<document>\n(.*)\n</document>", re.S)


class EchoModel(BaseChatModel):
    """Answers with the first ``words`` words of the fenced document, word by word.

    Records the peak number of concurrent calls and every prompt it saw.
    ``fail_on`` makes any call whose document contains that string raise.
    """

    words: int = 5
    delay_s: float = 0.0
    start_cpu_s: float = 0.0
    """CPU seconds burnt (busy-waiting) as a call starts, before its first suspension."""
    fail_on: str | None = None
    active: int = 0
    peak: int = 0
    prompts: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "echo"

    def _answer(self, messages: list[BaseMessage]) -> str:
        prompt = str(messages[-1].content)
        self.prompts.append(prompt)
        match = _DOC.search(prompt)
        doc = match.group(1) if match else prompt
        if self.fail_on and self.fail_on in doc:
            raise RuntimeError("scripted failure")
        return " ".join(doc.split()[: self.words])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._answer(messages)))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for word in re.findall(r"\S+\s*", self._answer(messages)):
            yield ChatGenerationChunk(message=AIMessageChunk(content=word))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            answer = self._answer(messages)
            if self.start_cpu_s:
                burn(self.start_cpu_s)
            await asyncio.sleep(self.delay_s)
            for word in re.findall(r"\S+\s*", answer):
                await asyncio.sleep(0)
                yield ChatGenerationChunk(message=AIMessageChunk(content=word))
        finally:
            self.active -= 1
