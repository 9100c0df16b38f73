"""Reading shards locally and over HTTP: dropped connections, ranges, missing files."""

import json

import pytest
from conftest import write_shard
from datasets import load_dataset

from mc4_sampling import DataNotFoundError
from mc4_sampling.reader import iter_records


def load(**kw):
    kw.setdefault("sampling_method", "random")
    return load_dataset("mc4-sampling", "es", streaming=True, split=kw.pop("split", "train"), **kw)


def texts(ds):
    return [x["text"] for x in ds]


def test_http_mirror_gives_the_same_documents_as_local_files(mini_mc4, file_server):
    server = file_server(mini_mc4)
    local = texts(load(data_dir=str(mini_mc4.parent)))
    remote = texts(load(base_url=server.url, shards=[0, 1, 2]))
    assert remote == local and 500 < len(local) < 700


@pytest.mark.parametrize("ignore_range", [False, True])
def test_a_transfer_cut_mid_file_is_resumed_without_loss_or_repeat(mini_mc4, file_server, ignore_range):
    server = file_server(mini_mc4)
    server.ignore_range = ignore_range
    name = "c4-es.tfrecord-00001-of-02048.json.gz"
    size = (mini_mc4 / name).stat().st_size
    server.cuts[name] = [size // 3, size // 3]  # two cuts in a row
    remote = texts(load(base_url=server.url, shards=[1], sampling_method="none"))
    local = texts(load(data_dir=str(mini_mc4.parent), shards=[1], sampling_method="none"))
    assert remote == local and len(local) == 400
    ranges = [r for n, r in server.requests if n == name]
    assert len(ranges) == 3 and ranges[0] is None and ranges[1] == f"bytes={size // 3}-"


def test_retries_are_bounded(mini_mc4, file_server):
    server = file_server(mini_mc4)
    name = "c4-es.tfrecord-00000-of-02048.json.gz"
    server.cuts[name] = [100] * 10
    with pytest.raises(ConnectionError, match="after 2 retries"):
        texts(load(base_url=server.url, shards=[0], http_retries=2))


def test_missing_remote_file_names_the_url(mini_mc4, file_server):
    server = file_server(mini_mc4)
    with pytest.raises(DataNotFoundError, match="c4-es.tfrecord-00005-of-02048.json.gz: HTTP 404"):
        texts(load(base_url=server.url, shards=[5]))


def test_positions_count_every_line(tmp_path):
    path = tmp_path / "x.json.gz"
    write_shard(path, 3, lines=["not json", json.dumps({"url": "u"}), json.dumps({"text": "ok"})])
    got = list(iter_records(str(path), on_bad_record="skip"))
    assert [p for p, _ in got] == [0, 1, 2, 3, 4, 5]
    assert [r is None for _, r in got] == [False, False, False, True, True, False]
