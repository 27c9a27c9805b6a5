"""Small shared helpers for the conformance tests."""

import json
import os
import re

import pytest
from dropbox import files
from dropbox.content_hash import DropboxContentHasher
from dropbox.exceptions import ApiError

REV_RE = re.compile(r"^[0-9a-f]{9,}$")
SUMMARY_DOTS = r"\.{0,3}$"


def sdk_fixture(name):
    """The bytes of a test fixture of the official SDK's sdist (test/fixtures/NAME), which
    run.sh fetches and checks: a real photo, used without keeping a copy here."""
    sdist = os.environ.get("CUBBY_DROPBOX_SDIST")
    if not sdist:
        pytest.fail("CUBBY_DROPBOX_SDIST is not set: run the suite through conformance/run.sh")
    with open(os.path.join(sdist, "test", "fixtures", name), "rb") as f:
        return f.read()


def content_hash(data):
    h = DropboxContentHasher()
    h.update(data)
    return h.hexdigest()


def rand(n):
    return os.urandom(n)


def api_error(fn, *args, **kwargs):
    """Call fn and return the route error union of the ApiError it must raise."""
    with pytest.raises(ApiError) as ei:
        fn(*args, **kwargs)
    return ei.value.error


def lookup_error(err):
    """Unwrap GetMetadataError/DownloadError/ListFolderError.path -> LookupError."""
    assert err.is_path(), err
    return err.get_path()


def upload_write_error(err):
    """UploadError.path(UploadWriteFailed{reason}) -> WriteError."""
    assert isinstance(err, files.UploadError), err
    assert err.is_path(), err
    return err.get_path().reason


def assert_conflict(write_err, kind):
    assert isinstance(write_err, files.WriteError), write_err
    assert write_err.is_conflict(), write_err
    c = write_err.get_conflict()
    assert getattr(c, "is_" + kind)(), c


def assert_file_md(md, path_display=None, data=None):
    assert isinstance(md, files.FileMetadata), md
    assert REV_RE.match(md.rev), md.rev
    assert md.id and md.id.startswith("id:"), md.id
    assert md.content_hash is not None, md
    if path_display is not None:
        assert md.path_display == path_display, (md.path_display, path_display)
        assert md.path_lower == path_display.lower(), (md.path_lower, path_display)
        assert md.name == path_display.rsplit("/", 1)[1]
    if data is not None:
        assert md.size == len(data)
        assert md.content_hash == content_hash(data)


def list_all(dbx, path, **kwargs):
    """list_folder + continue until has_more is false; returns (entries, cursor, pages)."""
    r = dbx.files_list_folder(path, **kwargs)
    entries = list(r.entries)
    pages = 1
    while r.has_more:
        r = dbx.files_list_folder_continue(r.cursor)
        entries.extend(r.entries)
        pages += 1
        assert pages < 1000, "list_folder never finished"
    return entries, r.cursor, pages


def drain(dbx, cursor):
    """Continue from a cursor until has_more is false; returns (entries, cursor)."""
    entries = []
    for _ in range(1000):
        r = dbx.files_list_folder_continue(cursor)
        entries.extend(r.entries)
        cursor = r.cursor
        if not r.has_more:
            return entries, cursor
    raise AssertionError("list_folder/continue never finished")


def raw_json_call(dbx, route, arg, host="api", style="rpc", auth="user", body=None):
    """Send a hand-written JSON argument through the SDK transport, bypassing
    client-side validation of the argument (the server must do it)."""
    return dbx.request_json_string_with_retry(
        host, route, style, json.dumps(arg), auth, body
    )


def download_bytes(dbx, path):
    """Downloads a file through the SDK; returns (metadata, bytes) and closes the response."""
    md, resp = dbx.files_download(path)
    try:
        return md, resp.content
    finally:
        resp.close()


def body_of(dbx, path):
    """The bytes of a file, downloaded through the SDK."""
    return download_bytes(dbx, path)[1]
