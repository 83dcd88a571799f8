"""Download dataset files (the LHC Olympics files on Zenodo) with resume and sha256 checks.

Standard library only (urllib) plus tqdm for the progress bar. A download goes to
``<filename>.part`` next to the final file; an interrupted or failed transfer keeps the ``.part``
file, and the next call resumes it with an HTTP ``Range`` request. The final name appears only
after the checksum has been verified, through an atomic ``os.replace``.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from adbench import __version__
from adbench.errors import DataError

log = logging.getLogger(__name__)

_HASH_BLOCK = 1 << 20
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)
# What a broken connection looks like from urllib / http.client / the socket layer.
_NETWORK_ERRORS = (
    urllib.error.URLError,
    http.client.HTTPException,
    socket.timeout,
    TimeoutError,
    ConnectionError,
)


@dataclass(frozen=True)
class RemoteFile:
    """A file to download: its local name, its URL and, when known, its sha256 and size in bytes."""

    filename: str
    url: str
    sha256: str | None = None
    size: int | None = None


class _Restart(Exception):
    """Internal: the partial file cannot be resumed; start again from byte zero."""


def sha256sum(path: str | Path, block_size: int = _HASH_BLOCK) -> str:
    """Hex sha256 of a file, read in blocks (constant memory for multi-GB files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(block_size):
            digest.update(block)
    return digest.hexdigest()


def fetch_all(files: list[RemoteFile], directory: str | Path, progress: bool = True) -> list[Path]:
    """Download every file into ``directory`` (created if needed); returns the final paths in order."""
    directory = Path(directory).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create data directory {directory}: {exc.strerror or exc}") from exc
    return [download(remote, directory, progress=progress) for remote in files]


def download(
    remote: RemoteFile,
    directory: str | Path,
    *,
    progress: bool = True,
    chunk_size: int = 1 << 20,
    timeout: float = 60,
) -> Path:
    """Download ``remote`` into ``directory`` and return the path of the verified file.

    An existing final file whose sha256 matches (or any existing file when no sha256 is known) is
    returned without touching the network. Otherwise the bytes go to ``<filename>.part``, resumed
    from its current size when it exists. Network errors and Ctrl-C keep the ``.part`` file so that
    a re-run resumes; a checksum mismatch deletes it and raises :class:`DataError`.
    """
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / remote.filename
    part = directory / f"{remote.filename}.part"
    expected = remote.sha256.strip().lower() if remote.sha256 else None

    if final.is_file():
        if expected is None:
            log.info("%s already present (no sha256 known to check it)", final)
            return final
        actual = sha256sum(final)
        if actual == expected:
            log.info("%s already present, sha256 verified", final)
            return final
        log.warning("%s has sha256 %s, expected %s: downloading it again", final, actual, expected)

    if remote.size is not None and part.is_file() and part.stat().st_size > remote.size:
        part.unlink()  # longer than the file can be: not a prefix of it

    if not (remote.size is not None and part.is_file() and part.stat().st_size == remote.size):
        try:
            _transfer(remote, part, progress=progress, chunk_size=chunk_size, timeout=timeout)
        except _Restart:
            part.unlink(missing_ok=True)
            try:
                _transfer(remote, part, progress=progress, chunk_size=chunk_size, timeout=timeout)
            except _Restart:
                raise DataError(
                    f"cannot download {remote.url}: the server sent an unusable partial response"
                ) from None

    _verify(remote, part, expected)
    os.replace(part, final)
    return final


def _verify(remote: RemoteFile, part: Path, expected: str | None) -> None:
    """Check the finished ``.part`` file; delete it and raise DataError when it is not the file."""
    received = part.stat().st_size
    if remote.size is not None and received != remote.size:
        part.unlink()
        raise DataError(
            f"{remote.filename}: downloaded {received} bytes but the dataset card says {remote.size}; "
            "the partial file was deleted, run the command again"
        )
    actual = sha256sum(part)
    if expected is None:
        log.warning(
            "%s: no sha256 known to verify it; computed sha256 = %s (add it to the dataset card)",
            remote.filename,
            actual,
        )
    elif actual != expected:
        part.unlink()
        raise DataError(
            f"{remote.filename}: sha256 mismatch (expected {expected}, got {actual}); "
            "the download was deleted, run the command again"
        )


def _transfer(remote: RemoteFile, part: Path, *, progress: bool, chunk_size: int, timeout: float) -> None:
    """One HTTP request: append the missing bytes to ``part`` (raises _Restart to start from zero)."""
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": f"adbench/{__version__} (python urllib)", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(remote.url, headers=headers)

    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            _range_not_satisfiable(exc, offset, remote)
            return
        exc.close()
        raise DataError(f"cannot download {remote.url}: HTTP {exc.code} {exc.reason}") from exc
    except (*_NETWORK_ERRORS, OSError) as exc:
        raise DataError(f"cannot download {remote.url}: {_reason(exc)}") from exc
    except ValueError as exc:  # urllib's answer to a malformed URL
        raise DataError(f"cannot download {remote.url!r}: {exc}") from exc

    with response:
        status = response.status
        if status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                log.warning(
                    "%s: server resumed at byte %s instead of %s; restarting", remote.filename, start, offset
                )
                raise _Restart
        elif status == 200:
            if offset:
                log.info("%s: server does not support resuming; downloading from the start", remote.filename)
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        else:
            raise DataError(f"cannot download {remote.url}: unexpected HTTP status {status}")
        if total is None:
            total = remote.size

        mode = "ab" if offset else "wb"
        with open(part, mode) as sink, tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=remote.filename,
            disable=None if progress else True,  # None: tqdm disables itself when not on a TTY
            leave=True,
        ) as bar:
            received = offset
            while chunk := _read(response, chunk_size, remote, part):
                _write(sink, chunk, part)
                received += len(chunk)
                bar.update(len(chunk))

    if total is not None and received < total:
        # http.client returns b"" rather than raising when the server closes early.
        raise DataError(
            f"cannot download {remote.url}: connection closed after {received} of {total} bytes; "
            f"partial file kept at {part}, run the command again to resume"
        )


def _range_not_satisfiable(exc: urllib.error.HTTPError, offset: int, remote: RemoteFile) -> None:
    """HTTP 416 on a resume: the ``.part`` file already holds every byte, unless the server says otherwise."""
    match = _UNSATISFIED_RANGE.match(exc.headers.get("Content-Range", "") if exc.headers else "")
    exc.close()
    if match and int(match.group(1)) != offset:
        log.warning(
            "%s: partial file (%d bytes) does not fit the remote file; restarting", remote.filename, offset
        )
        raise _Restart
    log.info("%s: partial file already complete", remote.filename)


def _parse_content_range(value: str | None) -> tuple[int, int | None]:
    """``bytes START-END/TOTAL`` -> (START, TOTAL or None when the server gives ``*``)."""
    match = _CONTENT_RANGE.match(value or "")
    if match is None:
        raise _Restart  # a 206 we cannot place in the file: do not append blindly
    total = match.group(3)
    return int(match.group(1)), None if total == "*" else int(total)


def _read(response: http.client.HTTPResponse, size: int, remote: RemoteFile, part: Path) -> bytes:
    try:
        return response.read(size)
    except (*_NETWORK_ERRORS, OSError) as exc:
        raise DataError(
            f"cannot download {remote.url}: {_reason(exc)}; partial file kept at {part}, "
            "run the command again to resume"
        ) from exc


def _write(sink: BinaryIO, chunk: bytes, part: Path) -> None:
    try:
        sink.write(chunk)
    except OSError as exc:
        raise DataError(f"cannot write {part}: {exc.strerror or exc}") from exc


def _reason(exc: BaseException) -> str:
    """A one-line reason for a network error (URLError wraps the socket error in ``.reason``)."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return "timed out"
        return str(getattr(reason, "strerror", None) or reason)
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed early ({len(exc.partial)} bytes of the last block)"
    return str(exc) or type(exc).__name__
