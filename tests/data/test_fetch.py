"""The download path of ``adbench data fetch`` against a small HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from adbench.data import fetch
from adbench.data.fetch import RemoteFile, download, fetch_all, sha256sum
from adbench.errors import DataError

PAYLOAD = np.random.default_rng(7).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
CHUNK = 16 * 1024


@dataclass
class Behaviour:
    """What the test server does; the tests change it between requests."""

    payload: bytes = PAYLOAD
    ignore_range: bool = False  # answer 200 with the whole file even to a Range request
    cut_after: int | None = None  # close the connection after this many body bytes
    status: int | None = None  # answer every request with this error status
    stall: float = 0.0  # sleep after the headers (to trigger the client timeout)
    requests: list[dict] = field(default_factory=list)  # path, Range header, body bytes sent


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        b: Behaviour = self.server.behaviour  # type: ignore[attr-defined]
        record = {"path": self.path, "range": self.headers.get("Range"), "sent": 0}
        b.requests.append(record)
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", "/files/" + self.path.removeprefix("/redirect/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if b.status is not None or not self.path.startswith("/files/"):
            self.send_error(b.status or 404)
            return

        body, start = b.payload, 0
        requested = self.headers.get("Range")
        if requested and not b.ignore_range:
            start = int(requested.removeprefix("bytes=").removesuffix("-"))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        body = body[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if b.stall:
            time.sleep(b.stall)
        if b.cut_after is not None:
            body = body[: b.cut_after]
            self.close_connection = True
        record["sent"] = len(body)  # before writing: the client may finish before this thread goes on
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            self.close_connection = True


@pytest.fixture()
def server() -> Iterator[tuple[str, Behaviour]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.behaviour = Behaviour()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.behaviour  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()


def _remote(
    base: str, sha256: str | None = PAYLOAD_SHA, size: int | None = None, path: str = "files"
) -> RemoteFile:
    return RemoteFile("events.h5", f"{base}/{path}/events.h5?download=1", sha256, size)


def _get(remote: RemoteFile, directory: Path, **kwargs) -> Path:
    return download(remote, directory, progress=False, chunk_size=CHUNK, timeout=5, **kwargs)


def test_full_download_with_checksum(server, tmp_path):
    base, b = server
    path = _get(_remote(base), tmp_path / "new" / "dir")
    assert path == tmp_path / "new" / "dir" / "events.h5"
    assert path.read_bytes() == PAYLOAD
    assert not path.with_name("events.h5.part").exists()
    assert [r["range"] for r in b.requests] == [None]
    assert sha256sum(path) == PAYLOAD_SHA


def test_resume_from_partial_file(server, tmp_path):
    base, b = server
    have = 123_457
    (tmp_path / "events.h5.part").write_bytes(PAYLOAD[:have])
    path = _get(_remote(base), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert [r["range"] for r in b.requests] == [f"bytes={have}-"]
    assert b.requests[0]["sent"] == len(PAYLOAD) - have  # only the rest went over the wire


def test_progress_bar_total_and_initial(server, tmp_path, monkeypatch):
    base, _ = server
    seen: dict = {}
    real_tqdm = fetch.tqdm

    def recording_tqdm(*args, **kwargs):
        seen.update(kwargs)
        return real_tqdm(*args, **kwargs)

    monkeypatch.setattr(fetch, "tqdm", recording_tqdm)
    have = 50_000
    (tmp_path / "events.h5.part").write_bytes(PAYLOAD[:have])
    download(_remote(base), tmp_path, progress=True, chunk_size=CHUNK, timeout=5)
    # total from Content-Range, not from the length of the 206 body; disable=None = off when not a TTY
    assert (seen["total"], seen["initial"], seen["disable"]) == (len(PAYLOAD), have, None)
    download(_remote(base), tmp_path / "quiet", progress=False, chunk_size=CHUNK, timeout=5)
    assert (seen["total"], seen["initial"], seen["disable"]) == (len(PAYLOAD), 0, True)


def test_checksum_mismatch_raises_and_leaves_nothing(server, tmp_path):
    base, _ = server
    wrong = "0" * 64
    with pytest.raises(DataError) as info:
        _get(_remote(base, sha256=wrong), tmp_path)
    message = str(info.value)
    assert "events.h5" in message and wrong in message and PAYLOAD_SHA in message
    assert "\n" not in message
    assert not (tmp_path / "events.h5").exists()
    assert not (tmp_path / "events.h5.part").exists()


def test_interrupted_transfer_is_resumed(server, tmp_path):
    base, b = server
    b.cut_after = 100_000
    with pytest.raises(DataError) as info:
        _get(_remote(base), tmp_path)
    assert "100000 of 300000" in str(info.value)
    part = tmp_path / "events.h5.part"
    assert part.read_bytes() == PAYLOAD[:100_000]
    assert not (tmp_path / "events.h5").exists()

    b.cut_after = None
    path = _get(_remote(base), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert b.requests[-1]["range"] == "bytes=100000-"
    assert b.requests[-1]["sent"] == len(PAYLOAD) - 100_000


def test_keyboard_interrupt_keeps_partial_file(server, tmp_path, monkeypatch):
    base, _ = server
    real_tqdm = fetch.tqdm

    class InterruptingBar(real_tqdm):  # Ctrl-C arrives after the third block
        blocks = 0

        def update(self, n=1):
            super().update(n)
            InterruptingBar.blocks += 1
            if InterruptingBar.blocks == 3:
                raise KeyboardInterrupt

    monkeypatch.setattr(fetch, "tqdm", InterruptingBar)
    with pytest.raises(KeyboardInterrupt):
        _get(_remote(base), tmp_path)
    part = tmp_path / "events.h5.part"
    assert part.read_bytes() == PAYLOAD[: 3 * CHUNK]

    monkeypatch.setattr(fetch, "tqdm", real_tqdm)
    assert _get(_remote(base), tmp_path).read_bytes() == PAYLOAD


def test_http_404_names_the_url(server, tmp_path):
    base, b = server
    b.status = 404
    remote = _remote(base)
    with pytest.raises(DataError) as info:
        _get(remote, tmp_path)
    assert remote.url in str(info.value) and "404" in str(info.value)
    assert not (tmp_path / "events.h5").exists()


def test_connection_refused_is_a_data_error(tmp_path):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    remote = RemoteFile("events.h5", f"http://127.0.0.1:{port}/files/events.h5")
    with pytest.raises(DataError, match=f"127.0.0.1:{port}"):
        _get(remote, tmp_path)


def test_timeout_keeps_partial_file(server, tmp_path):
    base, b = server
    (tmp_path / "events.h5.part").write_bytes(PAYLOAD[:1000])
    b.stall = 1.5
    with pytest.raises(DataError, match="timed out"):
        download(_remote(base), tmp_path, progress=False, chunk_size=CHUNK, timeout=0.3)
    assert (tmp_path / "events.h5.part").read_bytes() == PAYLOAD[:1000]


def test_existing_good_file_is_not_downloaded_again(server, tmp_path):
    base, b = server
    (tmp_path / "events.h5").write_bytes(PAYLOAD)
    assert _get(_remote(base), tmp_path) == tmp_path / "events.h5"
    assert _get(_remote(base, sha256=None), tmp_path) == tmp_path / "events.h5"
    assert b.requests == []


def test_existing_corrupt_file_is_replaced(server, tmp_path):
    base, b = server
    (tmp_path / "events.h5").write_bytes(b"not the file")
    assert _get(_remote(base), tmp_path).read_bytes() == PAYLOAD
    assert len(b.requests) == 1


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    base, b = server
    b.ignore_range = True
    (tmp_path / "events.h5.part").write_bytes(b"\xff" * 5000)  # wrong bytes: appending would corrupt
    path = _get(_remote(base), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert b.requests[0]["range"] == "bytes=5000-"
    assert b.requests[0]["sent"] == len(PAYLOAD)


def test_complete_partial_file_answered_416(server, tmp_path):
    base, b = server
    (tmp_path / "events.h5.part").write_bytes(PAYLOAD)
    path = _get(_remote(base), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert b.requests[0]["range"] == f"bytes={len(PAYLOAD)}-" and b.requests[0]["sent"] == 0


def test_overlong_partial_file_restarts(server, tmp_path):
    base, b = server
    (tmp_path / "events.h5.part").write_bytes(PAYLOAD + b"junk")
    assert _get(_remote(base), tmp_path).read_bytes() == PAYLOAD  # 416 says */300000: start again
    assert [r["range"] for r in b.requests] == [f"bytes={len(PAYLOAD) + 4}-", None]


def test_known_size_skips_request_for_complete_part(server, tmp_path):
    base, b = server
    (tmp_path / "events.h5.part").write_bytes(PAYLOAD)
    assert _get(_remote(base, size=len(PAYLOAD)), tmp_path).read_bytes() == PAYLOAD
    assert b.requests == []


def test_resume_through_redirect(server, tmp_path):
    base, b = server
    (tmp_path / "events.h5.part").write_bytes(PAYLOAD[:7000])
    path = _get(_remote(base, path="redirect"), tmp_path)  # like zenodo.org/records/... -> storage
    assert path.read_bytes() == PAYLOAD
    assert [r["range"] for r in b.requests] == ["bytes=7000-", "bytes=7000-"]


def test_unknown_checksum_is_reported(server, tmp_path, caplog):
    base, _ = server
    with caplog.at_level(logging.WARNING, logger="adbench.data.fetch"):
        path = _get(_remote(base, sha256=None), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert PAYLOAD_SHA in caplog.text


def test_fetch_all_creates_directory(server, tmp_path):
    base, b = server
    other = RemoteFile("extra.h5", f"{base}/files/extra.h5", PAYLOAD_SHA)
    paths = fetch_all([_remote(base), other], tmp_path / "lhco", progress=False)
    assert [p.name for p in paths] == ["events.h5", "extra.h5"]
    assert all(p.read_bytes() == PAYLOAD for p in paths)


def test_sha256sum_streams_in_blocks(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(PAYLOAD)
    assert sha256sum(path, block_size=4097) == PAYLOAD_SHA == sha256sum(path)
