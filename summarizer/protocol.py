"""Wire protocol v1: every message that crosses the WebSocket, as pydantic models.

This module is the one currency of the project: the pipeline yields these events,
the job stamps and logs them, the server serializes them, the Python client parses
them and the CLI renders them. It knows nothing about sockets or LangChain.

Control messages and events are JSON text frames, each an object with a ``type``
tag; file bytes travel as binary frames. ``docs/protocol.md`` documents every
message with a JSON example; ``tests/test_protocol.py`` parses those examples.

Client → server: :class:`Start`, :class:`Text`, :class:`End`, :class:`Cancel`,
:class:`Resume`.
Server → client (all :class:`ServerEvent`, stamped with ``job_id`` and ``seq``):
:class:`Accepted`, :class:`Ack`, :class:`Progress`, :class:`Document`,
:class:`ChunkStarted`, :class:`ChunkToken`, :class:`ChunkSummary`, :class:`ChunkFailed`,
:class:`Collapse`, :class:`CollapseToken`, :class:`CollapseSummary`,
:class:`SummaryToken`, :class:`Summary`, :class:`Resumed`, :class:`ChunkRestart`,
:class:`CollapseRestart`, :class:`SummaryRestart`, :class:`JobWarning`, :class:`Cancelled`,
:class:`Error`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .errors import ErrorCode, ProtocolError

__all__ = [
    "JOB_STATES",
    "PROTOCOL_VERSION",
    "TERMINAL_TYPES",
    "Accepted",
    "Ack",
    "Cancel",
    "Cancelled",
    "ChunkFailed",
    "ChunkRestart",
    "ChunkStarted",
    "ChunkSummary",
    "ChunkToken",
    "ClientMessage",
    "Collapse",
    "CollapseRestart",
    "CollapseSummary",
    "CollapseToken",
    "Document",
    "End",
    "Error",
    "JobStateName",
    "JobWarning",
    "Limits",
    "Progress",
    "Resume",
    "Resumed",
    "ServerEvent",
    "SkippedPages",
    "Stage",
    "Start",
    "StartOptions",
    "Summary",
    "SummaryRestart",
    "SummaryToken",
    "Text",
    "Usage",
    "dump",
    "parse_client",
    "parse_server",
]

PROTOCOL_VERSION = 1
"""The protocol version this module speaks; sent in ``start.protocol``."""

PageRange = tuple[int, int]
"""``[first, last]`` page numbers, 1-based and inclusive."""

Stage = Literal["extract", "ocr", "map", "collapse", "reduce"]
"""Pipeline stages reported by :class:`Progress`."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------
# client → server
# ---------------------------------------------------------------------------


class StartOptions(_Message):
    """Per-job options in ``start.options``; ``None`` means the server default.

    Attributes:
        model: Model name the server advertises (``"extractive"`` or
            ``"provider:model"``).
        password: Password of an encrypted PDF (never logged).
        chunk_size: Target chunk length in characters (100–100,000).
        chunk_overlap: Overlap between neighbouring chunks in characters;
            must be smaller than ``chunk_size``.
        concurrency: Map calls at once for this job (1–64), capped by the server.
        summary_words: Target length of the final summary in words (20–5,000);
            wins over ``length``.
        length: ``short`` (100 words), ``medium`` (250) or ``long`` (600): the
            final summary's length when ``summary_words`` is not given.
        format: ``paragraphs`` (prose) or ``bullets`` (a bulleted list) for the
            final summary.
        language: Language to write the final summary in, e.g. ``"French"``
            (letters, spaces and hyphens, at most 40 characters); default: the
            document's.
        instructions: Extra instructions for the model (at most 1,000
            characters), e.g. ``"Focus on the financial figures."``; they never
            override faithfulness or the treatment of the document as data.
        strict: ``true``: fail the job when one chunk fails after its retries;
            default (``false``): report it with ``chunk.failed``, summarize the
            rest and list the pages in ``summary.missing_pages``.
        include_back_matter: ``true``: summarize the notes and references,
            acknowledgements and index too; default (``false``): skip them and
            list them in ``document.skipped``.
        ocr: ``auto`` (OCR the PDF pages that have no text layer but images),
            ``off`` or ``force`` (OCR every page, for PDFs whose text layer is
            garbage).
        ocr_languages: Tesseract language codes joined by ``+`` (e.g.
            ``"eng+deu"``, at most 8); each needs its language pack on the server.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: str | None = None
    password: str | None = Field(default=None, max_length=1024)
    chunk_size: int | None = Field(default=None, ge=100, le=100_000)
    chunk_overlap: int | None = Field(default=None, ge=0, le=50_000)
    concurrency: int | None = Field(default=None, ge=1, le=64)
    summary_words: int | None = Field(default=None, ge=20, le=5_000)
    length: Literal["short", "medium", "long"] | None = None
    format: Literal["paragraphs", "bullets"] | None = None
    language: str | None = Field(
        default=None, min_length=2, max_length=40, pattern=r"^[^\W\d_]+(?:[ -][^\W\d_]+)*$"
    )
    instructions: str | None = Field(default=None, max_length=1000)
    strict: bool | None = None
    include_back_matter: bool | None = None
    ocr: Literal["auto", "off", "force"] | None = None
    ocr_languages: str | None = Field(
        default=None, min_length=3, max_length=100, pattern=r"^[A-Za-z_]{3,20}(?:\+[A-Za-z_]{3,20}){0,7}$"
    )


class Start(_Message):
    """Opens a job. The client then sends bytes (binary frames) or :class:`Text`.

    Attributes:
        protocol: Protocol version, currently ``1``.
        filename: Original file name; its extension helps detect the media type.
        media_type: ``application/pdf``, ``text/plain`` or ``text/markdown``;
            empty means "guess from the file name and the bytes".
        size: Total bytes the client will send, or ``None`` if unknown
            (text messages); checked against the document limit up front.
        options: Per-job :class:`StartOptions`.
        token: The server's shared token, if it requires one (never logged).
        job_id: A client-chosen id that makes ``start`` idempotent (see the field).
    """

    type: Literal["start"] = "start"
    protocol: int = PROTOCOL_VERSION
    filename: str = Field(default="document", max_length=1024)
    media_type: str = Field(default="", max_length=255)
    size: int | None = Field(default=None, ge=0)
    options: StartOptions = Field(default_factory=StartOptions)
    token: str | None = Field(default=None, max_length=1024)
    job_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    """Optional client-chosen job id (32 lowercase hex digits, 128 random bits): a
    repeated ``start`` with the same ``job_id`` re-attaches to that job (as
    ``resume`` with ``last_seq`` 0) instead of creating a second one."""


class Text(_Message):
    """A piece of document text, for clients that split the document themselves."""

    type: Literal["text"] = "text"
    text: str


class End(_Message):
    """The upload is complete.

    Attributes:
        sha256: Lowercase hex SHA-256 of all bytes sent (binary frames, or the
            UTF-8 encoding of all ``text`` messages concatenated); optional.
    """

    type: Literal["end"] = "end"
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")


class Cancel(_Message):
    """Cancel the current job; the server answers with :class:`Cancelled`."""

    type: Literal["cancel"] = "cancel"


class Resume(_Message):
    """Re-attach to a job after a dropped connection (or to review a finished one).

    The server answers with :class:`Resumed` (how much upload it has committed),
    then sends every event with ``seq > last_seq`` exactly once, then live ones.

    Attributes:
        job_id: The job's id from ``accepted``.
        last_seq: The last ``seq`` the client has (0 for all).
        token: The server's shared token, if it requires one.
        upload: ``True`` (default): this connection continues the upload if it
            is unfinished, and takes it over (the previous uploader's later
            upload messages are refused with ``superseded``); ``False``: it
            only follows the job and leaves the upload to its uploader.
    """

    type: Literal["resume"] = "resume"
    job_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    last_seq: int = Field(default=0, ge=0)
    token: str | None = Field(default=None, max_length=1024)
    upload: bool = True


ClientMessage = Annotated[Start | Text | End | Cancel | Resume, Field(discriminator="type")]

# ---------------------------------------------------------------------------
# server → client
# ---------------------------------------------------------------------------


class _Event(_Message):
    """Common fields: ``job_id`` and ``seq`` are stamped by the job, not the pipeline.

    ``seq`` counts a job's messages from 1 without gaps or repeats; ``0`` (with
    ``job_id`` ``null``) marks an error that belongs to no job, e.g. bad JSON
    before any ``start``.
    """

    job_id: str | None = None
    seq: int = Field(default=0, ge=0)


class Limits(_Message):
    """Server limits announced in :class:`Accepted` (all in bytes or characters)."""

    max_document_bytes: int
    max_frame_bytes: int
    ack_window_bytes: int
    """Keep at most this many bytes sent but not yet acknowledged."""
    max_text_chars: int
    max_concurrency: int


class Usage(_Message):
    """Model tokens consumed, as the provider reported them (``usage_metadata``).

    Calls whose provider reports nothing are estimated at 4 characters per
    token; attempts that failed and were retried are not counted.

    Attributes:
        input_tokens: Prompt tokens.
        output_tokens: Generated tokens.
        total_tokens: Their sum.
    """

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    total_tokens: int = Field(default=0, ge=0)


class Accepted(_Event):
    """The job exists; upload may start.

    Attributes:
        limits: The server's :class:`Limits`.
        model: The model this job uses.
        models: Models the server allows clients to pick.
        options: Effective options after defaults were applied.
    """

    type: Literal["accepted"] = "accepted"
    protocol: int = PROTOCOL_VERSION
    limits: Limits
    model: str
    models: list[str] = Field(default_factory=list)
    chunk_size: int
    chunk_overlap: int
    concurrency: int


class Ack(_Event):
    """Upload acknowledgement (flow control).

    Attributes:
        received: Bytes received so far (binary frames, or UTF-8 bytes of text).
        messages: Upload messages received so far (frames plus ``text`` messages).
    """

    type: Literal["ack"] = "ack"
    received: int
    messages: int


class Progress(_Event):
    """How far a stage is.

    Attributes:
        stage: ``extract`` (pages), ``ocr`` (pages OCR'd of the pages to OCR;
            the total is an estimate while the PDF is being read), ``map`` (chunks), ``collapse`` (groups of
            the current level) or ``reduce`` (1 call). Upload progress is told
            by :class:`Ack` (``received`` of ``start.size``).
        done: Units finished.
        total: Units in all, or ``None`` while unknown (chunks of a document
            still being parsed).
        elapsed_s: Seconds since the job started.
        eta_s: Estimated seconds until the stage ends, or ``None``.
    """

    type: Literal["progress"] = "progress"
    stage: Stage
    done: int
    total: int | None = None
    elapsed_s: float
    eta_s: float | None = None


class SkippedPages(_Message):
    """Pages not summarized because they are not the document's content.

    Attributes:
        first: First page (1-based).
        last: Last page (inclusive).
        reason: ``index``, ``references`` (notes, references, bibliography),
            ``acknowledgements`` (these three are back matter, kept with
            ``options.include_back_matter``), ``table_of_contents``,
            ``licence`` (licence and copyright pages) or ``dedication``.
    """

    first: int
    last: int
    reason: Literal["index", "references", "acknowledgements", "table_of_contents", "licence", "dedication"]


class Document(_Event):
    """The document is fully parsed.

    Attributes:
        pages: Pages (PDF) or form-feed separated pages (text, usually 1).
        characters: Characters of cleaned text that is summarized.
        chunks: Number of chunks the text was split into.
        title: The document's title (PDF metadata, first-page heading or file
            name), or ``None``.
        skipped: Page ranges left out (front and back matter), in page order;
            a page whose body text ends above a "References" heading is listed
            and its body text still summarized.
        ocr_pages: Page ranges ``[first, last]`` whose text was read by OCR
            (empty when none).
        map_calls: Map calls the chunks take (one per chunk); ``None`` from older servers.
        input_tokens: Document tokens the map calls read, estimated at 4 characters per
            token (chunk overlaps included, prompts not counted); ``None`` from older servers.
    """

    type: Literal["document"] = "document"
    pages: int
    characters: int
    chunks: int
    title: str | None = None
    skipped: list[SkippedPages] = Field(default_factory=list)
    ocr_pages: list[PageRange] = Field(default_factory=list)
    map_calls: int | None = None
    input_tokens: int | None = None


class ChunkStarted(_Event):
    """A map call began for chunk ``index`` (0-based) covering ``pages``.

    Attributes:
        characters: Length of the chunk's text (characters).
        ocr: ``True`` when some of the chunk's text was read by OCR.
    """

    type: Literal["chunk.started"] = "chunk.started"
    index: int
    pages: PageRange
    characters: int = 0
    ocr: bool = False


class ChunkToken(_Event):
    """A streamed piece of chunk ``index``'s summary."""

    type: Literal["chunk.token"] = "chunk.token"
    index: int
    pages: PageRange
    text: str


class ChunkSummary(_Event):
    """Chunk ``index``'s complete summary; equals its ``chunk.token`` texts joined.

    Attributes:
        elapsed_s: Seconds the map call took.
        usage: Tokens of the call(s) that wrote it, or ``None`` if unknown.
    """

    type: Literal["chunk.summary"] = "chunk.summary"
    index: int
    pages: PageRange
    text: str
    elapsed_s: float = 0.0
    usage: Usage | None = None


class ChunkFailed(_Event):
    """Chunk ``index`` could not be summarized, even after retries and splitting.

    The job goes on without it (unless ``options.strict``): its pages are listed
    in ``summary.missing_pages``. Discard its ``chunk.token`` text.

    Attributes:
        code: An :class:`~summarizer.errors.ErrorCode` value, e.g. ``rate_limited``.
        message: A sentence for people.
    """

    type: Literal["chunk.failed"] = "chunk.failed"
    index: int
    pages: PageRange
    code: ErrorCode
    message: str


class Collapse(_Event):
    """Chunk summaries exceed the reduce budget: collapse level ``level`` (from 1)
    summarizes them in ``groups`` groups."""

    type: Literal["collapse"] = "collapse"
    level: int
    groups: int
    characters: int = 0
    """Characters of summaries going into this level."""


class CollapseToken(_Event):
    """A streamed piece of a collapse call's output."""

    type: Literal["collapse.token"] = "collapse.token"
    level: int
    group: int
    pages: PageRange
    text: str


class CollapseSummary(_Event):
    """A collapse call's complete output; equals its ``collapse.token`` texts joined.

    Attributes:
        usage: Tokens of the call(s) that wrote it, or ``None`` if unknown.
    """

    type: Literal["collapse.summary"] = "collapse.summary"
    level: int
    group: int
    pages: PageRange
    text: str
    usage: Usage | None = None


class SummaryToken(_Event):
    """A streamed piece of the final summary."""

    type: Literal["summary.token"] = "summary.token"
    text: str


class Summary(_Event):
    """The final summary; equals the ``summary.token`` texts joined. Ends the job.

    Attributes:
        text: The summary.
        elapsed_s: Seconds from ``start`` to this event.
        calls: Model calls made, by step: ``{"map": n, "collapse": n, "reduce": 1}``
            (successful calls; retries are counted in ``retries``).
        model: The model that wrote it (the reduce model).
        missing_pages: Page ranges ``[first, last]`` of chunks that failed
            (``chunk.failed``) and are not covered by the summary; empty if none.
        usage: Tokens of all model calls of the job, or ``None`` if unknown.
        cost_usd: ``usage`` priced with the server's price table
            (``SUMMARIZER_PRICES``), or ``None`` if a model used has no price.
        retries: Model calls that were retried (429, 5xx, timeouts, ...).
    """

    type: Literal["summary"] = "summary"
    text: str
    elapsed_s: float
    calls: dict[str, int] = Field(default_factory=dict)
    model: str = ""
    missing_pages: list[PageRange] = Field(default_factory=list)
    usage: Usage | None = None
    cost_usd: float | None = None
    retries: int = 0


JobStateName = Literal["uploading", "processing", "done", "failed", "cancelled"]
"""A job's state as told by :class:`Resumed`."""

JOB_STATES: tuple[JobStateName, ...] = ("uploading", "processing", "done", "failed", "cancelled")
"""Every value of ``resumed.state``; ``uploading`` is the only one in which upload data is accepted."""


class Resumed(_Event):
    """Answer to :class:`Resume`; not part of the job's log, so its ``seq`` is 0.

    Attributes:
        state: One of :data:`JOB_STATES`: ``uploading`` (the upload is not
            finished: continue it), ``processing``, ``done``, ``failed`` or ``cancelled``.
        last_seq: The job's latest ``seq`` at this moment.
        received: Upload bytes the server has committed; continue the upload
            from this byte offset (binary) ...
        messages: ... or after this many upload messages (``text``).
    """

    type: Literal["resumed"] = "resumed"
    state: JobStateName
    last_seq: int
    received: int
    messages: int


class ChunkRestart(_Event):
    """Discard the ``chunk.token`` text received so far for chunk ``index``: its
    map call starts again (a retry, or a recovery after a server restart)."""

    type: Literal["chunk.restart"] = "chunk.restart"
    index: int
    pages: PageRange
    attempt: int = 1
    reason: str = ""


class CollapseRestart(_Event):
    """Discard the ``collapse.token`` text so far of one collapse group; it starts again."""

    type: Literal["collapse.restart"] = "collapse.restart"
    level: int
    group: int
    pages: PageRange
    attempt: int = 1
    reason: str = ""


class SummaryRestart(_Event):
    """Discard the ``summary.token`` text so far; the reduce starts again."""

    type: Literal["summary.restart"] = "summary.restart"
    attempt: int = 1
    reason: str = ""


class JobWarning(_Event):
    """Something the user should know that does not stop the job.

    For example a damaged PDF that pypdf repaired, or pages without a text
    layer. ``message`` is a sentence for people.
    """

    type: Literal["warning"] = "warning"
    message: str


class Cancelled(_Event):
    """The job was cancelled by its client. Ends the job."""

    type: Literal["cancelled"] = "cancelled"
    elapsed_s: float = 0.0


class Error(_Event):
    """Something went wrong. Ends the job (if there is one).

    Attributes:
        code: An :class:`~summarizer.errors.ErrorCode` value.
        message: A sentence for people.
        retryable: Whether the same request may succeed later.
    """

    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    retryable: bool = False


ServerEvent = Annotated[
    Accepted
    | Ack
    | Progress
    | Document
    | ChunkStarted
    | ChunkToken
    | ChunkSummary
    | ChunkFailed
    | Collapse
    | CollapseToken
    | CollapseSummary
    | SummaryToken
    | Summary
    | Resumed
    | ChunkRestart
    | CollapseRestart
    | SummaryRestart
    | JobWarning
    | Cancelled
    | Error,
    Field(discriminator="type"),
]

TERMINAL_TYPES = frozenset({"summary", "cancelled", "error"})
"""Event types after which a job emits nothing more."""

_client_adapter: TypeAdapter[Start | Text | End | Cancel | Resume] = TypeAdapter(ClientMessage)
_server_adapter: TypeAdapter[ServerEvent] = TypeAdapter(ServerEvent)
_CLIENT_TYPES = frozenset({"start", "text", "end", "cancel", "resume"})


def parse_client(raw: str | bytes) -> Start | Text | End | Cancel | Resume:
    """Parse one client text frame.

    Args:
        raw: The frame's JSON text.

    Returns:
        The message model.

    Raises:
        ProtocolError: With ``bad_json`` if ``raw`` is not a JSON object,
            ``unknown_type`` if ``type`` is missing or unknown, and
            ``invalid_message`` if fields are wrong (the message names them).
    """
    import json

    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"Message is not valid JSON: {exc}", code=ErrorCode.BAD_JSON) from None
    if not isinstance(data, dict):
        raise ProtocolError(
            f"Message must be a JSON object, got {type(data).__name__}.", code=ErrorCode.BAD_JSON
        )
    kind = data.get("type")
    if kind not in _CLIENT_TYPES:
        raise ProtocolError(
            f"Unknown message type {kind!r}; expected one of {sorted(_CLIENT_TYPES)}.",
            code=ErrorCode.UNKNOWN_TYPE,
        )
    try:
        return _client_adapter.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or 'message'}: {err['msg']}" for err in exc.errors()
        )
        raise ProtocolError(f"Invalid {kind!r} message: {problems}.") from None


def parse_server(raw: str | bytes | dict[str, Any]) -> ServerEvent:
    """Parse one server event (JSON text or an already decoded dict).

    Returns:
        One of the :data:`ServerEvent` models.

    Raises:
        pydantic.ValidationError: If the event does not match the protocol.
    """
    if isinstance(raw, dict):
        return _server_adapter.validate_python(raw)
    return _server_adapter.validate_json(raw)


def dump(message: BaseModel) -> str:
    """Serialize any protocol message to its compact JSON text frame."""
    return message.model_dump_json()
