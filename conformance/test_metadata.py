"""files/get_metadata, path forms (id:, id:/rel, rev:), case and Unicode."""

import json
import re
import unicodedata

import pytest
from dropbox import files
from dropbox.exceptions import BadInputError

from cubby_helpers import (
    SUMMARY_DOTS,
    api_error,
    assert_conflict,
    assert_file_md,
    body_of,
    content_hash,
    lookup_error,
    raw_json_call,
)


def test_get_metadata_file_and_folder(dbx, base):
    up = dbx.files_upload(b"abc", base + "/Sub/File.txt")
    f = dbx.files_get_metadata(base + "/Sub/File.txt")
    assert_file_md(f, base + "/Sub/File.txt", b"abc")
    assert f.id == up.id and f.rev == up.rev
    d = dbx.files_get_metadata(base + "/Sub")
    assert isinstance(d, files.FolderMetadata), d
    assert d.name == "Sub" and d.path_lower == (base + "/sub").lower()
    assert d.id and d.id.startswith("id:")


def test_get_metadata_missing_is_path_not_found(dbx, base):
    err = api_error(dbx.files_get_metadata, base + "/missing.txt")
    assert isinstance(err, files.GetMetadataError)
    assert err.is_path() and err.get_path().is_not_found(), err


def test_get_metadata_not_found_raw_shape(http, base_url, auth_headers, base):
    r = http.post(
        base_url + "/2/files/get_metadata",
        headers=dict(auth_headers, **{"Content-Type": "application/json"}),
        data=json.dumps({"path": base + "/missing.txt"}),
    )
    assert r.status_code == 409, (r.status_code, r.text)
    assert r.headers.get("Content-Type") == "application/json"
    body = r.json()
    assert body["error"] == {".tag": "path", "path": {".tag": "not_found"}}, body
    assert re.match(r"^path/not_found/" + SUMMARY_DOTS, body["error_summary"]), body


def test_get_metadata_below_missing_parent(dbx, base):
    err = api_error(dbx.files_get_metadata, base + "/no/such/dir/file.txt")
    assert lookup_error(err).is_not_found(), err


def test_get_metadata_root_is_bad_input(dbx):
    with pytest.raises(BadInputError):
        raw_json_call(dbx, "files/get_metadata", {"path": ""})


@pytest.mark.parametrize(
    "suffix",
    ["/" + "a" * 256, "/x/", "/x ", "/../x", "/./x"],
    ids=["long-component", "trailing-slash", "trailing-space", "dotdot", "dot"],
)
def test_get_metadata_malformed_path(dbx, base, suffix):
    err = api_error(dbx.files_get_metadata, base + suffix)
    assert lookup_error(err).is_malformed_path(), err


def test_include_deleted(dbx, base):
    path = base + "/gone.txt"
    dbx.files_upload(b"bye", path)
    dbx.files_delete_v2(path)
    err = api_error(dbx.files_get_metadata, path)
    assert lookup_error(err).is_not_found(), err
    md = dbx.files_get_metadata(path, include_deleted=True)
    assert isinstance(md, files.DeletedMetadata), md
    assert md.name == "gone.txt"
    assert md.path_lower == path.lower()


def test_include_deleted_for_never_existing_is_not_found(dbx, base):
    err = api_error(dbx.files_get_metadata, base + "/never.txt", include_deleted=True)
    assert lookup_error(err).is_not_found(), err


def test_case_insensitive_lookup(dbx, base):
    up = dbx.files_upload(b"case", base + "/Foo/Bar.txt")
    assert up.path_lower == (base + "/foo/bar.txt").lower()
    md = dbx.files_get_metadata(base.upper() + "/foo/bar.TXT")
    assert isinstance(md, files.FileMetadata)
    assert md.id == up.id
    assert md.name == "Bar.txt"
    assert md.path_lower == (base + "/foo/bar.txt").lower()
    assert md.path_display.endswith("/Bar.txt")
    assert body_of(dbx, base + "/FOO/BAR.TXT") == b"case"


def test_case_insensitive_conflicts(dbx, base):
    dbx.files_upload(b"one", base + "/Foo/Bar.txt")
    err = api_error(dbx.files_upload, b"two", base + "/FOO/bar.TXT")
    assert_conflict(err.get_path().reason, "file")
    dbx.files_create_folder_v2(base + "/Dir")
    err = api_error(dbx.files_create_folder_v2, base + "/dIR")
    assert_conflict(err.get_path(), "folder")
    # the listing holds one entry per item, with the original case
    names = sorted(e.name for e in dbx.files_list_folder(base).entries)
    assert names == ["Dir", "Foo"], names


def test_case_insensitive_parent_reuse(dbx, base):
    dbx.files_upload(b"1", base + "/Photos/a.jpg")
    dbx.files_upload(b"2", base + "/PHOTOS/b.jpg")
    entries = dbx.files_list_folder(base).entries
    assert [e.name for e in entries] == ["Photos"], [e.name for e in entries]
    names = sorted(e.name for e in dbx.files_list_folder(base + "/photos").entries)
    assert names == ["a.jpg", "b.jpg"]


NON_ASCII = ["/Téxt/日本語 ✓.txt", "/Ünïcødé/🎉 party.txt", "/ΑΒΓ/Straße.md"]


@pytest.mark.parametrize("rel", NON_ASCII, ids=["latin-cjk", "astral", "greek"])
def test_non_ascii_round_trip(dbx, base, rel):
    path = base + rel
    data = rel.encode("utf-8")
    up = dbx.files_upload(data, path)
    assert up.path_display == path
    assert up.name == rel.rsplit("/", 1)[1]
    assert up.path_lower == path.lower()
    md = dbx.files_get_metadata(path)
    assert md.path_display == path and md.id == up.id
    folder = path.rsplit("/", 1)[0]
    entries = dbx.files_list_folder(folder).entries
    assert [e.name for e in entries] == [up.name]
    assert entries[0].path_display == path
    dmd, resp = dbx.files_download(path)
    assert resp.content == data
    assert dmd.name == up.name and dmd.path_display == path
    # case-insensitive Unicode lookup (skip characters whose upper case changes length, like ß)
    upper = "".join(c.upper() if len(c.upper()) == 1 else c for c in path)
    assert upper != path
    assert dbx.files_get_metadata(upper).id == up.id


def test_unicode_normalization_forms_name_one_item(dbx, base):
    # As on Dropbox, path_lower is NFC: a name written decomposed (as macOS writes it) and
    # composed (as Linux and Windows do) is one item, shown as it was first written.
    nfd = unicodedata.normalize("NFD", "/Café/Résumé.txt")
    nfc = unicodedata.normalize("NFC", nfd)
    assert nfd != nfc
    up = dbx.files_upload(b"decomposed", base + nfd)
    assert up.path_display == base + nfd
    assert up.path_lower == (base + nfc).lower()
    assert dbx.files_get_metadata(base + nfc).id == up.id
    assert body_of(dbx, base + nfc.upper()) == b"decomposed"
    err = api_error(dbx.files_upload, b"composed", base + nfc)
    assert_conflict(err.get_path().reason, "file")
    # Overwriting through the other form keeps one item and its first name.
    over = dbx.files_upload(b"composed", base + nfc, mode=files.WriteMode.overwrite)
    assert over.id == up.id and over.path_display == base + nfd
    entries = dbx.files_list_folder(base, recursive=True).entries
    assert sorted(e.path_lower for e in entries) == sorted(
        [base.lower(), (base + "/café").lower(), (base + nfc).lower()]
    )
    # A folder made in one form is the parent of paths written in the other.
    dbx.files_upload(b"x", base + nfc.rsplit("/", 1)[0] + "/two.txt")
    names = [e.name for e in dbx.files_list_folder(base).entries]
    assert names == [nfd.split("/")[1]], names
    moved = dbx.files_move_v2(base + nfd, base + nfc.rsplit("/", 1)[0] + "/moved.txt").metadata
    assert moved.id == up.id


def test_download_result_header_is_ascii(dbx, base, http, base_url, auth_headers):
    path = base + "/Téxt/日本語 ✓ 🎉.txt"
    dbx.files_upload(b"x", path)
    r = http.post(
        base_url + "/2/files/download",
        headers=dict(auth_headers, **{"Dropbox-API-Arg": json.dumps({"path": path})}),
    )
    assert r.status_code == 200, (r.status_code, r.text[:200])
    raw = r.headers["Dropbox-API-Result"]
    assert all(ord(c) < 0x7F for c in raw), raw
    assert json.loads(raw)["path_display"] == path


def test_id_path_forms(dbx, base):
    folder = dbx.files_create_folder_v2(base + "/Proj").metadata
    f = dbx.files_upload(b"by id", base + "/Proj/Deep/Note.txt")
    # id: of a file
    md = dbx.files_get_metadata(f.id)
    assert md.id == f.id and md.path_lower == (base + "/proj/deep/note.txt").lower()
    assert body_of(dbx, f.id) == b"by id"
    # id: of a folder
    fm = dbx.files_get_metadata(folder.id)
    assert isinstance(fm, files.FolderMetadata) and fm.id == folder.id
    # id:<folder>/relative
    rel = dbx.files_get_metadata(folder.id + "/deep/NOTE.txt")
    assert rel.id == f.id
    assert body_of(dbx, folder.id + "/Deep/Note.txt") == b"by id"
    # list by id
    names = [e.name for e in dbx.files_list_folder(folder.id).entries]
    assert names == ["Deep"], names


def test_unknown_id_is_lookup_error(dbx):
    err = api_error(dbx.files_get_metadata, "id:doesNotExist000000000")
    le = lookup_error(err)
    assert le.is_not_found() or le.is_malformed_path(), le


def test_rev_path_form(dbx, base):
    path = base + "/versions.txt"
    v1 = dbx.files_upload(b"version one", path)
    v2 = dbx.files_upload(b"version 2", path, mode=files.WriteMode.overwrite)
    assert v1.rev != v2.rev
    old = dbx.files_get_metadata("rev:" + v1.rev)
    assert isinstance(old, files.FileMetadata)
    assert old.rev == v1.rev and old.size == len(b"version one")
    assert old.content_hash == content_hash(b"version one")
    assert body_of(dbx, "rev:" + v1.rev) == b"version one"
    assert body_of(dbx, "rev:" + v2.rev) == b"version 2"
    assert body_of(dbx, path) == b"version 2"


def test_unknown_rev_is_not_found(dbx):
    err = api_error(dbx.files_get_metadata, "rev:0123456789abcdef")
    le = lookup_error(err)
    assert le.is_not_found() or le.is_malformed_path(), le
