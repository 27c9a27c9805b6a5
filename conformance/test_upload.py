"""files/upload: write modes, conflicts, content_hash, naming rules."""

import datetime
import json

import pytest
from dropbox import files
from dropbox.exceptions import ApiError

from cubby_helpers import (
    api_error,
    assert_conflict,
    assert_file_md,
    content_hash,
    download_bytes,
    lookup_error,
    rand,
    upload_write_error,
)

MiB = 1024 * 1024


def test_upload_new_file(dbx, base):
    data = b"hello, cubby\n"
    path = base + "/Hello.TXT"
    md = dbx.files_upload(data, path)
    assert_file_md(md, path, data)
    assert md.client_modified is not None and md.server_modified is not None
    got_md, body = download_bytes(dbx, path)
    assert body == data
    assert got_md.rev == md.rev and got_md.id == md.id


def test_upload_creates_parent_folders(dbx, base):
    md = dbx.files_upload(b"x", base + "/a/B/c.txt")
    assert md.path_lower == (base + "/a/b/c.txt").lower()
    for p in (base, base + "/a", base + "/a/B"):
        f = dbx.files_get_metadata(p)
        assert isinstance(f, files.FolderMetadata), (p, f)


@pytest.mark.parametrize(
    "size",
    [0, 1, 4 * MiB, 4 * MiB + 1, 9 * 1000 * 1000 + 7],
    ids=["0B", "1B", "4MiB", "4MiB+1", "9MB"],
)
def test_content_hash_matches_sdk_hasher(dbx, base, size):
    data = rand(size)
    want = content_hash(data)
    path = base + "/blob-{}.bin".format(size)
    md = dbx.files_upload(data, path)
    assert md.size == size
    assert md.content_hash == want
    assert dbx.files_get_metadata(path).content_hash == want
    dmd, body = download_bytes(dbx, path)
    assert dmd.content_hash == want and dmd.size == size
    assert body == data


def test_empty_file_hash_is_sha256_of_nothing(dbx, base):
    md = dbx.files_upload(b"", base + "/empty")
    assert md.content_hash == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert md.size == 0


def test_content_hash_mismatch_rejected_and_nothing_written(dbx, base):
    path = base + "/mismatch.bin"
    err = api_error(dbx.files_upload, b"abc", path, content_hash="0" * 64)
    assert isinstance(err, files.UploadError)
    assert err.is_content_hash_mismatch(), err
    lerr = api_error(dbx.files_get_metadata, path)
    assert lookup_error(lerr).is_not_found()


def test_add_conflict_on_different_content(dbx, base):
    path = base + "/c.txt"
    dbx.files_upload(b"one", path)
    err = api_error(dbx.files_upload, b"two", path, mode=files.WriteMode.add)
    assert_conflict(upload_write_error(err), "file")
    # the stored content is unchanged
    assert download_bytes(dbx, path)[1] == b"one"


def test_add_conflict_raw_error_shape(dbx, base, http, base_url, auth_headers):
    path = base + "/raw-conflict.txt"
    dbx.files_upload(b"one", path)
    arg = {"path": path, "mode": "add"}  # bare-string void union member
    r = http.post(
        base_url + "/2/files/upload",
        headers=dict(
            auth_headers,
            **{"Content-Type": "application/octet-stream", "Dropbox-API-Arg": json.dumps(arg)}
        ),
        data=b"two",
    )
    assert r.status_code == 409, (r.status_code, r.text)
    assert r.headers.get("Content-Type") == "application/json"
    body = r.json()
    assert body["error"][".tag"] == "path"
    assert body["error"]["reason"] == {".tag": "conflict", "conflict": {".tag": "file"}}
    assert body["error_summary"].startswith("path/conflict/file/"), body


def test_add_identical_content_is_not_a_conflict(dbx, base):
    path = base + "/same.txt"
    first = dbx.files_upload(b"same", path)
    again = dbx.files_upload(b"same", path)
    assert again.rev == first.rev
    assert again.id == first.id
    assert again.path_lower == first.path_lower


def test_strict_conflict_on_identical_content(dbx, base):
    path = base + "/strict.txt"
    dbx.files_upload(b"same", path)
    err = api_error(dbx.files_upload, b"same", path, strict_conflict=True)
    assert_conflict(upload_write_error(err), "file")


def test_add_autorename(dbx, base):
    path = base + "/doc.txt"
    dbx.files_upload(b"one", path)
    md = dbx.files_upload(b"two", path, autorename=True)
    assert md.path_lower != path.lower()
    assert md.name.startswith("doc (") and md.name.endswith(").txt"), md.name
    assert download_bytes(dbx, path)[1] == b"one"
    assert download_bytes(dbx, md.path_lower)[1] == b"two"


def test_overwrite_replaces_content_keeps_id(dbx, base):
    path = base + "/ow.txt"
    a = dbx.files_upload(b"one", path)
    b = dbx.files_upload(b"two!", path, mode=files.WriteMode.overwrite)
    assert b.rev != a.rev
    assert b.id == a.id
    assert b.size == 4 and b.content_hash == content_hash(b"two!")
    assert download_bytes(dbx, path)[1] == b"two!"


def test_update_with_current_rev(dbx, base):
    path = base + "/up.txt"
    a = dbx.files_upload(b"one", path)
    b = dbx.files_upload(b"two", path, mode=files.WriteMode.update(a.rev))
    assert b.rev != a.rev
    assert download_bytes(dbx, path)[1] == b"two"


def test_update_with_stale_rev_conflicts(dbx, base):
    path = base + "/stale.txt"
    a = dbx.files_upload(b"one", path)
    dbx.files_upload(b"two", path, mode=files.WriteMode.update(a.rev))
    err = api_error(dbx.files_upload, b"three", path, mode=files.WriteMode.update(a.rev))
    assert_conflict(upload_write_error(err), "file")
    assert download_bytes(dbx, path)[1] == b"two"


def test_update_stale_rev_autorename_makes_conflicted_copy(dbx, base):
    path = base + "/cc.txt"
    a = dbx.files_upload(b"one", path)
    dbx.files_upload(b"two", path, mode=files.WriteMode.overwrite)
    md = dbx.files_upload(
        b"three", path, mode=files.WriteMode.update(a.rev), autorename=True
    )
    assert md.path_lower != path.lower()
    assert "conflicted copy" in md.name, md.name
    assert download_bytes(dbx, path)[1] == b"two"
    assert download_bytes(dbx, md.id)[1] == b"three"


@pytest.mark.parametrize(
    "mode",
    [files.WriteMode.add, files.WriteMode.overwrite],
    ids=["add", "overwrite"],
)
def test_upload_onto_folder_is_folder_conflict(dbx, base, mode):
    dbx.files_create_folder_v2(base + "/dir")
    err = api_error(dbx.files_upload, b"x", base + "/dir", mode=mode)
    assert_conflict(upload_write_error(err), "folder")


def test_upload_below_a_file_is_file_ancestor_conflict(dbx, base):
    dbx.files_upload(b"x", base + "/f.txt")
    err = api_error(dbx.files_upload, b"y", base + "/f.txt/child.txt")
    assert_conflict(upload_write_error(err), "file_ancestor")


def test_client_modified_and_mute(dbx, base):
    cm = datetime.datetime(2020, 1, 2, 3, 4, 5)
    md = dbx.files_upload(b"cm", base + "/cm.txt", client_modified=cm, mute=True)
    assert md.client_modified == cm
    assert dbx.files_get_metadata(base + "/cm.txt").client_modified == cm
    assert md.server_modified > cm


@pytest.mark.parametrize("name", ["desktop.ini", ".dropbox"])
def test_disallowed_name(dbx, base, name):
    path = base + "/" + name
    err = api_error(dbx.files_upload, b"x", path)
    werr = upload_write_error(err)
    assert werr.is_disallowed_name(), werr
    lerr = api_error(dbx.files_get_metadata, path)
    assert lookup_error(lerr).is_not_found()


def test_component_longer_than_255_is_malformed(dbx, base):
    err = api_error(dbx.files_upload, b"x", base + "/" + "a" * 256)
    werr = upload_write_error(err)
    assert werr.is_malformed_path(), werr


def test_component_of_255_is_fine(dbx, base):
    name = "b" * 251 + ".txt"
    md = dbx.files_upload(b"x", base + "/" + name)
    assert md.name == name


def test_upload_into_folder_by_id(dbx, base):
    folder = dbx.files_create_folder_v2(base + "/Target").metadata
    md = dbx.files_upload(b"by-id", folder.id + "/Inner.txt")
    assert md.path_display == base + "/Target/Inner.txt"
    assert download_bytes(dbx, base + "/target/inner.txt")[1] == b"by-id"


def test_upload_over_150_mib_is_payload_too_large(dbx, base):
    data = b"\0" * (150 * MiB + 1)
    try:
        err = api_error(dbx.files_upload, data, base + "/huge.bin")
    finally:
        del data
    assert isinstance(err, files.UploadError)
    assert err.is_payload_too_large(), err
    with pytest.raises(ApiError):
        dbx.files_get_metadata(base + "/huge.bin")
