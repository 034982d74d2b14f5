"""CSV import in the original data set's format.

The file is read twice. The first pass checks it as a whole (it exists, is
UTF-8 text, parses as CSV from end to end and has the expected header) and
notes where each chunk ends, so a wrong file changes nothing. The second pass
validates each chunk with the shared schema and stores it; each chunk commits
on its own, so an interrupted import resumes by running it again (stored ids
are skipped). On large files a worker process validates the next chunk while
this process stores the current one: validation and SQLite's inserts each take
about half the time, so on two cores they overlap instead of adding up.
"""

from __future__ import annotations

import codecs
import csv
import io
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import django
import structlog
from django.db import connection, transaction

from detection import metrics
from detection.schema import (
    CANONICAL_NAMES,
    FIELDS,
    REQUIRED_FIELDS,
    InvalidTransactions,
    TransactionIn,
    validate_transaction,
)
from detection.store import (
    TRANSACTION_COLUMNS,
    transaction_received_at,
    transaction_rows,
    transactions_bulk_session,
    transactions_insert_values,
)

log = structlog.get_logger("detection")

_SCAN_BYTES = 1 << 20
DEFAULT_CHUNK_SIZE = 20_000
# Below this size (some 55,000 rows) a worker process costs more to start
# than it saves.
_PARALLEL_MIN_BYTES = 8 << 20
# Positions in the rows transaction_rows makes.
_TRANSACTION_ID = TRANSACTION_COLUMNS.index("transaction_id")
_TIMESTAMP = TRANSACTION_COLUMNS.index("timestamp")


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
    with path.open("rb") as handle:
        return _check_text(iter(lambda: handle.read(_SCAN_BYTES), b""), path)


def _check_text(chunks: Iterable[bytes], path: Path | str) -> int:
    """Check the bytes are UTF-8 text without NUL bytes from end to end;
    return the number of line feeds. Both ways in (the import and the page
    upload) check files with this."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    offset = 0
    for chunk in chunks:
        if b"\x00" in chunk:
            raise ImportFileError(f"{path}: binary data, not a CSV text file")
        # A character cut by the previous chunk's end is decoded with this one.
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"{path}: not UTF-8 text (invalid byte at offset {offset - pending + exc.start})"
            ) from None
        lines += chunk.count(b"\n")
        offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ImportFileError(f"{path}: not UTF-8 text (truncated character at the end)") from None
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


def _reader(handle: TextIO) -> Any:
    """The CSV reader of every way in. Strict: a quote that never closes is
    an error naming its line, not a field that silently swallows every line
    after it; so is text after a closing quote."""
    return csv.reader(handle, strict=True)


# Python's csv messages for the malformations strict mode refuses, explained.
_CSV_PROBLEMS = {
    "unexpected end of data": "a quoted field is never closed",
    "',' expected after '\"'": (
        "text after a field's closing quote (a quote inside a quoted field is written twice)"
    ),
}


def _csv_problem(exc: csv.Error) -> str:
    message = str(exc)
    explained = _CSV_PROBLEMS.get(message)
    return f"{message} ({explained})" if explained else message


def _header(reader: Iterator[list[str]], path: Path | str) -> list[str]:
    try:
        return next(reader)
    except StopIteration:
        raise ImportFileError(f"{path}: the file is empty") from None
    except csv.Error as exc:
        raise ImportFileError(f"{path}: line 1 (the header): {_csv_problem(exc)}") from None


def _columns(reader: Iterator[list[str]], path: Path | str) -> list[str]:
    """The canonical field name of each column, from the header."""
    return _header_fields(_header(reader, path), path)


def _numbered(reader: Any, path: Path | str, *, offset: int) -> Iterator[tuple[int, list[str]]]:
    """Each record of a ``csv.reader`` with the line it starts on, plus
    ``offset``; a quoted field may span lines, so this is not its last line."""
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(f"{path}: line {offset + start}: {_csv_problem(exc)}") from None
        yield offset + start, row


def _checked(
    records: Iterable[tuple[int, list[str]]], columns: list[str], rejected: list[RejectedRow]
) -> Iterator[tuple[int, TransactionIn | None]]:
    """Each data record through the shared schema: ``(line, item)``, or
    ``(line, None)`` with its problems appended to ``rejected``. Blank lines
    are skipped."""
    width = len(columns)
    for line, row in records:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != width:
            rejected.append(
                RejectedRow(line, "__all__", f"expected {width} fields, found {len(row)}")
            )
            yield line, None
            continue
        try:
            item = validate_transaction(dict(zip(columns, row, strict=True)))
        except InvalidTransactions as exc:
            rejected.extend(RejectedRow(line, e.field, e.message) for e in exc.errors)
            yield line, None
            continue
        yield line, item


def _is_repeat(seen: dict[str, int], tx_id: str, line: int, rejected: list[RejectedRow]) -> bool:
    first_line = seen.setdefault(tx_id, line)
    if first_line == line:
        return False
    rejected.append(
        RejectedRow(line, "transaction_id", f"duplicate of line {first_line} in this file")
    )
    return True


@dataclass(frozen=True)
class _Survey:
    columns: list[str]
    header_lines: int
    # The last line of every full chunk; the final, partial chunk runs to the end.
    chunk_ends: list[int]


def _survey(path: Path, chunk_size: int) -> _Survey:
    """Parse the whole file once, validating nothing, so a broken file is
    refused before any chunk is stored; note where each chunk ends."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = _reader(handle)
        columns = _columns(reader, path)
        header_lines = reader.line_num
        chunk_ends: list[int] = []
        count = 0
        for _, row in _numbered(reader, path, offset=0):
            if row and (len(row) > 1 or row[0].strip()):
                count += 1
                if count % chunk_size == 0:
                    chunk_ends.append(reader.line_num)
    return _Survey(columns, header_lines, chunk_ends)


def _blocks(path: Path, survey: _Survey) -> Iterator[tuple[int, str]]:
    """``(first line, text)`` of each chunk, as the survey delimited them."""
    with path.open(newline="", encoding="utf-8") as handle:
        # Iterating the file yields exactly the lines csv.reader consumed.
        for _ in islice(handle, survey.header_lines):
            pass
        first = survey.header_lines + 1
        for end in survey.chunk_ends:
            yield first, "".join(islice(handle, end - first + 1))
            first = end + 1
        rest = handle.read()
        if rest:
            yield first, rest


@dataclass
class _CheckedBlock:
    read: int
    # The database values of each valid row, in time order, and its line.
    rows: list[tuple[Any, ...]]
    lines: list[int]
    rejected: list[RejectedRow]


def _check_block(
    first_line: int, text: str, columns: list[str], vendor: str, received_at: Any
) -> _CheckedBlock:
    """Validate one chunk into database rows. Runs in a worker process on
    large files, so it touches no database and no shared state."""
    reader = _reader(io.StringIO(text, newline=""))
    rejected: list[RejectedRow] = []
    read = 0
    lines: list[int] = []

    def valid_items() -> Iterator[TransactionIn]:
        # One at a time: each validated item goes as soon as its row is made.
        # Holding a chunk's items until the end kept tens of thousands of
        # objects alive for the garbage collector to walk: 4-5 µs more a row.
        nonlocal read
        for line, item in _checked(_numbered(reader, "", offset=first_line - 1), columns, rejected):
            read += 1
            if item is not None:
                lines.append(line)
                yield item

    rows = transaction_rows(valid_items(), vendor=vendor, received_at=received_at)
    valid = list(zip(rows, lines, strict=True))
    # Inserted in time order, SQLite's time-keyed indexes grow page by page
    # instead of at random: about a third less work per row. The sort is
    # stable, so ordering by (timestamp, id) is the same as in file order.
    valid.sort(key=_time_of)
    return _CheckedBlock(
        read=read,
        rows=[row for row, _ in valid],
        lines=[line for _, line in valid],
        rejected=rejected,
    )


def _time_of(valid: tuple[tuple[Any, ...], int]) -> Any:
    return valid[0][_TIMESTAMP]


def _unrepeated(block: _CheckedBlock, seen: dict[str, int]) -> list[tuple[Any, ...]]:
    """The block's rows whose id no earlier row of the file had; each repeat
    is added to the block's rejections. ``seen`` maps ids to their first line."""
    ids = [row[_TRANSACTION_ID] for row in block.rows]
    if len(set(ids)) == len(ids) and seen.keys().isdisjoint(ids):
        seen.update(zip(ids, block.lines, strict=True))
        return block.rows
    # Rare: walk the block in file order, so the first occurrence is kept.
    repeats: list[RejectedRow] = []
    in_file_order = sorted(zip(block.lines, block.rows, strict=True), key=lambda pair: pair[0])
    kept = [
        row
        for line, row in in_file_order
        if not _is_repeat(seen, row[_TRANSACTION_ID], line, repeats)
    ]
    block.rejected = sorted([*block.rejected, *repeats], key=lambda rejected: rejected.line)
    return sorted(kept, key=lambda row: row[_TIMESTAMP])


def _checked_blocks(
    path: Path,
    survey: _Survey,
    *,
    pool: Executor | None,
    ahead: int,
    vendor: str,
    received_at: Any,
) -> Iterator[_CheckedBlock]:
    """Every chunk validated, in file order; with a pool, the next chunks are
    validated in other processes while the caller stores this one."""
    blocks = _blocks(path, survey)
    args = (survey.columns, vendor, received_at)
    if pool is None:
        for first_line, text in blocks:
            yield _check_block(first_line, text, *args)
        return
    pending: deque[Future[_CheckedBlock]] = deque()
    try:
        for first_line, text in blocks:
            pending.append(pool.submit(_check_block, first_line, text, *args))
            # ``ahead`` chunks (one per worker) queued beyond the one being
            # stored: enough to keep the workers busy, bounded in memory.
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


@contextmanager
def _validation_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    if workers == 0:
        yield None
        return
    # spawn, not fork: forking a process that has threads (a progress bar's,
    # a database driver's) can deadlock the child. A spawned child starts
    # clean and sets Django up before it can import the schema.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=django.setup)
    try:
        # Start a worker now, so its start-up overlaps the survey of the file.
        pool.submit(int)
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _default_workers(path: Path) -> int:
    if path.stat().st_size < _PARALLEL_MIN_BYTES:
        return 0  # starting a process costs more than it saves
    return max(0, min(2, (os.cpu_count() or 1) - 1))


def import_transactions_csv(
    *,
    path: Path,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> ImportSummary:
    """Import a CSV file; see the module docstring for the guarantees.

    ``progress`` is called with the number of rows read after each chunk is
    stored. ``workers`` is the number of validating processes: by default one
    for a large file on a machine with two cores or more, else none.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if workers is not None and workers < 0:
        raise ValueError("workers must be at least 0")
    _scan(path)
    if workers is None:
        workers = _default_workers(path)
    vendor = connection.vendor
    summary = ImportSummary()
    seen: dict[str, int] = {}
    with _validation_pool(workers) as pool:
        survey = _survey(path, chunk_size)
        blocks = _checked_blocks(
            path,
            survey,
            pool=pool,
            ahead=workers,
            vendor=vendor,
            received_at=transaction_received_at(vendor=vendor),
        )
        with transactions_bulk_session():
            for block in blocks:
                rows = _unrepeated(block, seen)
                with transaction.atomic():
                    stored = transactions_insert_values(rows=rows)
                summary.read += block.read
                summary.stored += stored
                summary.already_present += len(rows) - stored
                summary.rejected.extend(block.rejected)
                if progress is not None:
                    progress(block.read)
    metrics.record_import(summary.stored, summary.already_present, summary.rejected_rows)
    log.info(
        "transactions.imported",
        file=path.name,
        read=summary.read,
        stored=summary.stored,
        already_present=summary.already_present,
        rejected=summary.rejected_rows,
    )
    return summary


def read_transactions_csv(
    fileobj: BinaryIO, *, name: str, max_bytes: int, max_rows: int
) -> tuple[list[TransactionIn], list[RejectedRow]]:
    """Validate an uploaded CSV file without storing anything: the valid items
    and every rejected row, with the same checks and messages as the import
    (the same text check, CSV reader, header check and row checks).

    Raises ImportFileError when the file as a whole is unusable, including one
    larger than ``max_bytes`` or with more than ``max_rows`` transactions.
    """
    content = fileobj.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise ImportFileError(f"{name}: the file is larger than {max_bytes:,} bytes")
    _check_text((content,), name)
    reader = _reader(io.StringIO(content.decode("utf-8"), newline=""))
    columns = _columns(reader, name)
    items: list[TransactionIn] = []
    rejected: list[RejectedRow] = []
    seen: dict[str, int] = {}
    records = _checked(_numbered(reader, name, offset=0), columns, rejected)
    for rows, (line, item) in enumerate(records, start=1):
        if rows > max_rows:
            raise ImportFileError(f"{name}: more than {max_rows:,} transactions in one file")
        if item is not None and not _is_repeat(seen, item.transaction_id, line, rejected):
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
