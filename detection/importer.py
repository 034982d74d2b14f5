"""CSV import in the original data set's format.

The file is checked as a whole (exists, UTF-8, the expected header) before
anything is stored, so a wrong file changes nothing. Rows are then validated
with the shared schema and stored in chunks; each chunk commits on its own,
so an interrupted import resumes by running it again (stored ids are skipped).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

from django.db import transaction

from detection.schema import (
    CANONICAL_NAMES,
    FIELDS,
    REQUIRED_FIELDS,
    InvalidTransactions,
    TransactionIn,
    validate_transaction,
)
from detection.store import transactions_insert

_SCAN_BYTES = 1 << 20


class ImportFileError(Exception):
    """The file as a whole cannot be imported; nothing was stored."""


@dataclass(frozen=True)
class RejectedRow:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass
class ImportSummary:
    read: int = 0
    stored: int = 0
    already_present: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return len({row.line for row in self.rejected})


ProgressCallback = Callable[[int], None]


def _scan(path: Path) -> int:
    """Check the file decodes as UTF-8 from end to end; return its line count."""
    if not path.exists():
        raise ImportFileError(f"{path}: no such file")
    if not path.is_file():
        raise ImportFileError(f"{path}: not a regular file")
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_SCAN_BYTES):
            if b"\x00" in chunk:
                raise ImportFileError(f"{path}: binary data, not a CSV text file")
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    f"{path}: not UTF-8 text (invalid byte at offset {offset + exc.start})"
                ) from None
            lines += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ImportFileError(
                f"{path}: not UTF-8 text (truncated character at the end)"
            ) from None
    return lines


def _header_fields(header: list[str], path: Path | str) -> list[str]:
    names = [name.strip().lstrip("\ufeff") for name in header]
    canonical = [CANONICAL_NAMES.get(name) for name in names]
    unknown = [name for name, known in zip(names, canonical, strict=True) if known is None]
    if unknown:
        raise ImportFileError(f"{path}: unexpected column(s): {', '.join(unknown)}")
    missing = [name for name in REQUIRED_FIELDS if name not in canonical]
    if missing:
        raise ImportFileError(f"{path}: missing column(s): {', '.join(missing)}")
    repeated = sorted({name for name in canonical if canonical.count(name) > 1})
    if repeated:
        raise ImportFileError(f"{path}: repeated column(s): {', '.join(repeated)}")
    return [name for name in canonical if name is not None]


def _rows(path: Path) -> Iterator[tuple[int, list[str] | None, list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from _records(handle, path)


def _records(handle: TextIO, path: Path | str) -> Iterator[tuple[int, list[str] | None, list[str]]]:
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{path}: the file is empty") from None
    except csv.Error as exc:
        raise ImportFileError(f"{path}: not a CSV file ({exc})") from None
    yield 1, None, header
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(f"{path}: line {reader.line_num}: {exc}") from None
        yield reader.line_num, row, header


def _validated(
    records: Iterator[tuple[int, list[str] | None, list[str]]],
    path: Path | str,
    rejected: list[RejectedRow],
) -> Iterator[TransactionIn | None]:
    """Each data row through the shared schema: the item, or None with its
    problems appended to ``rejected``. Blank lines are skipped."""
    columns: list[str] = []
    seen: dict[str, int] = {}
    for line, row, header in records:
        if row is None:
            columns = _header_fields(header, path)
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != len(columns):
            rejected.append(
                RejectedRow(line, "__all__", f"expected {len(columns)} fields, found {len(row)}")
            )
            yield None
            continue
        try:
            item = validate_transaction(dict(zip(columns, row, strict=True)))
        except InvalidTransactions as exc:
            rejected.extend(RejectedRow(line, e.field, e.message) for e in exc.errors)
            yield None
            continue
        first_line = seen.setdefault(item.transaction_id, line)
        if first_line != line:
            rejected.append(
                RejectedRow(line, "transaction_id", f"duplicate of line {first_line} in this file")
            )
            yield None
            continue
        yield item


def import_transactions_csv(
    *, path: Path, chunk_size: int = 20_000, progress: ProgressCallback | None = None
) -> ImportSummary:
    """Import a CSV file; see the module docstring for the guarantees."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    _scan(path)
    summary = ImportSummary()
    pending: list[TransactionIn] = []

    def flush() -> None:
        with transaction.atomic():
            inserted = transactions_insert(items=pending)
        summary.stored += len(inserted)
        summary.already_present += len(pending) - len(inserted)
        if progress is not None:
            progress(len(pending))
        pending.clear()

    for item in _validated(_rows(path), path, summary.rejected):
        summary.read += 1
        if item is None:
            continue
        pending.append(item)
        if len(pending) >= chunk_size:
            flush()
    if pending:
        flush()
    return summary


def read_transactions_csv(
    fileobj: BinaryIO, *, name: str, max_bytes: int, max_rows: int
) -> tuple[list[TransactionIn], list[RejectedRow]]:
    """Validate an uploaded CSV file without storing anything: the valid items
    and every rejected row, with the same checks and messages as the import.

    Raises ImportFileError when the file as a whole is unusable, including one
    larger than ``max_bytes`` or with more than ``max_rows`` transactions.
    """
    content = fileobj.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise ImportFileError(f"{name}: the file is larger than {max_bytes:,} bytes")
    if b"\x00" in content:
        raise ImportFileError(f"{name}: binary data, not a CSV text file")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.end == len(content) and exc.reason == "unexpected end of data":
            raise ImportFileError(
                f"{name}: not UTF-8 text (truncated character at the end)"
            ) from None
        raise ImportFileError(
            f"{name}: not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None
    items: list[TransactionIn] = []
    rejected: list[RejectedRow] = []
    records = _records(io.StringIO(text, newline=""), name)
    for rows, item in enumerate(_validated(records, name, rejected), start=1):
        if rows > max_rows:
            raise ImportFileError(f"{name}: more than {max_rows:,} transactions in one file")
        if item is not None:
            items.append(item)
    return items, rejected


__all__ = [
    "FIELDS",
    "ImportFileError",
    "ImportSummary",
    "RejectedRow",
    "import_transactions_csv",
    "read_transactions_csv",
]
