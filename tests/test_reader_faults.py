"""Network and data-file faults: every one gives the documents of the local file, or a clear error.

The table tests read a shard from the loopback :class:`loopback.FileServer` with a fault injected
and compare, for both ``on_bad_record`` policies, the ``(position, record)`` pairs of
``iter_records`` with those read from the local file: identical, or an error of the expected class
whose message names the URL. Never a silent difference.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import socket
import tracemalloc

import pytest
from conftest import write_shard
from datasets import load_dataset

from mc4_sampling import http_stream
from mc4_sampling.errors import (
    BadRecordError,
    DataNotFoundError,
    Mc4SamplingError,
    RemoteFileChangedError,
    RemoteReadError,
)
from mc4_sampling.http_stream import ResumableHTTPStream
from mc4_sampling.reader import iter_records

FAST = dict(retries=2, timeout=5.0, backoff=0.001)  # a timeout that only a hang reaches
NAME = "c4-es.tfrecord-00000-of-02048.json.gz"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """``good`` (300 records), ``same`` (its lines recompressed: other bytes), ``other`` (other records)."""
    root = tmp_path_factory.mktemp("faults")
    write_shard(root / "good.json.gz", 300, seed=3)
    write_shard(root / "other.json.gz", 300, seed=4)
    lines = gzip.decompress((root / "good.json.gz").read_bytes())
    (root / "same.json.gz").write_bytes(gzip.compress(lines, compresslevel=1))
    data = {k: (root / f"{k}.json.gz").read_bytes() for k in ("good", "same", "other")}
    assert len({len(v) for v in data.values()}) == 3  # a change of file is also a change of size
    return root, data


@pytest.fixture
def serve(files, file_server, tmp_path):
    """``serve(data=None) -> (server, url, local path)``: ``data`` (default: good) as NAME."""

    def start(data=None):
        root, all_data = files
        folder = tmp_path / "served"
        folder.mkdir(exist_ok=True)
        (folder / NAME).write_bytes(all_data["good"] if data is None else data)
        server = file_server(folder)
        return server, f"{server.url}/{NAME}", str(folder / NAME)

    return start


def read(path, policy, **kw):
    """``("ok", pairs)`` or ``("error", exception)``."""
    try:
        return "ok", list(iter_records(path, policy, **kw))
    except Exception as e:  # noqa: BLE001 - compared below
        return "error", e


def fault(**kw):
    """A server set-up for one file: ``setup(server, name, data)`` (``data``: the bytes of ``files``).

    ``cuts`` are fractions of the file's size, ``replace=(n, key)`` serves ``data[key]`` from the
    ``n + 1``-th request on; ``ignore_range`` and ``validator`` are set on the server, the other
    keys in its table of that name (see :class:`loopback.FileServer`).
    """

    def setup(server, name, data):
        size = len(data["good"])
        for key, value in kw.items():
            if key in ("ignore_range", "validator"):
                setattr(server, key, value)
            elif key == "cuts":
                server.cuts[name] = [int(size * f) for f in value]
            elif key == "replace":
                server.replace[name] = (value[0], data[value[1]])
            else:
                getattr(server, key)[name] = list(value) if isinstance(value, list) else value

    return setup


SAME = "same"
T = 1 / 3
#: mode -> (server set-up, expected: SAME or (error class, pattern of the message))
HTTP_MODES = {
    "ok": (fault(), SAME),
    "cut_with_length": (fault(cuts=[T, T]), SAME),
    "no_length_cut": (fault(no_length="close", cuts=[T]), SAME),
    "no_length_cut_twice_chunked": (fault(no_length="chunked", cuts=[T, T]), SAME),
    "no_length_cut_ranges_ignored": (fault(no_length="close", cuts=[T], ignore_range=True), SAME),
    "no_length_cut_no_validator_ranges_ignored": (
        fault(no_length="close", cuts=[T], ignore_range=True, validator=None), SAME),
    "cut_with_length_every_time": (
        fault(cuts=[T / 4] * 20), (RemoteReadError, r"after 2 retries: connection closed at byte \d+ of \d+")),
    "no_length_cut_every_time": (
        fault(no_length="close", cuts=[T / 4] * 20),
        (RemoteReadError, r"after 2 retries: connection closed at byte \d+ of \d+")),
    "no_length_cut_every_time_ranges_ignored": (
        fault(no_length="close", cuts=[T / 4] * 20, ignore_range=True),
        (RemoteReadError, r"after 2 retries: (the connection closed before the end of the gzip data at byte|"
                          r"connection closed at byte \d+ while skipping to byte)")),
    "error_first": (fault(errors=[500, 503]), SAME),
    "error_429_first": (fault(errors=[429]), SAME),
    "error_always": (fault(errors=[500] * 20),
                     (RemoteReadError, r"cannot read from byte 0 after 2 retries: HTTP 500 .*raise http_retries")),
    "error_after_cut": (fault(cuts=[T], errors=[None] + [502] * 20),
                        (RemoteReadError, r"cannot read from byte \d+ after 2 retries: HTTP 502")),
    "forbidden_on_resume": (fault(cuts=[T], errors=[None, 403]), (DataNotFoundError, r"HTTP 403")),
    "wrong_content_range_once": (fault(cuts=[T], bad_ranges=[(7, 0)]), SAME),
    "wrong_content_range": (
        fault(cuts=[T], bad_ranges=[(7, 0)] * 20),
        (RemoteReadError, r"after 2 retries: the server answered Content-Range 'bytes \d+-\d+/\d+' to a request "
                          r"for bytes=\d+-")),
    "wrong_content_range_total": (
        fault(cuts=[T] * 10, bad_ranges=[(0, 5)] * 20),
        (RemoteFileChangedError, r"gives a size of \d+ bytes .* the file changed on the server, or the server is "
                                 r"misconfigured")),
    "file_changed": (fault(cuts=[T], replace=(1, "other")),
                     (RemoteFileChangedError, r"changed on the server while it was read, and its first lines differ")),
    "file_changed_same_records": (fault(cuts=[T], replace=(1, "same")), SAME),
    "file_changed_last_modified": (fault(validator="last-modified", cuts=[T], replace=(1, "other")),
                                   (RemoteFileChangedError, r"its first lines differ")),
    "file_changed_no_validator": (fault(validator=None, cuts=[T], replace=(1, "other")),
                                  (RemoteFileChangedError, r"its first lines differ")),
    "file_changed_no_validator_ranges_ignored": (
        fault(validator=None, ignore_range=True, cuts=[T], replace=(1, "same")), SAME),
    "file_changed_no_length": (fault(no_length="close", cuts=[T], replace=(1, "other")),
                               (RemoteFileChangedError, r"its first lines differ")),
    "hang_first": (fault(hangs=1), SAME),
    "stall_mid_body": (fault(stalls=[T]), SAME),
    "stall_mid_body_no_length": (fault(stalls=[T], no_length="close"), SAME),
    "hang": (fault(hangs=20), (RemoteReadError, r"after 2 retries: no answer from 127\.0\.0\.1:\d+ within 0\.3 s")),
}


@pytest.mark.parametrize("policy", ["raise", "skip"])
@pytest.mark.parametrize("mode", list(HTTP_MODES))
def test_http_fault_gives_the_local_documents_or_a_clear_error(files, serve, mode, policy):
    setup, expected = HTTP_MODES[mode]
    server, url, local = serve()
    setup(server, NAME, files[1])
    outcome, got = read(url, policy, **{**FAST, "timeout": 0.3} if mode.startswith(("hang", "stall")) else FAST)
    if expected == SAME:
        assert outcome == "ok", got
        assert got == list(iter_records(local, policy)) and len(got) == 300
    else:
        cls, pattern = expected
        assert outcome == "error", f"{mode}: read {len(got)} records instead of failing"
        assert isinstance(got, cls), repr(got)
        assert url in str(got) and re.search(pattern, str(got)), str(got)
        if cls is not DataNotFoundError:
            assert isinstance(got, ConnectionError) and isinstance(got, Mc4SamplingError)


def test_resumed_requests_carry_if_range_and_the_first_request_is_retried(serve, files):
    server, url, local = serve()
    server.errors[NAME] = [500]
    server.cuts[NAME] = [100, 200]
    assert list(iter_records(url, **{**FAST, "retries": 3})) == list(iter_records(local))
    sent = [h for n, h in server.request_headers if n == NAME]
    assert [h.get("Range") for h in sent] == [None, None, "bytes=100-", "bytes=300-"]
    etag = '"%s"' % __import__("hashlib").sha1(files[1]["good"]).hexdigest()[:16]
    assert [h.get("If-Range") for h in sent[2:]] == [etag, etag]


def test_remote_errors_are_package_errors_and_connection_errors_and_pickle():
    import pickle

    for cls in (RemoteReadError, RemoteFileChangedError):
        e = pickle.loads(pickle.dumps(cls("http://h/f", "http://h/f: what went wrong")))
        assert type(e) is cls and str(e) == "http://h/f: what went wrong" and e.url == "http://h/f"
        assert isinstance(e, Mc4SamplingError) and isinstance(e, ConnectionError)


@pytest.mark.parametrize("kw, message", [
    (dict(on_bad_record="ignore"), "on_bad_record='ignore' is not valid; choose one of raise, skip"),
    (dict(max_record_bytes=0), "max_record_bytes=0 is out of range"),
])
def test_bad_options_are_config_errors(files, kw, message):
    from mc4_sampling.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        next(iter_records(str(files[0] / "good.json.gz"), **kw))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("policy", ["raise", "skip"])
def test_refused_connection_is_retried_then_named(policy):
    url = f"http://127.0.0.1:{_free_port()}/{NAME}"
    outcome, got = read(url, policy, **FAST)
    assert outcome == "error" and isinstance(got, RemoteReadError) and isinstance(got, ConnectionError)
    assert str(got).startswith(f"{url}: cannot read from byte 0 after 2 retries: cannot reach 127.0.0.1:")
    assert "(connection refused); check the network or base_url, or raise http_retries" in str(got)


@pytest.mark.parametrize("policy", ["raise", "skip"])
def test_unresolvable_host_is_a_clear_error(policy):
    url = f"http://nonexistent.invalid/multilingual/{NAME}"  # .invalid never resolves
    outcome, got = read(url, policy, **FAST)
    assert outcome == "error" and isinstance(got, RemoteReadError), repr(got)
    assert str(got).startswith(f"{url}: ") and "cannot reach nonexistent.invalid (" in str(got)
    assert "check the network or base_url" in str(got).lower()


# -- faults of the data file itself, read locally and over HTTP ----------------------------------

def _long_line_shard(root):
    path = root / "long.json.gz"
    write_shard(path, 20, seed=5, lines=[json.dumps({"text": "x" * 200_000}), json.dumps({"text": "after"})])
    data = path.read_bytes()
    # and a record after it in another gzip member: members are read one after another
    return data + gzip.compress((json.dumps({"text": "member 2"}) + "\n").encode())


def _data_faults(files):
    good = files[1]["good"]
    mid = len(good) // 2
    return {
        "empty": b"",
        "truncated": good[: len(good) * 3 // 5],
        "corrupt": good[:mid] + bytes([good[mid] ^ 0xFF]) + good[mid + 1:],
        "trailing_garbage": good + b"garbage",
        "zero_padding": good + b"\0" * 100,
        "not_gzip": gzip.decompress(good)[:5000],
        "long_line": _long_line_shard(files[0]),
    }


SERVINGS = {
    "with_length": lambda s, data: None,
    "no_length": lambda s, data: s.no_length.update({NAME: "close"}),
    "no_length_cut": lambda s, data: (s.no_length.update({NAME: "close"}), s.cuts.update({NAME: [len(data) * 2 // 5]})),
    "chunked_cut": lambda s, data: (s.no_length.update({NAME: "chunked"}), s.cuts.update({NAME: [len(data) // 4]})),
}


@pytest.mark.parametrize("serving", list(SERVINGS))
@pytest.mark.parametrize("policy", ["raise", "skip"])
@pytest.mark.parametrize("fault", ["empty", "truncated", "corrupt", "trailing_garbage", "zero_padding", "not_gzip",
                                   "long_line"])
def test_data_fault_reads_the_same_over_http_as_locally(files, serve, fault, policy, serving):
    data = _data_faults(files)[fault]
    server, url, local = serve(data)
    SERVINGS[serving](server, data)
    kw = dict(max_record_bytes=65536)
    want_outcome, want = read(local, policy, **kw)
    outcome, got = read(url, policy, **kw, **FAST)
    assert outcome == want_outcome, (got, want)
    if outcome == "ok":
        assert got == want
    else:
        assert type(got) is type(want) and str(got) == str(want).replace(local, url)


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_empty_file_is_a_bad_record(files, serve, caplog):
    _, _, local = serve(b"")
    with pytest.raises(BadRecordError, match=re.escape(f"{local}: empty file, not gzip data")):
        list(iter_records(local))
    assert list(iter_records(local, "skip")) == [(0, None)]
    assert any("empty file, not gzip data" in m for m in _warnings(caplog))


def test_truncated_file_says_where_the_rest_is_lost(files, serve, caplog):
    good = files[1]["good"]
    cut = len(good) * 3 // 5
    _, _, local = serve(good[:cut])
    got = list(iter_records(local, "skip"))
    k = len(got) - 1
    assert 100 < k < 300 and got[-1] == (k, None) and all(r is not None for _, r in got[:-1])
    assert got[:-1] == list(iter_records(str(files[0] / "good.json.gz")))[:k]
    message = f"the rest of the file skipped from compressed byte {cut} (after line {k})"
    assert any("the file ends inside a gzip member" in m and message in m for m in _warnings(caplog)), _warnings(caplog)
    message = f"{local}: corrupt or truncated gzip data: the file ends inside a gzip member (truncated)"
    with pytest.raises(BadRecordError, match=re.escape(f"{message} at compressed byte {cut}, after line {k}")):
        list(iter_records(local))


def test_corrupt_data_is_located_and_what_precedes_it_is_read(files, serve, caplog):
    good = files[1]["good"]
    second = bytearray(gzip.compress(b'{"text": "lost"}\n' * 50, mtime=0))  # a 10-byte header, then deflate
    second[10] = 0x07  # the first deflate block: final, of the invalid type 3
    server, url, local = serve(good + bytes(second))
    got = list(iter_records(local, "skip"))
    assert got[:-1] == list(iter_records(str(files[0] / "good.json.gz"))) and got[-1] == (300, None)
    n = len(good) + 10
    assert (f"corrupt or truncated gzip data: Error -3 while decompressing data: invalid block type; "
            f"the rest of the file skipped from compressed byte {n} (after line 300)") in " ".join(_warnings(caplog))
    with pytest.raises(BadRecordError, match=f"invalid block type.* at compressed byte {n}, after line 300"):
        list(iter_records(local))
    server.cuts[NAME] = [7, 5000, 1]  # however the data comes: the same records and the same error
    assert list(iter_records(url, "skip", **{**FAST, "retries": 3})) == got


def test_long_line_is_a_bad_record_without_being_held(tmp_path, caplog):
    path = tmp_path / "x.json.gz"
    write_shard(path, 3, lines=[json.dumps({"text": "a" * (8 << 20)}), json.dumps({"text": "ok"})])
    with pytest.raises(BadRecordError, match=re.escape(f"{path}:4: line longer than max_record_bytes=65536 bytes")):
        list(iter_records(str(path), max_record_bytes=65536))
    tracemalloc.start()
    try:
        got = list(iter_records(str(path), "skip", max_record_bytes=65536))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r is None for _, r in got] == [False, False, False, True, False] and got[-1][1]["text"] == "ok"
    assert peak < 2 << 20, peak  # the 8 MiB line was never held
    assert any(f"{path}:4: line of {(8 << 20) + 12} bytes is longer than max_record_bytes=65536" in m
               for m in _warnings(caplog))
    assert [r["text"] for _, r in iter_records(str(path))][-1] == "ok"  # the default limit (16 MiB) reads it


def test_uncompressed_remote_file_cut_without_length_is_resumed(tmp_path, file_server):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"".join(json.dumps({"text": f"doc {i}"}).encode() + b"\n" for i in range(500)))
    server = file_server(tmp_path)
    server.no_length["x.jsonl"] = "close"
    server.cuts["x.jsonl"] = [1000, 2000]
    url = f"{server.url}/x.jsonl"
    local = list(iter_records(str(path)))
    assert list(iter_records(url, **FAST)) == local and len(local) == 500
    # the end of the first transfer is checked (the server gives the size), then the cut resumed
    assert [r for _, r in server.requests] == [None, "bytes=1000-", "bytes=3000-"]
    server.requests.clear()
    assert list(iter_records(url, **FAST)) == local  # not cut: the server is asked for bytes past the end
    assert [r for _, r in server.requests] == [None, f"bytes={path.stat().st_size}-"]


def test_stream_reports_the_size_it_learns(serve):
    server, url, _ = serve()
    server.no_length[NAME] = "close"
    server.cuts[NAME] = [500]
    stream = ResumableHTTPStream(url, **FAST, verify_end=False)
    assert stream.length is None
    data = stream.read()
    assert stream.length is None and len(data) == 500 and not stream.end_verified
    stream.resume("test")
    assert stream.length == (server.root / NAME).stat().st_size and stream.reconnections == 1
    rest = stream.read()
    assert data + rest == (server.root / NAME).read_bytes() and stream.end_verified
    stream.close()


# -- through the builder ---------------------------------------------------------------------------

def load(**kw):
    kw.setdefault("sampling_method", "none")
    return load_dataset("mc4-sampling", "es", streaming=True, split="train", **kw)


@pytest.fixture
def fast_http(monkeypatch):
    monkeypatch.setattr(http_stream, "HTTP_BACKOFF", 0.001)
    monkeypatch.setattr(http_stream, "HTTP_TIMEOUT", 10.0)


@pytest.mark.parametrize("mode", ["no_length_cut", "no_length_cut_twice_chunked", "error_first",
                                  "file_changed_same_records"])
def test_load_dataset_over_a_faulty_mirror_gives_the_local_documents(mini_mc4, file_server, fast_http, mode):
    server = file_server(mini_mc4)
    name = "c4-es.tfrecord-00001-of-02048.json.gz"
    data = (mini_mc4 / name).read_bytes()
    HTTP_MODES[mode][0](server, name, {"good": data, "same": gzip.compress(gzip.decompress(data), compresslevel=1)})
    remote = [x["text"] for x in load(base_url=server.url, shards=[1])]
    local = [x["text"] for x in load(data_dir=str(mini_mc4.parent), shards=[1])]
    assert remote == local and len(local) == 400


def test_load_dataset_fails_clearly_when_the_mirror_keeps_failing(mini_mc4, file_server, fast_http):
    server = file_server(mini_mc4)
    name = "c4-es.tfrecord-00000-of-02048.json.gz"
    server.errors[name] = [503] * 20
    message = f"{server.url}/{name}: cannot read from byte 0 after 2 retries: HTTP 503"
    with pytest.raises(Mc4SamplingError, match=re.escape(message)):
        list(load(base_url=server.url, shards=[0], http_retries=2))
