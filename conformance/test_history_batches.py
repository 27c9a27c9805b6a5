"""Version history (list_revisions, restore, permanently_delete), the batch routes and
their /check polls, search_v2, temporary download and upload links, and download_zip,
all through the SDK's own methods."""

import io
import time
import uuid
import zipfile

import pytest
from dropbox import files

from cubby_helpers import (
    REV_RE,
    api_error,
    assert_conflict,
    assert_file_md,
    body_of,
    content_hash,
    lookup_error,
    rand,
)

KiB = 1024
MiB = 1024 * KiB

Rel = files.RelocationPath
CommitInfo = files.CommitInfo
UNKNOWN_REV = "0123456789abcdef0"


def assert_gone(dbx, path):
    err = api_error(dbx.files_get_metadata, path)
    assert lookup_error(err).is_not_found(), err


def revs_of(dbx, path, **kwargs):
    r = dbx.files_list_revisions(path, **kwargs)
    assert isinstance(r, files.ListRevisionsResult), r
    for e in r.entries:
        assert isinstance(e, files.FileMetadata), e
        assert REV_RE.match(e.rev), e.rev
    return r, [e.rev for e in r.entries]


def wait_job(check, job_id, timeout=20.0):
    """Poll a /check route until the job leaves in_progress; returns the status."""
    deadline = time.monotonic() + timeout
    while True:
        status = check(job_id)
        if not status.is_in_progress():
            return status
        assert time.monotonic() < deadline, "job {} still in progress after {} s".format(
            job_id, timeout
        )
        time.sleep(0.05)


def batch_entries(launch, check):
    """Entries of a batch launch: polled through check when it answered an async job."""
    if launch.is_async_job_id():
        job = launch.get_async_job_id()
        assert isinstance(job, str) and job, launch
        status = wait_job(check, job)
        assert status.is_complete(), status
        return status.get_complete().entries
    assert launch.is_complete(), launch
    return launch.get_complete().entries


def relocation_failure(entry):
    """RelocationBatchResultEntry.failure.relocation_error -> RelocationError."""
    assert isinstance(entry, files.RelocationBatchResultEntry), entry
    assert entry.is_failure(), entry
    f = entry.get_failure()
    assert isinstance(f, files.RelocationBatchErrorEntry), f
    assert f.is_relocation_error(), f
    return f.get_relocation_error()


def relocation_success(entry):
    assert isinstance(entry, files.RelocationBatchResultEntry), entry
    assert entry.is_success(), entry
    return entry.get_success()


# ------------------------------------------------------------------ list_revisions


def test_list_revisions_newest_first_limit_and_before_rev(dbx, base):
    path = base + "/History.txt"
    datas = [b"version one", rand(4 * MiB + 1234), b"v3"]
    ups = [dbx.files_upload(datas[0], path)]
    for d in datas[1:]:
        ups.append(dbx.files_upload(d, path, mode=files.WriteMode.overwrite))
    want = [u.rev for u in reversed(ups)]
    assert len(set(want)) == 3, want

    r, revs = revs_of(dbx, path)
    assert revs == want, (revs, want)
    assert r.is_deleted is False
    assert r.server_deleted is None
    assert r.has_more is False
    for e, d in zip(r.entries, reversed(datas)):
        assert e.path_display == path
        assert e.size == len(d) and e.content_hash == content_hash(d)
        assert e.id == ups[0].id
    # every listed revision is readable, byte for byte
    for rev, d in zip(revs, reversed(datas)):
        assert body_of(dbx, "rev:" + rev) == d

    # paging with limit and before_rev
    r, revs = revs_of(dbx, path.lower(), limit=2)
    assert revs == want[:2] and r.has_more is True, (revs, r.has_more)
    r, revs = revs_of(dbx, path, limit=2, before_rev=revs[-1])
    assert revs == want[2:] and r.has_more is False, (revs, r.has_more)
    r, revs = revs_of(dbx, path, limit=1, before_rev=want[0])
    assert revs == [want[1]] and r.has_more is True, revs

    # by id in path mode too
    _, revs = revs_of(dbx, ups[0].id)
    assert revs == want


def test_list_revisions_id_mode_follows_moves(dbx, base):
    a, b = base + "/a.txt", base + "/moved/b.txt"
    r1 = dbx.files_upload(b"one", a)
    r2 = dbx.files_upload(b"two", a, mode=files.WriteMode.overwrite)
    moved = dbx.files_move_v2(a, b).metadata
    assert moved.id == r1.id
    r3 = dbx.files_upload(b"three", b, mode=files.WriteMode.overwrite)

    res, by_id = revs_of(dbx, b, mode=files.ListRevisionsMode.id)
    assert by_id[0] == r3.rev, by_id
    assert r2.rev in by_id and r1.rev in by_id, by_id
    assert by_id.index(r2.rev) < by_id.index(r1.rev), by_id  # newest first
    assert res.is_deleted is False
    # id mode also takes the id itself
    _, again = revs_of(dbx, r1.id, mode=files.ListRevisionsMode.id)
    assert again == by_id

    # path mode lists only what was written at that path
    _, by_path = revs_of(dbx, b)
    assert by_path[0] == r3.rev, by_path
    assert r1.rev not in by_path and r2.rev not in by_path, by_path
    # the old path still has its history, and its latest entry is gone (moved)
    old, old_revs = revs_of(dbx, a)
    assert old.is_deleted is True
    assert old_revs[:2] == [r2.rev, r1.rev], old_revs

    # before_rev is a path-mode option only
    err = api_error(
        dbx.files_list_revisions, b, mode=files.ListRevisionsMode.id, before_rev=r3.rev
    )
    assert isinstance(err, files.ListRevisionsError), err
    assert err.is_before_rev_not_supported(), err


def test_list_revisions_errors(dbx, base):
    f = dbx.files_upload(b"x", base + "/f.txt")
    other = dbx.files_upload(b"y", base + "/other.txt")
    dbx.files_create_folder_v2(base + "/dir")

    err = api_error(dbx.files_list_revisions, base + "/missing.txt")
    assert isinstance(err, files.ListRevisionsError), err
    assert err.is_path() and err.get_path().is_not_found(), err
    err = api_error(dbx.files_list_revisions, base + "/dir")
    assert err.is_path() and err.get_path().is_not_file(), err
    # a rev of another file is not a valid before_rev for this one
    err = api_error(dbx.files_list_revisions, base + "/f.txt", before_rev=other.rev)
    assert err.is_invalid_before_rev(), err
    _, revs = revs_of(dbx, base + "/f.txt")
    assert revs == [f.rev]


def test_list_revisions_of_deleted_file(dbx, base):
    path = base + "/gone.txt"
    a = dbx.files_upload(b"first", path)
    b = dbx.files_upload(b"second", path, mode=files.WriteMode.overwrite)
    dbx.files_delete_v2(path)
    r, revs = revs_of(dbx, path)
    assert r.is_deleted is True
    assert r.server_deleted is not None
    assert r.server_deleted >= b.server_modified
    assert revs == [b.rev, a.rev], revs  # deleted revisions are not listed


# ------------------------------------------------------------------------- restore


def test_restore_overwritten_file_byte_for_byte(dbx, base):
    path = base + "/doc.bin"
    old = rand(4 * MiB + 777)  # more than one block
    new = rand(100 * KiB + 3)
    v1 = dbx.files_upload(old, path)
    v2 = dbx.files_upload(new, path, mode=files.WriteMode.overwrite)
    assert body_of(dbx, path) == new

    md = dbx.files_restore(path, v1.rev)
    assert_file_md(md, path, old)
    assert md.rev not in (v1.rev, v2.rev), md.rev  # a new revision
    assert md.id == v1.id
    got = dbx.files_get_metadata(path)
    assert got.rev == md.rev and got.content_hash == content_hash(old)
    body = body_of(dbx, path)
    assert len(body) == len(old) and body == old

    _, revs = revs_of(dbx, path)
    assert revs == [md.rev, v2.rev, v1.rev], revs
    # the overwritten version is still there too
    assert body_of(dbx, "rev:" + v2.rev) == new

    # restoring to another path makes a file there with those bytes
    copy = dbx.files_restore(base + "/Elsewhere.bin", v2.rev)
    assert_file_md(copy, base + "/Elsewhere.bin", new)
    assert body_of(dbx, base + "/elsewhere.bin") == new
    assert body_of(dbx, path) == old


def test_restore_deleted_file_byte_for_byte(dbx, base):
    path = base + "/sub/Deleted.bin"
    data = rand(300 * KiB + 11)
    v1 = dbx.files_upload(b"earlier", path)
    v2 = dbx.files_upload(data, path, mode=files.WriteMode.overwrite)
    dbx.files_delete_v2(base + "/sub")  # deleted with its folder
    assert_gone(dbx, path)

    md = dbx.files_restore(path, v2.rev)
    assert_file_md(md, path, data)
    assert md.rev not in (v1.rev, v2.rev)
    assert body_of(dbx, path) == data
    assert isinstance(dbx.files_get_metadata(base + "/sub"), files.FolderMetadata)
    r, revs = revs_of(dbx, path)
    assert r.is_deleted is False and r.server_deleted is None
    assert revs[0] == md.rev and v2.rev in revs and v1.rev in revs, revs


def test_restore_errors(dbx, dbx2, base):
    path = base + "/r.txt"
    v1 = dbx.files_upload(b"one", path)
    dbx.files_upload(b"two", path, mode=files.WriteMode.overwrite)

    err = api_error(dbx.files_restore, path, UNKNOWN_REV)
    assert isinstance(err, files.RestoreError), err
    assert err.is_invalid_revision(), err
    assert body_of(dbx, path) == b"two"

    # a folder sits where the file would go
    dbx.files_create_folder_v2(base + "/dir")
    err = api_error(dbx.files_restore, base + "/dir", v1.rev)
    assert err.is_path_write(), err
    assert_conflict(err.get_path_write(), "folder")
    assert isinstance(dbx.files_get_metadata(base + "/dir"), files.FolderMetadata)

    # another account cannot restore alice's revision
    err = api_error(dbx2.files_restore, base + "/stolen.txt", v1.rev)
    assert err.is_invalid_revision(), err
    assert_gone(dbx2, base + "/stolen.txt")


# -------------------------------------------------------------- permanently_delete


def test_permanently_delete_file_purges_history(dbx, base):
    path = base + "/secret.txt"
    v1 = dbx.files_upload(b"secret one", path)
    v2 = dbx.files_upload(b"secret two", path, mode=files.WriteMode.overwrite)
    keep = dbx.files_upload(b"neighbour", base + "/keep.txt")

    assert dbx.files_permanently_delete(path) is None
    assert_gone(dbx, path)
    err = api_error(dbx.files_get_metadata, path, include_deleted=True)
    assert lookup_error(err).is_not_found(), err  # not even a tombstone
    err = api_error(dbx.files_list_revisions, path)
    assert err.is_path() and err.get_path().is_not_found(), err
    for rev in (v1.rev, v2.rev):
        err = api_error(dbx.files_restore, path, rev)
        assert err.is_invalid_revision(), (rev, err)
        api_error(dbx.files_download, "rev:" + rev)
    assert_gone(dbx, path)

    # again: nothing left to delete
    err = api_error(dbx.files_permanently_delete, path)
    assert isinstance(err, files.DeleteError), err
    assert err.is_path_lookup() and err.get_path_lookup().is_not_found(), err
    # the neighbour is untouched
    assert body_of(dbx, base + "/keep.txt") == b"neighbour"
    _, revs = revs_of(dbx, base + "/keep.txt")
    assert revs == [keep.rev]


def test_permanently_delete_already_deleted_folder(dbx, base):
    child = dbx.files_upload(b"kid", base + "/tree/deep/kid.txt")
    dbx.files_delete_v2(base + "/tree")
    _, revs = revs_of(dbx, base + "/tree/deep/kid.txt")
    assert revs == [child.rev]

    assert dbx.files_permanently_delete(base + "/tree") is None
    err = api_error(dbx.files_list_revisions, base + "/tree/deep/kid.txt")
    assert err.is_path() and err.get_path().is_not_found(), err
    err = api_error(dbx.files_restore, base + "/tree/deep/kid.txt", child.rev)
    assert err.is_invalid_revision(), err
    err = api_error(dbx.files_get_metadata, base + "/tree", include_deleted=True)
    assert lookup_error(err).is_not_found(), err

    err = api_error(dbx.files_permanently_delete, base + "/never-was")
    assert err.is_path_lookup() and err.get_path_lookup().is_not_found(), err


# ------------------------------------------------------------------------- batches


def test_copy_batch_v2_mixed_entries(dbx, base):
    data = rand(50 * KiB + 1)
    a = dbx.files_upload(data, base + "/src/a.bin")
    dbx.files_upload(b"leaf", base + "/src/dir/leaf.txt")
    dbx.files_upload(b"occupied", base + "/dst/taken.txt")
    dbx.files_upload(b"mine", base + "/src/mine.txt")

    launch = dbx.files_copy_batch_v2([
        Rel(base + "/src/a.bin", base + "/dst/A copy.bin"),
        Rel(base + "/src/ghost.txt", base + "/dst/ghost.txt"),
        Rel(base + "/src/dir", base + "/dst/dir"),
        Rel(base + "/src/mine.txt", base + "/dst/taken.txt"),
    ])
    assert isinstance(launch, files.RelocationBatchV2Launch), launch
    entries = batch_entries(launch, dbx.files_copy_batch_check_v2)
    assert len(entries) == 4, entries

    md = relocation_success(entries[0])
    assert isinstance(md, files.FileMetadata), md
    assert md.path_display == base + "/dst/A copy.bin"
    assert md.id != a.id and md.content_hash == a.content_hash
    assert body_of(dbx, base + "/dst/a copy.bin") == data
    assert body_of(dbx, base + "/src/a.bin") == data

    err = relocation_failure(entries[1])
    assert err.is_from_lookup() and err.get_from_lookup().is_not_found(), err
    assert_gone(dbx, base + "/dst/ghost.txt")

    md = relocation_success(entries[2])
    assert isinstance(md, files.FolderMetadata), md
    assert md.path_display == base + "/dst/dir"
    assert body_of(dbx, base + "/dst/dir/leaf.txt") == b"leaf"
    assert body_of(dbx, base + "/src/dir/leaf.txt") == b"leaf"

    err = relocation_failure(entries[3])
    assert err.is_to(), err
    assert_conflict(err.get_to(), "file")
    assert body_of(dbx, base + "/dst/taken.txt") == b"occupied"

    if launch.is_async_job_id():
        # a finished job keeps answering complete
        again = dbx.files_copy_batch_check_v2(launch.get_async_job_id())
        assert again.is_complete() and len(again.get_complete().entries) == 4, again


def test_move_batch_v2_mixed_entries_and_autorename(dbx, base):
    one = dbx.files_upload(b"one", base + "/one.txt")
    folder = dbx.files_create_folder_v2(base + "/Folder").metadata
    kid = dbx.files_upload(b"kid", base + "/Folder/kid.txt")
    dbx.files_upload(b"two", base + "/two.txt")
    dbx.files_upload(b"occupied", base + "/out/two.txt")

    launch = dbx.files_move_batch_v2(
        [
            Rel(base + "/one.txt", base + "/out/Uno.txt"),
            Rel(base + "/nothing-here", base + "/out/nothing"),
            Rel(base + "/Folder", base + "/out/Moved"),
            Rel(base + "/two.txt", base + "/out/two.txt"),
        ],
        autorename=True,
    )
    assert isinstance(launch, files.RelocationBatchV2Launch), launch
    entries = batch_entries(launch, dbx.files_move_batch_check_v2)
    assert len(entries) == 4, entries

    md = relocation_success(entries[0])
    assert isinstance(md, files.FileMetadata) and md.id == one.id, md
    assert md.path_display == base + "/out/Uno.txt"
    assert_gone(dbx, base + "/one.txt")
    assert body_of(dbx, base + "/out/uno.txt") == b"one"

    err = relocation_failure(entries[1])
    assert err.is_from_lookup() and err.get_from_lookup().is_not_found(), err

    md = relocation_success(entries[2])
    assert isinstance(md, files.FolderMetadata) and md.id == folder.id, md
    assert_gone(dbx, base + "/Folder")
    assert dbx.files_get_metadata(kid.id).path_lower == (base + "/out/moved/kid.txt").lower()

    md = relocation_success(entries[3])  # autorenamed around the occupied name
    assert md.path_lower != (base + "/out/two.txt").lower(), md.path_lower
    assert md.name.startswith("two (") and md.name.endswith(").txt"), md.name
    assert body_of(dbx, md.path_lower) == b"two"
    assert body_of(dbx, base + "/out/two.txt") == b"occupied"
    assert_gone(dbx, base + "/two.txt")


def test_delete_batch_mixed_entries(dbx, base):
    f = dbx.files_upload(b"bye", base + "/f.txt")
    dbx.files_upload(b"x", base + "/dir/x.txt")
    stale = dbx.files_upload(b"v1", base + "/stale.txt")
    dbx.files_upload(b"v2", base + "/stale.txt", mode=files.WriteMode.overwrite)

    launch = dbx.files_delete_batch([
        files.DeleteArg(base + "/F.txt"),
        files.DeleteArg(base + "/missing.txt"),
        files.DeleteArg(base + "/dir"),
        files.DeleteArg(base + "/stale.txt", parent_rev=stale.rev),
    ])
    assert isinstance(launch, files.DeleteBatchLaunch), launch
    entries = batch_entries(launch, dbx.files_delete_batch_check)
    assert len(entries) == 4, entries
    assert all(isinstance(e, files.DeleteBatchResultEntry) for e in entries), entries

    assert entries[0].is_success(), entries[0]
    md = entries[0].get_success().metadata
    assert isinstance(md, files.FileMetadata), md  # as it was, not DeletedMetadata
    assert md.id == f.id and md.rev == f.rev
    assert_gone(dbx, base + "/f.txt")

    assert entries[1].is_failure(), entries[1]
    e1 = entries[1].get_failure()
    assert isinstance(e1, files.DeleteError), e1
    assert e1.is_path_lookup() and e1.get_path_lookup().is_not_found(), e1

    assert entries[2].is_success(), entries[2]
    assert isinstance(entries[2].get_success().metadata, files.FolderMetadata)
    assert_gone(dbx, base + "/dir")
    assert_gone(dbx, base + "/dir/x.txt")

    assert entries[3].is_failure(), entries[3]  # parent_rev mismatch
    assert body_of(dbx, base + "/stale.txt") == b"v2"


def test_create_folder_batch_sync_and_async(dbx, base):
    dbx.files_upload(b"a file", base + "/file")
    launch = dbx.files_create_folder_batch(
        [base + "/New", base + "/deep/er/Nested", base + "/file"]
    )
    assert isinstance(launch, files.CreateFolderBatchLaunch), launch
    assert launch.is_complete(), launch  # small and not forced: synchronous
    entries = launch.get_complete().entries
    assert len(entries) == 3, entries
    for e, p in zip(entries[:2], (base + "/New", base + "/deep/er/Nested")):
        assert isinstance(e, files.CreateFolderBatchResultEntry), e
        assert e.is_success(), e
        md = e.get_success().metadata
        assert isinstance(md, files.FolderMetadata) and md.path_display == p, md
        got = dbx.files_get_metadata(p)
        assert isinstance(got, files.FolderMetadata) and got.id == md.id
    assert entries[2].is_failure(), entries[2]
    f = entries[2].get_failure()
    assert isinstance(f, files.CreateFolderEntryError) and f.is_path(), f
    assert_conflict(f.get_path(), "file")
    assert body_of(dbx, base + "/file") == b"a file"

    launch = dbx.files_create_folder_batch(
        [base + "/Async One", base + "/New"], force_async=True
    )
    assert launch.is_async_job_id(), launch
    status = wait_job(dbx.files_create_folder_batch_check, launch.get_async_job_id())
    assert isinstance(status, files.CreateFolderBatchJobStatus), status
    assert status.is_complete(), status
    entries = status.get_complete().entries
    assert len(entries) == 2, entries
    assert entries[0].is_success(), entries[0]
    assert entries[0].get_success().metadata.path_display == base + "/Async One"
    assert isinstance(dbx.files_get_metadata(base + "/async one"), files.FolderMetadata)
    assert entries[1].is_failure(), entries[1]
    assert_conflict(entries[1].get_failure().get_path(), "folder")


def test_batch_checks_reject_unknown_and_foreign_job_ids(dbx, dbx2, base):
    bogus = "no-such-job-" + uuid.uuid4().hex
    for check in (
        dbx.files_copy_batch_check_v2,
        dbx.files_move_batch_check_v2,
        dbx.files_delete_batch_check,
        dbx.files_create_folder_batch_check,
    ):
        err = api_error(check, bogus)
        assert err.is_invalid_async_job_id(), (check.__name__, err)

    launch = dbx.files_create_folder_batch([base + "/mine"], force_async=True)
    assert launch.is_async_job_id(), launch
    job = launch.get_async_job_id()
    err = api_error(dbx2.files_create_folder_batch_check, job)
    assert err.is_invalid_async_job_id(), err
    status = wait_job(dbx.files_create_folder_batch_check, job)
    assert status.is_complete(), status
    err = api_error(dbx2.files_create_folder_batch_check, job)
    assert err.is_invalid_async_job_id(), err


# ------------------------------------------------------------------------- search


def search_all(dbx, query, **options):
    """search_v2 + continue_v2 until has_more is false; returns (matches, pages)."""
    opts = files.SearchOptions(**options) if options else None
    r = dbx.files_search_v2(query, options=opts)
    assert isinstance(r, files.SearchV2Result), r
    matches = list(r.matches)
    pages = 1
    while r.has_more:
        assert r.cursor, r
        r = dbx.files_search_continue_v2(r.cursor)
        matches.extend(r.matches)
        pages += 1
        assert pages < 100, "search never finished"
    return matches, pages


def match_md(m):
    assert isinstance(m, files.SearchMatchV2), m
    assert m.metadata.is_metadata(), m.metadata
    if m.match_type is not None:
        assert m.match_type.is_filename(), m.match_type
    return m.metadata.get_metadata()


def found(matches):
    return {match_md(m).path_lower for m in matches}


@pytest.fixture
def search_tree(dbx, base):
    tag = "zq" + uuid.uuid4().hex[:10]
    paths = {
        "pdf": base + "/Quarterly Report {}.pdf".format(tag),
        "draft": base + "/docs/report-{}-draft.TXT".format(tag),
        "notes": base + "/docs/Notes {}.txt".format(tag),
        "photo": base + "/pics/Photo_{}.JPG".format(tag),
        "gone": base + "/Gone report {}.txt".format(tag),
        "plain": base + "/report.txt",
    }
    for k, p in paths.items():
        dbx.files_upload(k.encode(), p)
    folder = dbx.files_create_folder_v2(base + "/Reports {}".format(tag)).metadata
    paths["folder"] = folder.path_display
    dbx.files_delete_v2(paths["gone"])
    lower = {k: v.lower() for k, v in paths.items()}
    return tag, lower


def test_search_every_token_must_match_the_name(dbx, base, search_tree):
    tag, p = search_tree
    matches, _ = search_all(dbx, "REPORT " + tag, path=base)
    assert found(matches) == {p["pdf"], p["draft"], p["folder"]}, found(matches)
    for m in matches:
        md = match_md(m)
        if md.path_lower == p["folder"]:
            assert isinstance(md, files.FolderMetadata), md
        else:
            assert isinstance(md, files.FileMetadata), md
            assert md.content_hash and REV_RE.match(md.rev)
    # token order does not matter; a single token matches by substring
    matches, _ = search_all(dbx, tag + " report", path=base)
    assert found(matches) == {p["pdf"], p["draft"], p["folder"]}
    matches, _ = search_all(dbx, tag, path=base)
    assert found(matches) == {p["pdf"], p["draft"], p["notes"], p["photo"], p["folder"]}
    matches, _ = search_all(dbx, "nothing-matches-" + tag, path=base)
    assert matches == []


def test_search_scope_and_filters(dbx, dbx2, base, search_tree):
    tag, p = search_tree
    # scope: only below the given folder (and by default the whole Dropbox)
    matches, _ = search_all(dbx, tag, path=base + "/docs")
    assert found(matches) == {p["draft"], p["notes"]}, found(matches)
    matches, _ = search_all(dbx, tag)
    assert found(matches) == {p["pdf"], p["draft"], p["notes"], p["photo"], p["folder"]}
    # extensions and categories
    matches, _ = search_all(dbx, tag, path=base, file_extensions=["pdf"])
    assert found(matches) == {p["pdf"]}, found(matches)
    matches, _ = search_all(dbx, tag, path=base, file_extensions=["txt", "jpg"])
    assert found(matches) == {p["draft"], p["notes"], p["photo"]}, found(matches)
    matches, _ = search_all(dbx, tag, path=base, file_categories=[files.FileCategory.folder])
    assert found(matches) == {p["folder"]}, found(matches)
    matches, _ = search_all(dbx, tag, path=base, file_categories=[files.FileCategory.image])
    assert found(matches) == {p["photo"]}, found(matches)
    matches, _ = search_all(dbx, tag, path=base, file_categories=[files.FileCategory.pdf])
    assert found(matches) == {p["pdf"]}, found(matches)
    # deleted items only with file_status=deleted
    matches, _ = search_all(dbx, "gone " + tag, path=base)
    assert matches == []
    matches, _ = search_all(dbx, "gone " + tag, path=base, file_status=files.FileStatus.deleted)
    assert found(matches) == {p["gone"]}, found(matches)
    assert isinstance(match_md(matches[0]), files.DeletedMetadata), matches[0]
    matches, _ = search_all(dbx, tag, path=base, file_status=files.FileStatus.deleted)
    assert found(matches) == {p["gone"]}, found(matches)
    # another account sees none of it
    matches, _ = search_all(dbx2, tag)
    assert matches == []


def test_search_missing_scope_is_path_not_found(dbx, base):
    dbx.files_upload(b"x", base + "/present.txt")
    err = api_error(dbx.files_search_v2, "present", options=files.SearchOptions(path=base + "/nope"))
    assert isinstance(err, files.SearchError), err
    assert err.is_path() and err.get_path().is_not_found(), err


def test_search_paging_with_cursor(dbx, base, search_tree):
    tag, p = search_tree
    first = dbx.files_search_v2(tag, options=files.SearchOptions(path=base, max_results=2))
    assert len(first.matches) == 2, first
    assert first.has_more is True and first.cursor, first
    matches, pages = search_all(dbx, tag, path=base, max_results=2)
    assert pages == 3, pages
    paths = [match_md(m).path_lower for m in matches]
    assert len(paths) == 5 and set(paths) == {
        p["pdf"], p["draft"], p["notes"], p["photo"], p["folder"]
    }, paths
    matches, pages = search_all(dbx, tag, path=base, max_results=5)
    assert pages == 1 and len(matches) == 5


# ----------------------------------------------------------------- temporary links


def test_get_temporary_link_serves_bytes_without_auth(dbx, base, http):
    data = rand(200 * KiB + 9)
    up = dbx.files_upload(data, base + "/Clip Name.txt")
    r = dbx.files_get_temporary_link(base + "/clip name.txt")
    assert isinstance(r, files.GetTemporaryLinkResult), r
    assert_file_md(r.metadata, base + "/Clip Name.txt", data)
    assert r.metadata.rev == up.rev and r.metadata.id == up.id
    assert isinstance(r.link, str) and r.link.startswith("http"), r.link

    resp = http.get(r.link, timeout=30)  # no Authorization header
    assert resp.status_code == 200, (resp.status_code, resp.text[:200])
    assert resp.headers.get("Content-Type", "").startswith("text/plain"), resp.headers
    assert len(resp.content) == len(data) and resp.content == data

    resp = http.get(r.link, headers={"Range": "bytes=100-4195"}, timeout=30)
    assert resp.status_code == 206, resp.status_code
    assert resp.content == data[100:4196]
    assert resp.headers.get("Content-Range") == "bytes 100-4195/{}".format(len(data))
    resp = http.get(r.link, headers={"Range": "bytes=-10"}, timeout=30)
    assert resp.status_code == 206 and resp.content == data[-10:]

    # a tampered link serves nothing
    cut = r.link.rindex("/")
    start = r.link.rindex("/", 0, cut) + 1
    mid = (start + cut) // 2  # a character in the middle of the link's token
    bad = r.link[:mid] + ("A" if r.link[mid] != "A" else "B") + r.link[mid + 1:]
    resp = http.get(bad, timeout=30)
    assert resp.status_code >= 400 and resp.content != data, resp.status_code


def test_get_temporary_link_errors(dbx, base):
    dbx.files_create_folder_v2(base + "/dir")
    err = api_error(dbx.files_get_temporary_link, base + "/missing.bin")
    assert isinstance(err, files.GetTemporaryLinkError), err
    assert err.is_path() and err.get_path().is_not_found(), err
    err = api_error(dbx.files_get_temporary_link, base + "/dir")
    assert err.is_path() and err.get_path().is_not_file(), err


def test_temporary_upload_link_one_time(dbx, base, http):
    path = base + "/Via Link.bin"
    data = rand(1 * MiB + 3)
    r = dbx.files_get_temporary_upload_link(CommitInfo(path), duration=3600)
    assert isinstance(r, files.GetTemporaryUploadLinkResult), r
    assert isinstance(r.link, str) and r.link.startswith("http"), r.link
    assert_gone(dbx, path)  # nothing happens until the link is used

    octet = {"Content-Type": "application/octet-stream"}
    resp = http.post(r.link, data=data, headers=octet, timeout=60)
    assert resp.status_code == 200, (resp.status_code, resp.text)
    assert resp.json() == {"content-hash": content_hash(data)}, resp.text

    md = dbx.files_get_metadata(path)
    assert_file_md(md, path, data)
    assert body_of(dbx, path) == data

    resp = http.post(r.link, data=b"second time", headers=octet, timeout=60)
    assert resp.status_code == 410, (resp.status_code, resp.text)
    assert dbx.files_get_metadata(path).rev == md.rev
    assert body_of(dbx, path) == data


def test_temporary_upload_link_failures(dbx, base, http):
    octet = {"Content-Type": "application/octet-stream"}
    # the commit is evaluated when the link is used: a file that appeared meanwhile
    # makes an add-mode upload fail with 409, and nothing is overwritten
    path = base + "/later.txt"
    link = dbx.files_get_temporary_upload_link(CommitInfo(path)).link
    dbx.files_upload(b"got here first", path)
    resp = http.post(link, data=b"too late", headers=octet, timeout=60)
    assert resp.status_code == 409, (resp.status_code, resp.text)
    assert body_of(dbx, path) == b"got here first"

    # a wrong Content-Type is a 400, and writes nothing
    path2 = base + "/typed.txt"
    link = dbx.files_get_temporary_upload_link(CommitInfo(path2), duration=60).link
    resp = http.post(
        link, data=b"{}", headers={"Content-Type": "application/json"}, timeout=60
    )
    assert resp.status_code == 400, (resp.status_code, resp.text)
    assert_gone(dbx, path2)

    # an overwrite-mode link replaces the file
    link = dbx.files_get_temporary_upload_link(
        CommitInfo(path, mode=files.WriteMode.overwrite)
    ).link
    resp = http.post(link, data=b"replaced", headers={"Content-Type": "text/plain"}, timeout=60)
    assert resp.status_code == 200, (resp.status_code, resp.text)
    assert resp.json()["content-hash"] == content_hash(b"replaced")
    assert body_of(dbx, path) == b"replaced"


# -------------------------------------------------------------------- download_zip


def test_download_zip_folder(dbx, base):
    contents = {
        "a.txt": b"alpha\n",
        "sub/b.bin": rand(4 * MiB + 321),
        "sub/deeper/Empty.dat": b"",
    }
    for rel, data in contents.items():
        dbx.files_upload(data, base + "/Album/" + rel)
    dbx.files_create_folder_v2(base + "/Album/hollow")
    dbx.files_upload(b"not in the zip", base + "/Album2/x.txt")  # sibling with a shared prefix
    dbx.files_upload(b"outside", base + "/outside.txt")

    res, resp = dbx.files_download_zip(base + "/album")
    try:
        body = resp.content
    finally:
        resp.close()
    assert isinstance(res, files.DownloadZipResult), res
    md = res.metadata
    assert isinstance(md, files.FolderMetadata), md
    assert md.name == "Album" and md.path_display == base + "/Album", md

    zf = zipfile.ZipFile(io.BytesIO(body))
    assert zf.testzip() is None  # every CRC checks out
    names = zf.namelist()
    assert len(names) == len(set(names)), names
    assert all(n == "Album/" or n.startswith("Album/") for n in names), names
    got = {n: zf.read(n) for n in names if not n.endswith("/")}
    assert got == {"Album/" + k: v for k, v in contents.items()}, sorted(got)
    dirs = {n for n in names if n.endswith("/")}
    assert "Album/hollow/" in dirs, names  # an empty folder survives


def test_download_zip_errors(dbx, base):
    dbx.files_upload(b"single", base + "/single.txt")
    err = api_error(dbx.files_download_zip, base + "/single.txt")
    assert isinstance(err, files.DownloadZipError), err
    assert err.is_path() and err.get_path().is_not_folder(), err
    err = api_error(dbx.files_download_zip, base + "/no-such-folder")
    assert err.is_path() and err.get_path().is_not_found(), err
