"""A second user must not see or touch the first user's files."""

import pytest
from dropbox import files
from dropbox.exceptions import ApiError, AuthError, BadInputError

from cubby_helpers import api_error, drain, list_all, lookup_error


@pytest.fixture
def alice_file(dbx, base):
    up = dbx.files_upload(b"alice's secret", base + "/secret.txt")
    return base + "/secret.txt", up


def test_other_user_cannot_see_by_path(dbx2, alice_file, base):
    path, up = alice_file
    err = api_error(dbx2.files_get_metadata, path)
    assert lookup_error(err).is_not_found(), err
    err = api_error(dbx2.files_download, path)
    assert lookup_error(err).is_not_found(), err
    err = api_error(dbx2.files_list_folder, base)
    assert lookup_error(err).is_not_found(), err


def test_other_user_root_listing_is_separate(dbx2, alice_file, base):
    entries, _, _ = list_all(dbx2, "", recursive=True)
    paths = {e.path_lower for e in entries}
    assert base.lower() not in paths
    assert alice_file[0].lower() not in paths


def test_other_user_cannot_use_ids_or_revs(dbx2, alice_file):
    _, up = alice_file
    for p in (up.id, "rev:" + up.rev):
        err = api_error(dbx2.files_get_metadata, p)
        le = lookup_error(err)
        assert le.is_not_found() or le.is_malformed_path(), (p, le)
        err = api_error(dbx2.files_download, p)
        le = lookup_error(err)
        assert le.is_not_found() or le.is_malformed_path(), (p, le)


def test_other_user_cannot_modify(dbx, dbx2, alice_file):
    path, up = alice_file
    err = api_error(dbx2.files_delete_v2, up.id)
    assert isinstance(err, files.DeleteError), err
    with pytest.raises(ApiError):
        dbx2.files_move_v2(up.id, "/stolen.txt")
    with pytest.raises(ApiError):
        dbx2.files_copy_v2(up.id, "/stolen-copy.txt")
    # bob writing the same path writes into bob's own namespace
    mine = dbx2.files_upload(b"bob's", path)
    assert mine.id != up.id
    md, resp = dbx.files_download(path)
    assert resp.content == b"alice's secret" and md.rev == up.rev
    md, resp = dbx2.files_download(path)
    assert resp.content == b"bob's"


def test_other_user_cannot_use_cursor(dbx, dbx2, base):
    dbx.files_upload(b"x", base + "/a.txt")
    _, cursor, _ = list_all(dbx, base)
    dbx.files_upload(b"y", base + "/b.txt")
    try:
        entries, _ = drain(dbx2, cursor)
    except (ApiError, BadInputError, AuthError):
        return
    assert not any(e.path_lower.startswith(base.lower()) for e in entries), entries
