"""Reading the filesystem blob store's current versions: the inline row first, else the version
file (blocking functions, called from worker threads by :mod:`.filesystem_blobs`).
"""

from __future__ import annotations

import os
from typing import BinaryIO, Protocol

from . import filesystem_blob_files as files
from . import filesystem_blob_segments as segments
from .blobs import BlobInfo
from .sqlite import inline_blobs as inline


class Readable(Protocol):
    """What a stream reads a stored version through (a file, a segment's slice)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def current_info(tier: inline.InlineTier | None, key: str, record_path: str) -> BlobInfo | None:
    """The info of the inline row, else of the version file; with neither, of the row once
    more (an inline put may have moved the key from its file to a row meanwhile)."""
    if tier is not None and (row := tier.info(key)) is not None:
        return row
    record = files.read_record(record_path)
    if record is not None:
        return record.info
    return None if tier is None else tier.info(key)


def open_current(
    tier: inline.InlineTier | None, key: str, base: str, directory: str, record_path: str
) -> tuple[BlobInfo, Readable | bytes] | None:
    """The current version's info and its bytes (an inline row's), or its file or segment
    (opened at the bytes' start); None if there is none. Looked for in the order of
    :func:`current_info`."""
    if tier is not None and (row := _fetch(tier, key, base)) is not None:
        return row
    opened = open_file(directory, record_path)
    if opened is not None or tier is None:
        return opened
    return _fetch(tier, key, base)


def _fetch(
    tier: inline.InlineTier, key: str, base: str
) -> tuple[BlobInfo, Readable | bytes] | None:
    """The row's info and bytes, or its bytes in their segment, opened; None if no row."""
    row = tier.fetch(key)
    if row is None:
        return None
    info, content = row
    if isinstance(content, inline.Pointer):
        return info, segments.SegmentSlice(base, content.segment, content.offset, info.size)
    return info, content


def open_file(directory: str, record_path: str) -> tuple[BlobInfo, BinaryIO] | None:
    """The version file's info and its bytes, opened at their start; None if there is none.
    A data file (first layout) unlinked after its record was read means a newer commit: read
    the record again."""
    missing: str | None = None
    while True:
        opened = files.open_record(record_path)
        if opened is None:
            return None
        record, fd = opened
        if record.data is None:
            file = os.fdopen(fd, "rb")
            file.seek(record.offset)
            return record.info, file
        os.close(fd)
        try:
            return record.info, open(f"{directory}/{record.data}", "rb")
        except FileNotFoundError:
            if record.data == missing:
                raise FileNotFoundError(
                    f"blob store damaged: the data file {record.data} named by the record "
                    f"{record_path} is missing"
                ) from None
            missing = record.data
