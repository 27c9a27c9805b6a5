"""files/upload_session/*: sequential and concurrent sessions through the SDK, offset
and lookup errors, the SDK's transfer helper, start_batch + finish_batch, and a session
resumed across a server restart."""

import datetime
import json
import threading

import pytest
import requests
from dropbox import file_transfer, files
from dropbox.exceptions import ApiError

from cubby_helpers import api_error, assert_conflict, assert_file_md, content_hash, download_bytes, rand
from cubby_server import Server, cubby_bin, free_port

KiB = 1024
MiB = 1024 * KiB
BLOCK = 4 * MiB  # the concurrent-session alignment (2^22)

Cursor = files.UploadSessionCursor
CommitInfo = files.CommitInfo
CONCURRENT = files.UploadSessionType.concurrent


def assert_stored(dbx, path, data):
    """The file at path has exactly data: metadata, SDK hasher and downloaded bytes."""
    md = dbx.files_get_metadata(path)
    assert_file_md(md, data=data)
    dmd, body = download_bytes(dbx, path)
    assert dmd.size == len(data) and dmd.content_hash == content_hash(data)
    assert len(body) == len(data)
    assert body == data
    return md


def append_error(err):
    assert isinstance(err, files.UploadSessionAppendError), err
    return err


def lookup_failed(err):
    """UploadSessionFinishError.lookup_failed -> UploadSessionLookupError."""
    assert isinstance(err, files.UploadSessionFinishError), err
    assert err.is_lookup_failed(), err
    lk = err.get_lookup_failed()
    assert isinstance(lk, files.UploadSessionLookupError), lk
    return lk


def correct_offset(err):
    assert err.is_incorrect_offset(), err
    return err.get_incorrect_offset().correct_offset


def start_concurrent(dbx):
    sid = dbx.files_upload_session_start(b"", session_type=CONCURRENT).session_id
    assert sid
    return sid


# --- 1. sequential sessions end to end ------------------------------------------------


def test_sequential_session_unaligned_chunks_end_to_end(dbx, base):
    # ~13.6 MB in chunks that are not multiples of 4 MiB: 1 MiB, 5 MiB, 3.5 MiB, rest.
    data = rand(13 * MiB + 654321)
    path = base + "/Seq Big.bin"
    cm = datetime.datetime(2021, 6, 7, 8, 9, 10)
    cuts = [0, 1 * MiB, 6 * MiB, 6 * MiB + 7 * MiB // 2, len(data)]

    sid = dbx.files_upload_session_start(data[cuts[0]:cuts[1]]).session_id
    assert isinstance(sid, str) and sid
    for a, b in zip(cuts[1:-2], cuts[2:-1]):
        assert dbx.files_upload_session_append_v2(data[a:b], Cursor(sid, a)) is None
    md = dbx.files_upload_session_finish(
        data[cuts[-2]:], Cursor(sid, cuts[-2]), CommitInfo(path, client_modified=cm)
    )
    assert_file_md(md, path, data)
    assert md.client_modified == cm
    assert md.size == len(data) and md.content_hash == content_hash(data)
    got = assert_stored(dbx, path, data)
    assert got.rev == md.rev and got.id == md.id


def test_sequential_odd_chunks_empty_start_and_v1_append(dbx, base):
    # Tiny, odd and empty chunks, mixing the deprecated v1 append with append_v2.
    data = rand(5 * MiB + 3)
    sid = dbx.files_upload_session_start(b"").session_id
    cuts = [0, 1, 1, 4097, 4 * MiB - 1, 4 * MiB + 1, 5 * MiB]
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        if i % 2:
            dbx.files_upload_session_append(data[a:b], sid, a)
        else:
            dbx.files_upload_session_append_v2(data[a:b], Cursor(sid, a))
    md = dbx.files_upload_session_finish(
        data[cuts[-1]:], Cursor(sid, cuts[-1]), CommitInfo(base + "/odd.bin")
    )
    assert_file_md(md, base + "/odd.bin", data)
    assert_stored(dbx, base + "/odd.bin", data)


def test_empty_session_makes_empty_file(dbx, base):
    sid = dbx.files_upload_session_start(b"", close=True).session_id
    md = dbx.files_upload_session_finish(b"", Cursor(sid, 0), CommitInfo(base + "/empty"))
    assert md.size == 0
    assert md.content_hash == content_hash(b"")
    assert download_bytes(dbx, base + "/empty")[1] == b""


def test_finish_of_a_closed_session_with_empty_body(dbx, base):
    data = rand(300 * KiB + 1)
    sid = dbx.files_upload_session_start(data[:1000]).session_id
    dbx.files_upload_session_append_v2(data[1000:], Cursor(sid, 1000), close=True)
    md = dbx.files_upload_session_finish(
        b"", Cursor(sid, len(data)), CommitInfo(base + "/closed.bin")
    )
    assert_file_md(md, base + "/closed.bin", data)
    assert_stored(dbx, base + "/closed.bin", data)


# --- 2. offset and lookup errors as the SDK decodes them --------------------------------


def test_append_at_wrong_offset_is_incorrect_offset(dbx, base):
    data = rand(100 * KiB + 17)
    first = 10 * KiB + 3
    sid = dbx.files_upload_session_start(data[:first]).session_id
    for bad in (0, first - 1, first + 1, first + 10 * MiB):
        err = append_error(
            api_error(dbx.files_upload_session_append_v2, data[first:], Cursor(sid, bad))
        )
        assert correct_offset(err) == first, (bad, err)
    # same through the v1 route
    err = append_error(api_error(dbx.files_upload_session_append, b"zz", sid, 5))
    assert correct_offset(err) == first
    # the rejected bytes were not taken: the session resumes at the correct offset
    dbx.files_upload_session_append_v2(data[first:50 * KiB], Cursor(sid, first))
    err = append_error(api_error(dbx.files_upload_session_append_v2, b"x", Cursor(sid, first)))
    assert correct_offset(err) == 50 * KiB
    md = dbx.files_upload_session_finish(
        data[50 * KiB:], Cursor(sid, 50 * KiB), CommitInfo(base + "/resync.bin")
    )
    assert_file_md(md, base + "/resync.bin", data)
    assert_stored(dbx, base + "/resync.bin", data)


def test_finish_at_wrong_offset_is_lookup_failed_incorrect_offset(dbx, base):
    data = rand(70 * KiB)
    sid = dbx.files_upload_session_start(data[:30 * KiB]).session_id
    path = base + "/fin-off.bin"
    for bad in (0, 30 * KiB - 1, 30 * KiB + 1):
        err = api_error(
            dbx.files_upload_session_finish, data[30 * KiB:], Cursor(sid, bad), CommitInfo(path)
        )
        assert correct_offset(lookup_failed(err)) == 30 * KiB, (bad, err)
    with pytest.raises(ApiError):
        dbx.files_get_metadata(path)
    # nothing was appended or committed by the failed finishes
    md = dbx.files_upload_session_finish(
        data[30 * KiB:], Cursor(sid, 30 * KiB), CommitInfo(path)
    )
    assert_file_md(md, path, data)
    assert_stored(dbx, path, data)


def test_append_after_close_is_closed(dbx, base):
    sid = dbx.files_upload_session_start(b"abc").session_id
    dbx.files_upload_session_append_v2(b"def", Cursor(sid, 3), close=True)
    err = append_error(api_error(dbx.files_upload_session_append_v2, b"g", Cursor(sid, 6)))
    assert err.is_closed(), err
    # a session started closed is closed too
    sid2 = dbx.files_upload_session_start(b"xyz", close=True).session_id
    err = append_error(api_error(dbx.files_upload_session_append_v2, b"!", Cursor(sid2, 3)))
    assert err.is_closed(), err
    # and finish still commits exactly the bytes sent before close
    md = dbx.files_upload_session_finish(b"", Cursor(sid, 6), CommitInfo(base + "/abc"))
    assert_file_md(md, base + "/abc", b"abcdef")
    assert download_bytes(dbx, base + "/abc")[1] == b"abcdef"


def test_unknown_session_is_not_found(dbx, base):
    ghost = "nonexistent-session-0123456789abcdef"
    err = append_error(api_error(dbx.files_upload_session_append_v2, b"x", Cursor(ghost, 0)))
    assert err.is_not_found(), err
    err = append_error(api_error(dbx.files_upload_session_append, b"x", ghost, 0))
    assert err.is_not_found(), err
    err = api_error(
        dbx.files_upload_session_finish, b"x", Cursor(ghost, 0), CommitInfo(base + "/ghost")
    )
    assert lookup_failed(err).is_not_found(), err
    with pytest.raises(ApiError):
        dbx.files_get_metadata(base + "/ghost")


def test_session_of_another_account_is_not_found(dbx, dbx2, base):
    sid = dbx.files_upload_session_start(b"alice's").session_id
    err = append_error(api_error(dbx2.files_upload_session_append_v2, b"x", Cursor(sid, 7)))
    assert err.is_not_found(), err
    err = api_error(
        dbx2.files_upload_session_finish, b"", Cursor(sid, 7), CommitInfo(base + "/stolen")
    )
    assert lookup_failed(err).is_not_found(), err
    with pytest.raises(ApiError):
        dbx2.files_get_metadata(base + "/stolen")
    # still alice's, untouched
    md = dbx.files_upload_session_finish(b"!", Cursor(sid, 7), CommitInfo(base + "/mine"))
    assert_file_md(md, base + "/mine", b"alice's!")


def test_finish_twice_is_lookup_failed_not_found(dbx, base):
    sid = dbx.files_upload_session_start(b"once").session_id
    md = dbx.files_upload_session_finish(b"", Cursor(sid, 4), CommitInfo(base + "/once"))
    assert_file_md(md, base + "/once", b"once")
    err = api_error(
        dbx.files_upload_session_finish, b"", Cursor(sid, 4), CommitInfo(base + "/twice")
    )
    assert lookup_failed(err).is_not_found(), err
    err = append_error(api_error(dbx.files_upload_session_append_v2, b"x", Cursor(sid, 4)))
    assert err.is_not_found(), err
    with pytest.raises(ApiError):
        dbx.files_get_metadata(base + "/twice")


def test_append_content_hash_mismatch_takes_nothing(dbx, base):
    sid = dbx.files_upload_session_start(b"head").session_id
    err = append_error(
        api_error(
            dbx.files_upload_session_append_v2, b"body", Cursor(sid, 4), content_hash="0" * 64
        )
    )
    assert err.is_content_hash_mismatch(), err
    dbx.files_upload_session_append_v2(b"body", Cursor(sid, 4), content_hash=content_hash(b"body"))
    md = dbx.files_upload_session_finish(b"", Cursor(sid, 8), CommitInfo(base + "/hb"))
    assert_file_md(md, base + "/hb", b"headbody")


def test_finish_path_conflict_keeps_session_for_retry(dbx, base):
    path = base + "/taken.txt"
    dbx.files_upload(b"old", path)
    data = rand(200 * KiB + 5)
    sid = dbx.files_upload_session_start(data[:1000]).session_id
    err = api_error(
        dbx.files_upload_session_finish, data[1000:], Cursor(sid, 1000), CommitInfo(path)
    )
    assert isinstance(err, files.UploadSessionFinishError) and err.is_path(), err
    assert_conflict(err.get_path(), "file")
    assert download_bytes(dbx, path)[1] == b"old"
    # the finish body was appended: retry with an empty body at the full length
    md = dbx.files_upload_session_finish(
        b"", Cursor(sid, len(data)), CommitInfo(path, mode=files.WriteMode.overwrite)
    )
    assert_file_md(md, path, data)
    assert_stored(dbx, path, data)


# --- 3. concurrent sessions -----------------------------------------------------------


def test_concurrent_session_out_of_order(dbx, base):
    data = rand(2 * BLOCK + 123457)
    sid = start_concurrent(dbx)
    # last chunk (any length, close=True) first, then the middle, then the first
    dbx.files_upload_session_append_v2(data[2 * BLOCK:], Cursor(sid, 2 * BLOCK), close=True)
    dbx.files_upload_session_append_v2(data[BLOCK:2 * BLOCK], Cursor(sid, BLOCK))
    dbx.files_upload_session_append_v2(data[:BLOCK], Cursor(sid, 0))
    path = base + "/conc.bin"
    md = dbx.files_upload_session_finish(b"", Cursor(sid, len(data)), CommitInfo(path))
    assert_file_md(md, path, data)
    assert_stored(dbx, path, data)


def test_concurrent_start_errors(dbx):
    err = api_error(dbx.files_upload_session_start, b"data", session_type=CONCURRENT)
    assert isinstance(err, files.UploadSessionStartError), err
    assert err.is_concurrent_session_data_not_allowed(), err
    err = api_error(dbx.files_upload_session_start, b"", close=True, session_type=CONCURRENT)
    assert isinstance(err, files.UploadSessionStartError), err
    assert err.is_concurrent_session_close_not_allowed(), err


def test_concurrent_invalid_offset(dbx):
    sid = start_concurrent(dbx)
    chunk = rand(BLOCK)
    for off in (1, MiB, BLOCK + 1, 3 * BLOCK // 2):
        err = append_error(api_error(dbx.files_upload_session_append_v2, chunk, Cursor(sid, off)))
        assert err.is_concurrent_session_invalid_offset(), (off, err)
    # also for the final chunk: only the length may be unaligned, not the offset
    err = append_error(
        api_error(dbx.files_upload_session_append_v2, b"tail", Cursor(sid, MiB), close=True)
    )
    assert err.is_concurrent_session_invalid_offset(), err


def test_concurrent_invalid_data_size(dbx, base):
    sid = start_concurrent(dbx)
    for size in (3 * MiB, BLOCK + 1, 1):
        err = append_error(
            api_error(dbx.files_upload_session_append_v2, rand(size), Cursor(sid, 0))
        )
        assert err.is_concurrent_session_invalid_data_size(), (size, err)
    # the rejected appends left nothing behind: an aligned chunk plus a close still work
    data = rand(BLOCK + 10)
    dbx.files_upload_session_append_v2(data[:BLOCK], Cursor(sid, 0))
    dbx.files_upload_session_append_v2(data[BLOCK:], Cursor(sid, BLOCK), close=True)
    md = dbx.files_upload_session_finish(b"", Cursor(sid, len(data)), CommitInfo(base + "/ds"))
    assert_file_md(md, base + "/ds", data)
    assert_stored(dbx, base + "/ds", data)


def test_concurrent_finish_not_closed(dbx, base):
    data = rand(BLOCK)
    sid = start_concurrent(dbx)
    dbx.files_upload_session_append_v2(data, Cursor(sid, 0))
    path = base + "/nc.bin"
    err = api_error(dbx.files_upload_session_finish, b"", Cursor(sid, BLOCK), CommitInfo(path))
    assert isinstance(err, files.UploadSessionFinishError), err
    assert err.is_concurrent_session_not_closed(), err
    with pytest.raises(ApiError):
        dbx.files_get_metadata(path)
    # closing with an empty final chunk makes it finishable
    dbx.files_upload_session_append_v2(b"", Cursor(sid, BLOCK), close=True)
    md = dbx.files_upload_session_finish(b"", Cursor(sid, BLOCK), CommitInfo(path))
    assert_file_md(md, path, data)


def test_concurrent_finish_missing_data(dbx, base):
    data = rand(2 * BLOCK + 99)
    sid = start_concurrent(dbx)
    dbx.files_upload_session_append_v2(data[2 * BLOCK:], Cursor(sid, 2 * BLOCK), close=True)
    dbx.files_upload_session_append_v2(data[:BLOCK], Cursor(sid, 0))
    path = base + "/md.bin"
    err = api_error(
        dbx.files_upload_session_finish, b"", Cursor(sid, len(data)), CommitInfo(path)
    )
    assert isinstance(err, files.UploadSessionFinishError), err
    assert err.is_concurrent_session_missing_data(), err
    with pytest.raises(ApiError):
        dbx.files_get_metadata(path)
    # filling the hole makes it finishable
    dbx.files_upload_session_append_v2(data[BLOCK:2 * BLOCK], Cursor(sid, BLOCK))
    md = dbx.files_upload_session_finish(b"", Cursor(sid, len(data)), CommitInfo(path))
    assert_file_md(md, path, data)
    assert_stored(dbx, path, data)


def test_concurrent_finish_with_data_not_allowed(dbx, base):
    sid = start_concurrent(dbx)
    dbx.files_upload_session_append_v2(b"tail", Cursor(sid, 0), close=True)
    err = api_error(
        dbx.files_upload_session_finish, b"more", Cursor(sid, 4), CommitInfo(base + "/fd")
    )
    assert isinstance(err, files.UploadSessionFinishError), err
    assert err.is_concurrent_session_data_not_allowed(), err
    with pytest.raises(ApiError):
        dbx.files_get_metadata(base + "/fd")


# --- 4. the SDK's transfer helper (dropbox.file_transfer.Uploader) ---------------------


class RecordingClient(object):
    """Delegates to a Dropbox client and records the upload-session calls made."""

    def __init__(self, dbx):
        self._dbx = dbx
        self.lock = threading.Lock()
        self.calls = []

    def files_upload_session_start(self, f, **kw):
        with self.lock:
            self.calls.append(("start", len(f), kw.get("session_type")))
        return self._dbx.files_upload_session_start(f, **kw)

    def files_upload_session_append_v2(self, f, cursor, close=False, **kw):
        with self.lock:
            self.calls.append(("append", cursor.offset, len(f), close))
        return self._dbx.files_upload_session_append_v2(f, cursor, close=close, **kw)

    def files_upload_session_finish(self, f, cursor, commit, **kw):
        with self.lock:
            self.calls.append(("finish", cursor.offset, len(f)))
        return self._dbx.files_upload_session_finish(f, cursor, commit, **kw)

    def __getattr__(self, name):
        return getattr(self._dbx, name)


def test_sdk_parallel_uploader(dbx, base):
    chunk = file_transfer.UPLOAD_CHUNK_SIZE
    assert chunk % BLOCK == 0, chunk
    data = rand(3 * chunk + 777)
    path = base + "/parallel.bin"
    client = RecordingClient(dbx)
    res = file_transfer.Uploader(client).upload(
        file_transfer.BytesUpload(data),
        CommitInfo(path),
        file_transfer.UploadOptions(parallel_uploads=4, max_attempts=1),
    )
    md = res.metadata
    assert_file_md(md, path, data)
    # the helper really took the concurrent path
    starts = [c for c in client.calls if c[0] == "start"]
    assert len(starts) == 1 and starts[0][2] == CONCURRENT, client.calls
    appends = sorted(c for c in client.calls if c[0] == "append")
    assert [(o, n) for _, o, n, _ in appends] == [
        (0, chunk), (chunk, chunk), (2 * chunk, chunk), (3 * chunk, 777)
    ], appends
    assert [c for _, _, _, c in appends] == [False, False, False, True]
    assert client.calls[-1] == ("finish", len(data), 0), client.calls
    assert_stored(dbx, path, data)


def test_sdk_sequential_uploader(dbx, base):
    # Without parallel_uploads the helper uses a sequential session: 8 MiB appends with
    # content_hash, the rest in finish.
    data = rand(file_transfer.UPLOAD_CHUNK_SIZE + 4321)
    path = base + "/helper-seq.bin"
    res = file_transfer.Uploader(dbx).upload(
        file_transfer.BytesUpload(data), CommitInfo(path),
        file_transfer.UploadOptions(max_attempts=1),
    )
    assert_file_md(res.metadata, path, data)
    assert_stored(dbx, path, data)


def test_parallel_appends_from_separate_clients(alice, new_client, dbx, base):
    # Emulates the parallel pattern with real simultaneity: every chunk's append is
    # released at once by a barrier, each from its own client (own connection pool).
    chunk = 8 * MiB
    n = 3
    data = rand(n * chunk + 4099)
    sid = start_concurrent(dbx)
    clients = [new_client(alice["access_token"]) for _ in range(n)]
    barrier = threading.Barrier(n)
    errors = []

    def worker(i):
        try:
            barrier.wait(10)
            off = i * chunk
            clients[i].files_upload_session_append_v2(data[off:off + chunk], Cursor(sid, off))
        except Exception as e:  # noqa: BLE001
            errors.append((i, e))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "an append did not return within 60 s"
    assert not errors, errors
    dbx.files_upload_session_append_v2(data[n * chunk:], Cursor(sid, n * chunk), close=True)
    path = base + "/threads.bin"
    md = dbx.files_upload_session_finish(b"", Cursor(sid, len(data)), CommitInfo(path))
    assert_file_md(md, path, data)
    assert_stored(dbx, path, data)


# --- 5. start_batch + finish_batch ------------------------------------------------------


def test_start_batch_and_finish_batch_v2_mixed(dbx, base):
    ids = dbx.files_upload_session_start_batch(4).session_ids
    assert len(ids) == 4 and len(set(ids)) == 4 and all(ids), ids
    ok_id, conflict_id, open_id, _spare = ids
    ghost = "nonexistent-batch-session-42"

    ok_data = rand(1 * MiB + 11)
    conflict_data = b"new content"
    open_data = b"not closed yet"
    dbx.files_upload_session_append_v2(ok_data, Cursor(ok_id, 0), close=True)
    dbx.files_upload_session_append_v2(conflict_data, Cursor(conflict_id, 0), close=True)
    dbx.files_upload_session_append_v2(open_data, Cursor(open_id, 0))
    taken = base + "/taken.txt"
    dbx.files_upload(b"old content", taken)

    Arg = files.UploadSessionFinishArg
    res = dbx.files_upload_session_finish_batch_v2([
        Arg(Cursor(ok_id, len(ok_data)), CommitInfo(base + "/ok.bin")),
        Arg(Cursor(conflict_id, len(conflict_data)), CommitInfo(taken)),
        Arg(Cursor(open_id, len(open_data)), CommitInfo(base + "/open.txt")),
        Arg(Cursor(ghost, 3), CommitInfo(base + "/ghost.txt")),
    ])
    assert isinstance(res, files.UploadSessionFinishBatchResult), res
    e = res.entries
    assert len(e) == 4, e
    assert all(isinstance(x, files.UploadSessionFinishBatchResultEntry) for x in e), e

    assert e[0].is_success(), e[0]
    assert_file_md(e[0].get_success(), base + "/ok.bin", ok_data)
    assert_stored(dbx, base + "/ok.bin", ok_data)

    assert e[1].is_failure(), e[1]
    f1 = e[1].get_failure()
    assert isinstance(f1, files.UploadSessionFinishError) and f1.is_path(), f1
    assert_conflict(f1.get_path(), "file")
    assert download_bytes(dbx, taken)[1] == b"old content"

    assert e[2].is_failure(), e[2]
    assert lookup_failed(e[2].get_failure()).is_not_closed(), e[2]
    with pytest.raises(ApiError):
        dbx.files_get_metadata(base + "/open.txt")

    assert e[3].is_failure(), e[3]
    assert lookup_failed(e[3].get_failure()).is_not_found(), e[3]

    # the not-closed session was left intact: close it and finish it alone
    dbx.files_upload_session_append_v2(b"!", Cursor(open_id, len(open_data)), close=True)
    md = dbx.files_upload_session_finish(
        b"", Cursor(open_id, len(open_data) + 1), CommitInfo(base + "/open.txt")
    )
    assert_file_md(md, base + "/open.txt", open_data + b"!")
    # and the succeeded one is gone
    err = append_error(
        api_error(dbx.files_upload_session_append_v2, b"x", Cursor(ok_id, len(ok_data)))
    )
    assert err.is_not_found(), err


def test_start_batch_concurrent_sessions(dbx, base):
    ids = dbx.files_upload_session_start_batch(2, session_type=CONCURRENT).session_ids
    assert len(ids) == 2 and len(set(ids)) == 2, ids
    err = append_error(
        api_error(dbx.files_upload_session_append_v2, rand(BLOCK), Cursor(ids[0], MiB))
    )
    assert err.is_concurrent_session_invalid_offset(), err
    data = rand(BLOCK + 5)
    sid = ids[1]
    dbx.files_upload_session_append_v2(data[BLOCK:], Cursor(sid, BLOCK), close=True)
    dbx.files_upload_session_append_v2(data[:BLOCK], Cursor(sid, 0))
    res = dbx.files_upload_session_finish_batch_v2(
        [files.UploadSessionFinishArg(Cursor(sid, len(data)), CommitInfo(base + "/cb.bin"))]
    )
    assert len(res.entries) == 1 and res.entries[0].is_success(), res
    assert_stored(dbx, base + "/cb.bin", data)


def test_finish_batch_v1_completes_and_check_has_no_job(dbx, base):
    sid = dbx.files_upload_session_start(b"v1 batch", close=True).session_id
    launch = dbx.files_upload_session_finish_batch(
        [files.UploadSessionFinishArg(Cursor(sid, 8), CommitInfo(base + "/v1.txt"))]
    )
    assert isinstance(launch, files.UploadSessionFinishBatchLaunch), launch
    if launch.is_async_job_id():
        # allowed by the spec; then check must eventually report complete
        status = dbx.files_upload_session_finish_batch_check(launch.get_async_job_id())
        while status.is_in_progress():
            status = dbx.files_upload_session_finish_batch_check(launch.get_async_job_id())
        assert status.is_complete(), status
        entries = status.get_complete().entries
    else:
        assert launch.is_complete(), launch
        entries = launch.get_complete().entries
    assert len(entries) == 1 and entries[0].is_success(), entries
    assert_file_md(entries[0].get_success(), base + "/v1.txt", b"v1 batch")
    err = api_error(dbx.files_upload_session_finish_batch_check, "no-such-job")
    assert err.is_invalid_async_job_id(), err


# --- 6. a session resumed across a server restart ---------------------------------------


@pytest.fixture
def private_server(tmp_path, server):  # `server` only to run after the main one is up
    data = tmp_path / "data"
    data.mkdir()
    srv = Server(
        cubby_bin(), str(data), str(tmp_path / "server.log"), free_port(), free_port(), embedded=True
    )
    srv.start()
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait()


class RawClient(object):
    """Minimal Dropbox v2 client over requests for a private server (the SDK's hosts are
    fixed at import to the main server)."""

    def __init__(self, srv, token):
        self.srv = srv
        self.token = token
        self.s = requests.Session()
        self.s.trust_env = False
        self.s.verify = srv.ca_path

    def reconnect(self):
        self.s.close()
        self.s = requests.Session()
        self.s.trust_env = False
        self.s.verify = self.srv.ca_path

    def content(self, route, arg, body=b""):
        return self.s.post(
            "{}/2/{}".format(self.srv.base_url, route),
            headers={
                "Authorization": "Bearer " + self.token,
                "Content-Type": "application/octet-stream",
                "Dropbox-API-Arg": json.dumps(arg),
            },
            data=body,
            timeout=60,
        )

    def ok(self, route, arg, body=b""):
        r = self.content(route, arg, body)
        assert r.status_code == 200, (route, r.status_code, r.text)
        return r


def test_session_resumed_after_restart(private_server):
    srv = private_server
    c = RawClient(srv, srv.add_user("dora")["access_token"])

    # a sequential session with an unaligned length (a partial tail block) ...
    seq = rand(9 * MiB + 12345)
    part = 5 * MiB + 3
    sid = c.ok("files/upload_session/start", {}, seq[:MiB]).json()["session_id"]
    c.ok("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": MiB}},
         seq[MiB:part])
    # ... and a concurrent one holding its closed last piece only
    conc = rand(BLOCK + 777)
    cid = c.ok(
        "files/upload_session/start", {"session_type": {".tag": "concurrent"}}
    ).json()["session_id"]
    c.ok("files/upload_session/append_v2",
         {"cursor": {"session_id": cid, "offset": BLOCK}, "close": True}, conc[BLOCK:])

    rc = srv.stop()
    assert rc == 0, "exit code {} after SIGTERM:\n{}".format(rc, srv.log_text())
    srv.proc = None
    srv.start()
    c.reconnect()

    # the stored length survived: a wrong offset is told the right one
    r = c.content("files/upload_session/append_v2",
                  {"cursor": {"session_id": sid, "offset": 0}}, b"x")
    assert r.status_code == 409, (r.status_code, r.text)
    assert r.json()["error"] == {".tag": "incorrect_offset", "correct_offset": part}, r.text
    c.ok("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": part}},
         seq[part:8 * MiB])
    r = c.ok(
        "files/upload_session/finish",
        {"cursor": {"session_id": sid, "offset": 8 * MiB}, "commit": {"path": "/r/seq.bin"}},
        seq[8 * MiB:],
    )
    md = r.json()
    assert md["size"] == len(seq) and md["content_hash"] == content_hash(seq), md

    # the concurrent session kept its closed last piece
    c.ok("files/upload_session/append_v2", {"cursor": {"session_id": cid, "offset": 0}},
         conc[:BLOCK])
    r = c.ok(
        "files/upload_session/finish",
        {"cursor": {"session_id": cid, "offset": len(conc)}, "commit": {"path": "/r/conc.bin"}},
    )
    md = r.json()
    assert md["size"] == len(conc) and md["content_hash"] == content_hash(conc), md

    for path, want in (("/r/seq.bin", seq), ("/r/conc.bin", conc)):
        r = c.ok("files/download", {"path": path})
        assert json.loads(r.headers["Dropbox-API-Result"])["content_hash"] == content_hash(want)
        assert len(r.content) == len(want)
        assert r.content == want, path

    rc = srv.stop()
    assert rc == 0, "exit code {} after second SIGTERM:\n{}".format(rc, srv.log_text())
