"""files/list_folder, /continue, /get_latest_cursor and /longpoll."""

import threading
import time

from dropbox import files

from cubby_helpers import api_error, drain, list_all, lookup_error


def names(entries):
    return sorted(e.name for e in entries)


def by_path(entries):
    out = {}
    for e in entries:
        out[e.path_lower] = e
    return out


def test_list_folder_direct_children(dbx, base):
    dbx.files_upload(b"1", base + "/a.txt")
    dbx.files_upload(b"22", base + "/B.txt")
    dbx.files_upload(b"3", base + "/sub/nested.txt")
    r = dbx.files_list_folder(base)
    assert isinstance(r, files.ListFolderResult)
    assert r.cursor
    entries, _, _ = list_all(dbx, base)
    assert names(entries) == ["B.txt", "a.txt", "sub"]
    m = {e.name: e for e in entries}
    assert isinstance(m["a.txt"], files.FileMetadata) and m["a.txt"].size == 1
    assert isinstance(m["B.txt"], files.FileMetadata) and m["B.txt"].size == 2
    assert m["B.txt"].path_lower == (base + "/b.txt").lower()
    assert isinstance(m["sub"], files.FolderMetadata)


def test_list_empty_folder(dbx, base):
    dbx.files_create_folder_v2(base)
    r = dbx.files_list_folder(base)
    assert r.entries == [] and not r.has_more and r.cursor


def test_list_root_contains_test_folder(dbx, base):
    dbx.files_create_folder_v2(base + "/Child")
    entries, _, _ = list_all(dbx, "")
    root = by_path(entries)
    assert base.lower() in root, sorted(root)[:20]
    assert isinstance(root[base.lower()], files.FolderMetadata)
    # non-recursive: no grandchildren
    assert (base + "/child").lower() not in root


def test_list_recursive_folders_before_contents(dbx, base):
    dbx.files_upload(b"top", base + "/top.txt")
    dbx.files_upload(b"deep", base + "/x/y/z/deep.txt")
    dbx.files_create_folder_v2(base + "/x/empty")
    entries, _, _ = list_all(dbx, base, recursive=True)
    idx = {e.path_lower: i for i, e in enumerate(entries)}
    want = [base + p for p in ("/top.txt", "/x", "/x/y", "/x/y/z", "/x/y/z/deep.txt", "/x/empty")]
    for p in want:
        assert p.lower() in idx, (p, sorted(idx))
    assert set(idx) - {base.lower()} == {p.lower() for p in want}
    for parent, child in [
        ("/x", "/x/y"),
        ("/x/y", "/x/y/z"),
        ("/x/y/z", "/x/y/z/deep.txt"),
        ("/x", "/x/empty"),
    ]:
        assert idx[(base + parent).lower()] < idx[(base + child).lower()], (parent, child)
    if base.lower() in idx:
        assert isinstance(entries[idx[base.lower()]], files.FolderMetadata)
        assert idx[base.lower()] == 0


def test_list_paging_with_limit(dbx, base):
    want = set()
    for i in range(7):
        p = base + "/f{}.txt".format(i)
        dbx.files_upload(str(i).encode(), p)
        want.add(p.lower())
    first = dbx.files_list_folder(base, limit=2)
    assert first.has_more, "7 entries with limit=2 must page"
    assert 0 < len(first.entries) < 7
    entries, _, pages = list_all(dbx, base, limit=2)
    seen = [e.path_lower for e in entries]
    assert len(seen) == len(set(seen)), "duplicate entries across pages"
    assert set(seen) == want
    assert pages >= 3


def test_list_folder_errors(dbx, base):
    err = api_error(dbx.files_list_folder, base + "/missing")
    assert isinstance(err, files.ListFolderError)
    assert lookup_error(err).is_not_found(), err
    dbx.files_upload(b"f", base + "/file.txt")
    err = api_error(dbx.files_list_folder, base + "/file.txt")
    assert lookup_error(err).is_not_folder(), err
    err = api_error(dbx.files_list_folder, base + "/" + "n" * 256)
    assert lookup_error(err).is_malformed_path(), err


def test_list_include_deleted(dbx, base):
    dbx.files_upload(b"a", base + "/alive.txt")
    dbx.files_upload(b"d", base + "/dead.txt")
    dbx.files_delete_v2(base + "/dead.txt")
    plain, _, _ = list_all(dbx, base)
    assert names(plain) == ["alive.txt"]
    withdel, _, _ = list_all(dbx, base, include_deleted=True)
    m = {e.name: e for e in withdel}
    assert isinstance(m.get("dead.txt"), files.DeletedMetadata), withdel
    assert isinstance(m.get("alive.txt"), files.FileMetadata), withdel


def test_continue_reports_changes(dbx, dbx_other, base):
    dbx.files_upload(b"keep", base + "/keep.txt")
    dbx.files_upload(b"mod", base + "/mod.txt")
    dbx.files_upload(b"del", base + "/del.txt")
    _, cursor, _ = list_all(dbx, base)

    # nothing changed yet
    none, cursor = drain(dbx, cursor)
    assert none == [], none

    dbx_other.files_upload(b"new", base + "/new.txt")
    mod = dbx_other.files_upload(b"modified", base + "/mod.txt", mode=files.WriteMode.overwrite)
    dbx_other.files_delete_v2(base + "/del.txt")
    dbx_other.files_create_folder_v2(base + "/NewDir")

    changes, cursor = drain(dbx, cursor)
    m = by_path(changes)
    assert isinstance(m.get((base + "/new.txt").lower()), files.FileMetadata), changes
    got_mod = m.get((base + "/mod.txt").lower())
    assert isinstance(got_mod, files.FileMetadata) and got_mod.rev == mod.rev, changes
    deleted = m.get((base + "/del.txt").lower())
    assert isinstance(deleted, files.DeletedMetadata), changes
    assert deleted.name == "del.txt"
    newdir = m.get((base + "/newdir").lower())
    assert isinstance(newdir, files.FolderMetadata) and newdir.name == "NewDir", changes
    assert (base + "/keep.txt").lower() not in m, changes

    again, _ = drain(dbx, cursor)
    assert again == [], again


def test_continue_paging_of_changes(dbx, base):
    dbx.files_create_folder_v2(base)
    _, cursor, _ = list_all(dbx, base, limit=2)
    want = set()
    for i in range(5):
        p = base + "/c{}.txt".format(i)
        dbx.files_upload(b"x", p)
        want.add(p.lower())
    seen = []
    pages = 0
    while True:
        r = dbx.files_list_folder_continue(cursor)
        pages += 1
        seen.extend(e.path_lower for e in r.entries)
        cursor = r.cursor
        if not r.has_more:
            break
        assert pages < 100
    assert set(seen) == want
    assert pages >= 2, "limit from the original listing should carry into the cursor"


def test_cursor_scope(dbx, base):
    """A non-recursive cursor sees direct children only; a recursive one sees
    everything below; neither sees siblings of the listed folder."""
    dbx.files_upload(b"x", base + "/in/sub/old.txt")
    dbx.files_create_folder_v2(base + "/sibling")
    _, flat, _ = list_all(dbx, base + "/in")
    _, deep, _ = list_all(dbx, base + "/in", recursive=True)

    dbx.files_upload(b"x", base + "/in/sub/nested.txt")
    dbx.files_upload(b"x", base + "/in/direct.txt")
    dbx.files_upload(b"x", base + "/sibling/other.txt")

    flat_changes = by_path(drain(dbx, flat)[0])
    deep_changes = by_path(drain(dbx, deep)[0])
    direct = (base + "/in/direct.txt").lower()
    nested = (base + "/in/sub/nested.txt").lower()
    other = (base + "/sibling/other.txt").lower()
    assert direct in flat_changes and nested not in flat_changes, sorted(flat_changes)
    assert direct in deep_changes and nested in deep_changes, sorted(deep_changes)
    assert other not in flat_changes and other not in deep_changes


def test_recursive_cursor_reports_deleted_folder(dbx, base):
    dbx.files_upload(b"x", base + "/tree/a/b.txt")
    _, cursor, _ = list_all(dbx, base, recursive=True)
    dbx.files_delete_v2(base + "/tree")
    m = by_path(drain(dbx, cursor)[0])
    tree = m.get((base + "/tree").lower())
    assert isinstance(tree, files.DeletedMetadata), m
    for p, e in m.items():
        assert isinstance(e, files.DeletedMetadata), (p, e)


def test_move_shows_as_delete_plus_add(dbx, base):
    dbx.files_upload(b"m", base + "/from.txt")
    _, cursor, _ = list_all(dbx, base)
    dbx.files_move_v2(base + "/from.txt", base + "/to.txt")
    m = by_path(drain(dbx, cursor)[0])
    assert isinstance(m.get((base + "/from.txt").lower()), files.DeletedMetadata), m
    assert isinstance(m.get((base + "/to.txt").lower()), files.FileMetadata), m


def test_get_latest_cursor(dbx, base):
    dbx.files_upload(b"old", base + "/old.txt")
    r = dbx.files_list_folder_get_latest_cursor(base)
    assert isinstance(r, files.ListFolderGetLatestCursorResult) and r.cursor
    dbx.files_upload(b"new", base + "/new.txt")
    changes, _ = drain(dbx, r.cursor)
    assert [e.path_lower for e in changes] == [(base + "/new.txt").lower()], changes


def test_get_latest_cursor_errors(dbx, base):
    err = api_error(dbx.files_list_folder_get_latest_cursor, base + "/missing")
    assert lookup_error(err).is_not_found(), err


def test_continue_with_bogus_cursor_is_reset(dbx):
    err = api_error(dbx.files_list_folder_continue, "bogus-cursor")
    assert isinstance(err, files.ListFolderContinueError)
    assert err.is_reset(), err


def test_continue_after_listed_folder_deleted(dbx, base):
    dbx.files_upload(b"x", base + "/f/x.txt")
    _, cursor, _ = list_all(dbx, base + "/f")
    dbx.files_delete_v2(base + "/f")
    # Either the deletion is reported, or the folder lookup fails; never a 5xx.
    try:
        changes, _ = drain(dbx, cursor)
    except Exception as e:  # noqa: BLE001
        from dropbox.exceptions import ApiError

        assert isinstance(e, ApiError), e
        assert e.error.is_path() or e.error.is_reset(), e.error
    else:
        m = by_path(changes)
        assert isinstance(m.get((base + "/f/x.txt").lower()), files.DeletedMetadata), changes


# ---------------------------------------------------------------- longpoll


def _start_poll(client, cursor, timeout=30):
    out = {}

    def run():
        try:
            out["result"] = client.files_list_folder_longpoll(cursor, timeout=timeout)
        except Exception as e:  # noqa: BLE001
            out["error"] = e
        out["done"] = time.monotonic()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, out


def test_longpoll_wakes_on_change(dbx, dbx_other, new_client, alice, base):
    dbx.files_upload(b"seed", base + "/seed.txt")
    cursor = dbx.files_list_folder_get_latest_cursor(base).cursor
    poller = new_client(alice["access_token"])
    th, out = _start_poll(poller, cursor)
    time.sleep(0.5)
    assert th.is_alive(), "longpoll returned before any change: {!r}".format(out)
    t_change = time.monotonic()
    dbx_other.files_upload(b"wake up", base + "/wake.txt")
    th.join(5)
    assert not th.is_alive(), "longpoll did not return within 5 s of a change"
    assert "error" not in out, out.get("error")
    res = out["result"]
    assert isinstance(res, files.ListFolderLongpollResult)
    assert res.changes is True
    assert out["done"] - t_change < 2.0, out["done"] - t_change
    changes, _ = drain(dbx, cursor)
    assert [e.name for e in changes] == ["wake.txt"], changes


def test_longpoll_returns_at_once_if_already_changed(dbx, new_client, alice, base):
    dbx.files_create_folder_v2(base)
    cursor = dbx.files_list_folder_get_latest_cursor(base).cursor
    dbx.files_upload(b"x", base + "/already.txt")
    poller = new_client(alice["access_token"])
    t0 = time.monotonic()
    th, out = _start_poll(poller, cursor)
    th.join(5)
    assert not th.is_alive(), "longpoll blocked although changes were pending"
    assert "error" not in out, out.get("error")
    assert out["result"].changes is True
    assert out["done"] - t0 < 2.0


def test_longpoll_ignores_changes_elsewhere(dbx, dbx_other, new_client, alice, base):
    dbx.files_create_folder_v2(base + "/watched")
    dbx.files_create_folder_v2(base + "/elsewhere")
    cursor = dbx.files_list_folder_get_latest_cursor(base + "/watched").cursor
    poller = new_client(alice["access_token"])
    th, out = _start_poll(poller, cursor)
    dbx_other.files_upload(b"x", base + "/elsewhere/x.txt")
    th.join(1.0)
    if not th.is_alive():
        # An early return is tolerable only if it does not claim changes.
        assert "error" not in out, out.get("error")
        assert out["result"].changes is False, "longpoll reported a change outside its folder"
        return
    dbx_other.files_upload(b"y", base + "/watched/y.txt")
    th.join(5)
    assert not th.is_alive()
    assert "error" not in out, out.get("error")
    assert out["result"].changes is True


def test_longpoll_bogus_cursor_is_reset(dbx):
    err = api_error(dbx.files_list_folder_longpoll, "bogus-cursor", timeout=30)
    assert isinstance(err, files.ListFolderLongpollError)
    assert err.is_reset(), err


def test_longpoll_raw_needs_no_auth(dbx, http, base_url, base):
    dbx.files_create_folder_v2(base)
    cursor = dbx.files_list_folder_get_latest_cursor(base).cursor
    dbx.files_upload(b"x", base + "/x.txt")
    r = http.post(
        base_url + "/2/files/list_folder/longpoll",
        headers={"Content-Type": "application/json"},
        json={"cursor": cursor, "timeout": 30},
        timeout=10,
    )
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers.get("Content-Type") == "application/json"
    body = r.json()
    assert body["changes"] is True, body
    if "backoff" in body:
        assert isinstance(body["backoff"], int) and body["backoff"] >= 0
