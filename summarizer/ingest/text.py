"""Incremental reading of UTF-8 text uploads into page-numbered pieces.

Bytes arrive in arbitrary slices (a multi-byte character may straddle two
WebSocket frames, and so may a ``\\r\\n`` pair). :class:`TextStreamReader`
decodes them strictly, normalizes newlines to ``\\n`` and splits pages on form
feeds (``\\f``), returning each piece as soon as it is decoded so the chunker
can start before the upload ends.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from summarizer.errors import ErrorCode, UnsupportedDocument

__all__ = [
    "NewlineNormalizer",
    "TextPiece",
    "TextStreamReader",
    "Utf8StreamDecoder",
]

_BOM = "\ufeff"


class Utf8StreamDecoder:
    """Strict incremental UTF-8 decoder that reports byte offsets of errors.

    A leading byte-order mark (``EF BB BF``) is dropped. Bytes of an incomplete
    character at the end of a slice are kept until the next slice.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._consumed = 0  # bytes passed to decode() so far
        self._at_start = True

    @property
    def bytes_seen(self) -> int:
        """Bytes passed to :meth:`decode` so far."""
        return self._consumed

    @property
    def pending(self) -> int:
        """Bytes of an incomplete character waiting for the next slice."""
        buffered: bytes = self._decoder.getstate()[0]
        return len(buffered)

    def decode(self, data: bytes, *, final: bool = False) -> str:
        """Decode the next slice.

        Args:
            data: The next bytes of the upload (may be empty).
            final: ``True`` for the last call: an incomplete character left
                over is then an error.

        Returns:
            The text decoded so far from ``data`` and earlier leftovers.

        Raises:
            UnsupportedDocument: ``bad_encoding`` with the offset (bytes from
                the start of the upload) of the first invalid byte.
        """
        buffered_before = self.pending
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            offset = self._consumed - buffered_before + exc.start
            bad = exc.object[exc.start : exc.start + 1]
            if exc.reason == "unexpected end of data":
                detail = f"the text ends inside a multi-byte character at byte offset {offset}"
            else:
                detail = f"invalid byte 0x{bad.hex()} at byte offset {offset} ({exc.reason})"
            raise UnsupportedDocument(
                f"The text is not valid UTF-8: {detail}. Convert the file to UTF-8 and upload it again.",
                code=ErrorCode.BAD_ENCODING,
            ) from None
        self._consumed += len(data)
        if self._at_start and text:
            self._at_start = False
            if text.startswith(_BOM):
                text = text[1:]
        return text


class NewlineNormalizer:
    """Turn ``\\r\\n`` and lone ``\\r`` into ``\\n``, across piece boundaries."""

    def __init__(self) -> None:
        self._after_cr = False

    def feed(self, text: str) -> str:
        """Normalize the next piece.

        Args:
            text: The next decoded piece.

        Returns:
            The piece with ``\\n`` newlines only. A ``\\r`` at the end of a piece
            becomes ``\\n`` at once; a ``\\n`` starting the next piece is then dropped.
        """
        if not text:
            return text
        if self._after_cr and text[0] == "\n":
            text = text[1:]
        self._after_cr = text.endswith("\r")
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text


@dataclass(frozen=True, slots=True)
class TextPiece:
    """A run of text that belongs to one page.

    Attributes:
        page: 1-based page number (pages are separated by form feeds).
        text: The text, newlines normalized, without form feeds.
    """

    page: int
    text: str


class TextStreamReader:
    """Decode, normalize and paginate a text upload piece by piece.

    Feed it :class:`bytes` slices (UTF-8) or already-decoded :class:`str`
    pieces; each call returns the :class:`TextPiece` runs that are complete.

    Attributes:
        characters: Characters returned so far (after newline normalization,
            form feeds not counted).
    """

    def __init__(self) -> None:
        self._decoder = Utf8StreamDecoder()
        self._newlines = NewlineNormalizer()
        self._page = 1
        self.characters = 0

    @property
    def page(self) -> int:
        """The current page number (1 + form feeds seen)."""
        return self._page

    def feed(self, piece: bytes | str) -> list[TextPiece]:
        """Read the next piece of the upload.

        Args:
            piece: UTF-8 bytes, or text (a text message on the wire).

        Returns:
            The page-numbered runs decoded from it, in order; empty runs omitted.

        Raises:
            UnsupportedDocument: ``bad_encoding`` for invalid UTF-8 (or text
                arriving while a multi-byte character is half received);
                ``unsupported_media_type`` for a NUL character (binary data).
        """
        if isinstance(piece, str):
            if self._decoder.pending:
                raise UnsupportedDocument(
                    "The text is not valid UTF-8: a multi-byte character is cut off at byte "
                    f"offset {self._decoder.bytes_seen - self._decoder.pending} by a text message. "
                    "Send the document either as binary frames or as text messages.",
                    code=ErrorCode.BAD_ENCODING,
                )
            text = piece
        else:
            text = self._decoder.decode(piece)
        return self._split(text)

    def finish(self) -> list[TextPiece]:
        """Flush the decoder at the end of the upload.

        Returns:
            Any runs still pending (normally none).

        Raises:
            UnsupportedDocument: ``bad_encoding`` if the upload ends inside a
                multi-byte character.
        """
        return self._split(self._decoder.decode(b"", final=True))

    def _split(self, text: str) -> list[TextPiece]:
        """Normalize ``text`` and cut it at form feeds into page runs."""
        if not text:
            return []
        nul = text.find("\x00")
        if nul >= 0:
            raise UnsupportedDocument(
                f"The upload contains binary data (a NUL character after {self.characters + nul} "
                "characters of text). Send a PDF, plain text or Markdown.",
                code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            )
        text = self._newlines.feed(text)
        pieces: list[TextPiece] = []
        for number, part in enumerate(text.split("\f")):
            if number:
                self._page += 1
            if part:
                pieces.append(TextPiece(self._page, part))
                self.characters += len(part)
        return pieces
