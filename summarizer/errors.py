"""Errors, error codes and WebSocket close codes.

Every failure a user can cause is a :class:`SummarizerError` carrying an
:class:`ErrorCode`; the server turns it into an ``error`` event on the wire
(``{"type": "error", "code": ..., "message": ..., "retryable": ...}``) and, for
protocol violations, closes the socket with the matching :class:`CloseCode`.

Exception hierarchy (after httpx's ``_exceptions.py``)::

    SummarizerError
    ├── ProtocolError          the client broke the wire protocol (bad JSON, order, type)
    ├── LimitExceeded          a configured limit was hit (size, frame, characters)
    ├── DocumentError          the document cannot be read
    │   ├── UnsupportedDocument    not a PDF, text or Markdown; or not UTF-8
    │   ├── EncryptedDocument      needs a password
    │   ├── DamagedDocument        a PDF pypdf cannot parse
    │   └── NoTextError            nothing to summarize (empty, image-only, glyph garbage)
    ├── ModelError             the chat model failed or cannot be loaded
    │   └── ModelCallError         a classified provider failure (HTTP status, timeout)
    │       ├── AuthenticationFailed   401/403: bad or missing API key
    │       ├── ModelNotFound          404: no such model at the provider
    │       ├── RateLimited            429, still after the retries
    │       ├── ProviderUnavailable    5xx or connection failure, still after the retries
    │       ├── ContextTooLong         the prompt exceeds the model's context window
    │       └── ModelTimeout           connect/read timeout or a stalled stream
    ├── JobCancelled           the client cancelled the job
    ├── Superseded             another connection took over the job's upload
    ├── StorageError           the server could not store the job's data (disk full)
    │   └── StoreUnavailable       the job store cannot be read now (Redis down): resume later
    └── TransportError         (client side) the connection failed or closed early
"""

from __future__ import annotations

import enum

__all__ = [
    "AuthenticationFailed",
    "CloseCode",
    "ContextTooLong",
    "DamagedDocument",
    "DocumentError",
    "EncryptedDocument",
    "ErrorCode",
    "JobCancelled",
    "LimitExceeded",
    "ModelCallError",
    "ModelError",
    "ModelNotFound",
    "ModelTimeout",
    "NoTextError",
    "ProtocolError",
    "ProviderUnavailable",
    "RateLimited",
    "StorageError",
    "StoreUnavailable",
    "SummarizerError",
    "Superseded",
    "TransportError",
    "UnsupportedDocument",
]


class ErrorCode(enum.StrEnum):
    """Machine-readable reason carried by every ``error`` event.

    Clients switch on these strings; they are public interface and never change
    meaning. Each member's comment says when it is sent.
    """

    # -- protocol: the client sent something the server cannot accept ------------
    BAD_JSON = "bad_json"
    """A text frame was not valid JSON (or not a JSON object)."""
    UNKNOWN_TYPE = "unknown_type"
    """A message's ``type`` is missing or not one the protocol defines."""
    INVALID_MESSAGE = "invalid_message"
    """A known message type with missing, extra-typed or out-of-range fields."""
    UNEXPECTED_MESSAGE = "unexpected_message"
    """A valid message in the wrong state (e.g. bytes before ``start``)."""
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    """``start.protocol`` names a version this server does not speak."""
    INVALID_OPTION = "invalid_option"
    """An option in ``start.options`` is out of range (e.g. overlap >= chunk size)."""

    # -- limits ---------------------------------------------------------------
    DOCUMENT_TOO_LARGE = "document_too_large"
    """More bytes (or characters) than the server's document limit, or than ``start.size``."""
    FRAME_TOO_LARGE = "frame_too_large"
    """A single WebSocket message above the frame limit."""
    SIZE_MISMATCH = "size_mismatch"
    """``end`` arrived before ``start.size`` bytes did, or more bytes came."""
    CHECKSUM_MISMATCH = "checksum_mismatch"
    """``end.sha256`` does not match the bytes received; the bytes are not used."""
    TOO_MANY_MESSAGES = "too_many_messages"
    """More client messages per second than the server allows (closes with 1008)."""
    TOO_MANY_JOBS = "too_many_jobs"
    """This connection has started as many jobs as the server allows (closes with 1008)."""
    SERVER_BUSY = "server_busy"
    """The server runs as many jobs as it allows; retry later (closes with 1013)."""
    IDLE_TIMEOUT = "idle_timeout"
    """No message and no running job for the idle time (closes with 1000)."""

    # -- sessions -------------------------------------------------------------------
    UNAUTHORIZED = "unauthorized"
    """The server requires a token and the first message had none or a wrong one (1008)."""
    UNKNOWN_JOB = "unknown_job"
    """``resume`` names a job that does not exist or has expired."""
    SLOW_READER = "slow_reader"
    """The client did not read its events: one send waited longer than
    ``SUMMARIZER_SEND_TIMEOUT_S`` (closes with 1008; the job goes on, ``resume`` later)."""
    PASSWORD_REQUIRED = "password_required"
    """A job recovered after a server restart needs the PDF password, which the
    server keeps in memory only: start the job again with ``options.password`` (retryable)."""
    SUPERSEDED = "superseded"
    """A newer connection took over this job's upload (it sent ``resume`` or the same
    ``start.job_id``): this connection's upload messages are refused, not stored
    (``job_id`` null; closes with 1008, reason ``superseded``; the job goes on)."""

    # -- the document -----------------------------------------------------------
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    """Neither PDF, plain text nor Markdown (by media type, extension and content)."""
    NOT_A_PDF = "not_a_pdf"
    """Declared as a PDF but the bytes do not start like one."""
    BAD_ENCODING = "bad_encoding"
    """Text that is not valid UTF-8."""
    EMPTY_DOCUMENT = "empty_document"
    """Zero bytes, or only white space."""
    ENCRYPTED_PDF = "encrypted_pdf"
    """The PDF is password protected and no (or a wrong) password was given."""
    DAMAGED_PDF = "damaged_pdf"
    """pypdf cannot parse the file (broken trailer, cycles, truncation)."""
    NO_TEXT = "no_text"
    """The PDF has no text layer (scanned images); it needs OCR first."""
    UNREADABLE_TEXT = "unreadable_text"
    """Text extracts as garbage (glyph names, control characters)."""
    PARSE_TIMEOUT = "parse_timeout"
    """Parsing the document took longer than the configured wall-clock limit."""

    # -- the model and the job ---------------------------------------------------
    UNKNOWN_MODEL = "unknown_model"
    """``options.model`` cannot be resolved to a chat model."""
    MODEL_ERROR = "model_error"
    """A model call failed for a reason none of the codes below names (e.g. a
    malformed response or a content filter)."""
    AUTHENTICATION_FAILED = "authentication_failed"
    """The model provider refused the credentials (HTTP 401 or 403): check the API key."""
    MODEL_NOT_FOUND = "model_not_found"
    """The model provider does not know the model (HTTP 404): check the model name."""
    RATE_LIMITED = "rate_limited"
    """The provider kept answering HTTP 429 after every retry; the message says when
    to try again (retryable)."""
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    """The provider kept failing with HTTP 5xx or the connection failed, after every
    retry (retryable)."""
    CONTEXT_TOO_LONG = "context_too_long"
    """The model rejected a prompt as longer than its context window and splitting
    the text in smaller parts did not help."""
    MODEL_TIMEOUT = "model_timeout"
    """A model call timed out (connect or read) or its stream stalled, after every
    retry (retryable)."""
    STORAGE_ERROR = "storage_error"
    """The server could not store the job's events or upload (say, its disk is full):
    the job fails rather than send what it could not keep (retryable: start it again)."""
    STORE_UNAVAILABLE = "store_unavailable"
    """The server cannot reach its job store (Redis) right now, so it cannot tell a
    ``resume`` about the job: the job may well be running; resume again later
    (retryable; closes with 1013)."""
    CANCELLED = "cancelled"
    """The client cancelled the job."""
    INTERNAL_ERROR = "internal_error"
    """A bug in the server; the message says what to report."""
    CONNECTION_LOST = "connection_lost"
    """(Client side only) the WebSocket closed before the job ended."""


class CloseCode(enum.IntEnum):
    """WebSocket close codes the server uses (RFC 6455 section 7.4.1).

    Only standard codes are used so that every client library understands them.
    """

    NORMAL_CLOSURE = 1000
    """The client or the server is done (e.g. after idle time)."""
    GOING_AWAY = 1001
    """The server is shutting down."""
    PROTOCOL_ERROR = 1002
    """The client broke the protocol: bad JSON, unknown type, wrong order."""
    UNSUPPORTED_DATA = 1003
    """The client asked for a protocol version the server does not speak."""
    POLICY_VIOLATION = 1008
    """A limit other than the frame size was violated."""
    MESSAGE_TOO_BIG = 1009
    """A single frame exceeded the frame limit."""
    INTERNAL_ERROR = 1011
    """The server hit an unexpected condition."""
    TRY_AGAIN_LATER = 1013
    """The server is busy; retry later."""


class SummarizerError(Exception):
    """Base class of every error this package raises on purpose.

    Args:
        message: A sentence a person can act on, e.g. ``"The PDF is encrypted:
            send the password in options.password."``
        code: The wire :class:`ErrorCode`; defaults to the class's ``code``.
        retryable: Whether the same request may succeed later; defaults to the
            class's ``retryable``.
    """

    code: ErrorCode = ErrorCode.INTERNAL_ERROR
    retryable: bool = False
    close_code: CloseCode | None = None
    """Close code to end the connection with, or ``None`` to keep it open."""

    def __init__(self, message: str, *, code: ErrorCode | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable


class ProtocolError(SummarizerError):
    """The client broke the wire protocol; the connection is closed with 1002."""

    code = ErrorCode.INVALID_MESSAGE
    close_code = CloseCode.PROTOCOL_ERROR


class LimitExceeded(SummarizerError):
    """A configured limit was exceeded; the connection is closed with 1008."""

    code = ErrorCode.DOCUMENT_TOO_LARGE
    close_code = CloseCode.POLICY_VIOLATION

    @classmethod
    def server_busy(cls, message: str) -> LimitExceeded:
        """``server_busy``: not now or not here; retryable, and it closes with 1013, not 1008.

        Args:
            message: What is busy and what the client should do.

        Returns:
            The error (raise it).
        """
        err = cls(message, code=ErrorCode.SERVER_BUSY, retryable=True)
        err.close_code = CloseCode.TRY_AGAIN_LATER
        return err


class DocumentError(SummarizerError):
    """The document cannot be summarized; the job ends, the connection stays open."""

    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class UnsupportedDocument(DocumentError):
    """Not a PDF, plain text or Markdown, or text that is not UTF-8."""

    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class EncryptedDocument(DocumentError):
    """An encrypted PDF and no (or a wrong) password."""

    code = ErrorCode.ENCRYPTED_PDF


class DamagedDocument(DocumentError):
    """A PDF that pypdf cannot parse."""

    code = ErrorCode.DAMAGED_PDF


class NoTextError(DocumentError):
    """Nothing to summarize: empty, image-only, or unreadable text."""

    code = ErrorCode.NO_TEXT


class ModelError(SummarizerError):
    """A chat model could not be loaded or a call failed."""

    code = ErrorCode.MODEL_ERROR


class ModelCallError(ModelError):
    """A model call failed; the subclass (and ``code``) says how.

    Raised by the pipeline after :func:`summarizer.models.retry.classify_error`
    has sorted a provider exception; ``retryable`` also tells the pipeline
    whether retrying the call may help.

    Args:
        message: A sentence for people.
        code: The wire :class:`ErrorCode`; defaults to the class's ``code``.
        retryable: Whether retrying may succeed; defaults to the class's.
        retry_after_s: Seconds the provider asked to wait (``Retry-After``), or ``None``.
        status: The HTTP status of the provider's answer, or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        retryable: bool | None = None,
        retry_after_s: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, code=code, retryable=retryable)
        self.retry_after_s = retry_after_s
        self.status = status


class AuthenticationFailed(ModelCallError):
    """HTTP 401/403 from the provider: the API key is missing, wrong or lacks access."""

    code = ErrorCode.AUTHENTICATION_FAILED


class ModelNotFound(ModelCallError):
    """HTTP 404 from the provider: the model name is unknown there."""

    code = ErrorCode.MODEL_NOT_FOUND


class RateLimited(ModelCallError):
    """HTTP 429 from the provider (retried; raised once the retries are spent)."""

    code = ErrorCode.RATE_LIMITED
    retryable = True


class ProviderUnavailable(ModelCallError):
    """HTTP 5xx or a failed connection (retried; raised once the retries are spent)."""

    code = ErrorCode.PROVIDER_UNAVAILABLE
    retryable = True


class ContextTooLong(ModelCallError):
    """The prompt exceeds the model's context window (the pipeline splits and retries)."""

    code = ErrorCode.CONTEXT_TOO_LONG


class ModelTimeout(ModelCallError):
    """A connect or read timeout, or a stream that stalled (retried, then raised)."""

    code = ErrorCode.MODEL_TIMEOUT
    retryable = True


class JobCancelled(SummarizerError):
    """The job was cancelled by its client."""

    code = ErrorCode.CANCELLED


class Superseded(SummarizerError):
    """A newer connection took over the job's upload; this one may not feed it any more.

    The job is not affected. The connection is closed with 1008 (reason ``superseded``).
    """

    code = ErrorCode.SUPERSEDED
    close_code = CloseCode.POLICY_VIOLATION


class StorageError(SummarizerError):
    """The store failed to keep the job's data (disk full, database locked, I/O error)."""

    code = ErrorCode.STORAGE_ERROR
    retryable = True


class StoreUnavailable(StorageError):
    """The job store cannot be read now (Redis down): a ``resume`` is refused, the job is not touched."""

    code = ErrorCode.STORE_UNAVAILABLE
    retryable = True
    close_code = CloseCode.TRY_AGAIN_LATER


class TransportError(SummarizerError):
    """Client side: the server is unreachable or the socket closed before the job ended."""

    code = ErrorCode.CONNECTION_LOST
    retryable = True
