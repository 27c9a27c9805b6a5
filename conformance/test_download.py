"""files/download: SDK download, errors, HTTP Range, GET with query params."""

import json

import pytest
from dropbox import files, file_transfer

from cubby_helpers import api_error, content_hash, lookup_error, rand


def dl_headers(auth_headers, path, **extra):
    h = dict(auth_headers)
    h["Dropbox-API-Arg"] = json.dumps({"path": path})
    h.update(extra)
    return h


def api_result(r):
    raw = r.headers.get("Dropbox-API-Result")
    assert raw is not None, (r.status_code, dict(r.headers))
    return json.loads(raw)


def test_download_returns_bytes_and_metadata(dbx, base):
    data = rand(10000)
    up = dbx.files_upload(data, base + "/d.bin")
    md, resp = dbx.files_download(base + "/D.BIN")
    assert isinstance(md, files.FileMetadata)
    assert resp.status_code == 200
    assert resp.content == data
    assert md.id == up.id and md.rev == up.rev and md.size == len(data)
    assert md.content_hash == up.content_hash
    assert md.path_display.endswith("/d.bin")


def test_download_missing_is_not_found(dbx, base):
    err = api_error(dbx.files_download, base + "/nope.txt")
    assert isinstance(err, files.DownloadError)
    assert lookup_error(err).is_not_found(), err


def test_download_folder_is_not_file(dbx, base):
    dbx.files_create_folder_v2(base)
    err = api_error(dbx.files_download, base)
    assert lookup_error(err).is_not_file(), err


@pytest.fixture
def ten_k(dbx, base):
    data = rand(10000)
    md = dbx.files_upload(data, base + "/range.bin")
    return base + "/range.bin", data, md


@pytest.mark.parametrize(
    "spec,sl",
    [
        ("bytes=0-0", slice(0, 1)),
        ("bytes=100-199", slice(100, 200)),
        ("bytes=9990-9999", slice(9990, 10000)),
        ("bytes=9990-20000", slice(9990, 10000)),
        ("bytes=5000-", slice(5000, 10000)),
        ("bytes=-10", slice(9990, 10000)),
    ],
)
def test_range_download(http, base_url, auth_headers, ten_k, spec, sl):
    path, data, md = ten_k
    r = http.post(
        base_url + "/2/files/download", headers=dl_headers(auth_headers, path, Range=spec)
    )
    assert r.status_code == 206, (spec, r.status_code, r.text[:200])
    assert r.content == data[sl], spec
    want_cr = "bytes {}-{}/{}".format(sl.start, sl.stop - 1, len(data))
    assert r.headers.get("Content-Range") == want_cr, r.headers
    res = api_result(r)
    # full-file metadata, not the range's
    assert res["size"] == len(data)
    assert res["rev"] == md.rev
    assert res["content_hash"] == md.content_hash


def test_range_via_sdk_extra_headers(dbx, ten_k):
    path, data, md = ten_k
    got, resp = dbx.files_download(path, extra_headers={"Range": "bytes=10-19"})
    assert resp.status_code == 206
    assert resp.content == data[10:20]
    assert got.size == len(data) and got.rev == md.rev


def test_empty_file_range_is_200_empty(dbx, base, http, base_url, auth_headers):
    path = base + "/empty.bin"
    dbx.files_upload(b"", path)
    r = http.post(
        base_url + "/2/files/download",
        headers=dl_headers(auth_headers, path, Range="bytes=0-0"),
    )
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert r.content == b""
    assert api_result(r)["size"] == 0


@pytest.mark.parametrize("parallel", [0, 4], ids=["sequential", "parallel"])
@pytest.mark.parametrize("size", [0, 1, 5 * 1024 * 1024 + 3], ids=["0B", "1B", "5MiB+3"])
def test_sdk_transfer_downloader(dbx, base, size, parallel):
    """The SDK's own ranged downloader (bytes=0-0 probe, then ranges)."""
    data = rand(size)
    path = base + "/t.bin"
    dbx.files_upload(data, path)
    target = file_transfer.Bytes()
    res = file_transfer.Downloader(dbx).download(
        path, target, file_transfer.DownloadOptions(parallel_downloads=parallel, max_attempts=1)
    )
    assert target.bytes() == data
    assert res.metadata.content_hash == content_hash(data)


def test_get_with_query_params(http, base_url, alice, ten_k):
    path, data, md = ten_k
    r = http.get(
        base_url + "/2/files/download",
        params={
            "arg": json.dumps({"path": path}),
            "authorization": "Bearer " + alice["access_token"],
        },
    )
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert r.content == data
    assert api_result(r)["rev"] == md.rev


def test_get_with_query_params_and_range(http, base_url, alice, ten_k):
    path, data, md = ten_k
    r = http.get(
        base_url + "/2/files/download",
        params={
            "arg": json.dumps({"path": path}),
            "authorization": "Bearer " + alice["access_token"],
        },
        headers={"Range": "bytes=1-3"},
    )
    assert r.status_code == 206, (r.status_code, r.text[:200])
    assert r.content == data[1:4]


def test_download_error_is_409_json(http, base_url, auth_headers, base):
    r = http.post(
        base_url + "/2/files/download", headers=dl_headers(auth_headers, base + "/missing")
    )
    assert r.status_code == 409, (r.status_code, r.text[:200])
    body = r.json()
    assert body["error"] == {".tag": "path", "path": {".tag": "not_found"}}, body
    assert body["error_summary"].startswith("path/not_found/"), body
