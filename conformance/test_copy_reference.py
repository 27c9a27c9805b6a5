"""files/copy_reference/get and files/copy_reference/save: the music store of design.md.

The store (user A, full access) holds each album once; a customer (user B) has authorized
the store's app-folder app, and the store delivers a purchase by minting references with its
own client and saving them with the customer's app-folder token. Saving copies by reference:
the bytes are never uploaded again, and no block is written.
"""

import contextlib
import os
import subprocess
import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from dropbox import files

from cubby_helpers import (
    REV_RE,
    api_error,
    assert_conflict,
    body_of,
    content_hash,
    list_all,
    lookup_error,
    rand,
)

# As in conftest: scale-out keeps blocks in S3, not under the data folder.
SCALE_OUT = bool(os.environ.get("CUBBY_METADATA"))

BLOCK = 4 * 1024 * 1024


def uid():
    return uuid.uuid4().hex[:10]


# ---------------------------------------------------------------------------------------
# Blocks on disk (embedded mode only)


def block_files(server):
    """{relative path: (inode, mtime_ns, size)} of the block files under <data>/blocks,
    skipping hidden and staging (tmp) directories."""
    root = os.path.join(server.data, "blocks")
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "tmp"]
        for f in filenames:
            if f.startswith("."):
                continue
            p = os.path.join(dirpath, f)
            st = os.stat(p)
            out[os.path.relpath(p, root)] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


@contextlib.contextmanager
def no_new_blocks(server):
    """Asserts that the block store is untouched by the body (skipped in scale-out mode)."""
    if SCALE_OUT:
        yield
        return
    before = block_files(server)
    yield
    after = block_files(server)
    assert len(after) == len(before), "blocks written: {}".format(sorted(set(after) - set(before)))
    assert after == before, "block files changed"


def set_user_enabled(server, name, enabled):
    """`cubby admin user disable|enable NAME` (these print no JSON, so not server.admin)."""
    cmd = [server.bin, "admin", "user", "enable" if enabled else "disable", name]
    cmd += ["--data", server.data]
    r = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, env=server.env
    )
    assert r.returncode == 0, (cmd, r.stdout, r.stderr)


# ---------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def shop(server, new_client):
    """The store A, its app-folder app, and a customer B who authorized that app."""
    tag = uid()
    store = server.add_user("store-" + tag)
    customer = server.add_user("customer-" + tag)
    app = server.admin("app", "add", "Music Store " + tag, "--access", "app_folder")
    assert app.get("app_key"), app
    tok = server.admin("token", customer["name"], "--app", app["app_key"])
    assert tok.get("access_token"), tok
    return SimpleNamespace(
        store=new_client(store["access_token"]),
        customer=new_client(tok["access_token"]),  # app folder
        customer_full=new_client(customer["access_token"]),
        app_root="/Apps/" + app["name"],
    )


@pytest.fixture(scope="module")
def album(shop, server):
    """An album in the store's account: a few small tracks, one of ~9 MiB (3 blocks), a
    second disc in a subfolder and an empty folder. Returns .dir and .tracks
    {relative path: (bytes, FileMetadata)}."""
    name = "Album Ünïcode " + uid()
    top = "/Albums/" + name
    contents = {
        "/01 - Overture.mp3": rand(3 * 1024),
        "/02 - Ballade für Elise.mp3": rand(5 * 1024 + 17),
        "/03 - Finale (extended).mp3": rand(2 * BLOCK + BLOCK // 4),
        "/Disc 2/04 - Encore.MP3": rand(2 * 1024),
    }
    before = None if SCALE_OUT else len(block_files(server))
    tracks = {}
    for rel, data in contents.items():
        md = shop.store.files_upload(data, top + rel)
        assert md.content_hash == content_hash(data)
        tracks[rel] = (data, md)
    shop.store.files_create_folder_v2(top + "/Booklet")
    if before is not None:
        # The measure works: these uploads did write blocks (3 for the big track).
        assert len(block_files(server)) >= before + 3 + 3
    return SimpleNamespace(dir=top, name=name, tracks=tracks)


def tree(client, top):
    """{path relative to top: ('file', size, content_hash) | ('folder',)} of a subtree."""
    entries, _, _ = list_all(client, top, recursive=True)
    out = {}
    for e in entries:
        if e.path_lower == top.lower():
            continue
        assert e.path_display.lower().startswith(top.lower() + "/"), (e.path_display, top)
        rel = e.path_display[len(top):]
        if isinstance(e, files.FileMetadata):
            out[rel] = ("file", e.size, e.content_hash)
        else:
            assert isinstance(e, files.FolderMetadata), e
            out[rel] = ("folder",)
    return out


# ---------------------------------------------------------------------------------------
# The happy path


def test_tracks_delivered_into_the_app_folder(shop, album, server):
    dest_dir = "/Albums/" + album.name
    refs = {}
    for rel, (data, src) in album.tracks.items():
        r = shop.store.files_copy_reference_get(album.dir + rel)
        assert isinstance(r, files.GetCopyReferenceResult), r
        md = r.metadata
        assert isinstance(md, files.FileMetadata), md
        assert md.path_display == album.dir + rel, md.path_display
        assert (md.id, md.rev, md.size, md.content_hash) == (
            src.id,
            src.rev,
            len(data),
            src.content_hash,
        )
        assert isinstance(r.copy_reference, str) and len(r.copy_reference) >= 22, r
        assert r.expires > datetime.utcnow() + timedelta(days=365), r.expires
        refs[rel] = r.copy_reference
    assert len(set(refs.values())) == len(refs)
    # Every mint is a fresh, unguessable reference.
    again = shop.store.files_copy_reference_get(album.dir + "/01 - Overture.mp3")
    assert again.copy_reference not in refs.values()

    saved = {}
    with no_new_blocks(server):
        for rel, ref in refs.items():
            saved[rel] = shop.customer.files_copy_reference_save(ref, dest_dir + rel).metadata
        # A reference can be saved more than once (the customer downloads the album again).
        big = "/03 - Finale (extended).mp3"
        twice = shop.customer.files_copy_reference_save(refs[big], "/Again" + big).metadata

    for rel, (data, src) in album.tracks.items():
        md = saved[rel]
        dest = dest_dir + rel
        assert isinstance(md, files.FileMetadata), md
        assert md.path_display == dest, (md.path_display, dest)
        assert md.path_lower == dest.lower()
        assert md.name == rel.rsplit("/", 1)[1]
        assert md.size == len(data)
        assert md.content_hash == src.content_hash == content_hash(data)
        assert md.id.startswith("id:") and md.id != src.id, md.id
        assert REV_RE.match(md.rev), md.rev

        got = shop.customer.files_get_metadata(dest)
        assert (got.id, got.rev, got.content_hash) == (md.id, md.rev, md.content_hash)
        assert body_of(shop.customer, dest) == data

        # The customer's full-access client sees it inside /Apps/<app name>.
        full = shop.customer_full.files_get_metadata(shop.app_root + dest)
        assert isinstance(full, files.FileMetadata), full
        assert full.path_display == shop.app_root + dest, full.path_display
        assert (full.id, full.content_hash) == (md.id, md.content_hash)
    big_data = album.tracks[big][0]
    assert body_of(shop.customer_full, shop.app_root + dest_dir + big) == big_data
    assert twice.path_display == "/Again" + big and twice.id != saved[big].id
    assert body_of(shop.customer, "/Again" + big) == big_data

    # The store's album is untouched.
    for rel, (data, src) in album.tracks.items():
        assert shop.store.files_get_metadata(album.dir + rel).rev == src.rev


def test_folder_reference_copies_the_whole_tree(shop, album, server):
    r = shop.store.files_copy_reference_get(album.dir)
    assert isinstance(r.metadata, files.FolderMetadata), r.metadata
    assert r.metadata.path_display == album.dir
    # The folder's content at save time counts, not at mint time.
    bonus = rand(1500)
    shop.store.files_upload(bonus, album.dir + "/Disc 2/05 - Bonus.mp3")
    source_tree = tree(shop.store, album.dir)
    assert "/Disc 2/05 - Bonus.mp3" in source_tree and "/Booklet" in source_tree

    dest = "/Delivered {}/{}".format(uid(), album.name)
    with no_new_blocks(server):
        md = shop.customer.files_copy_reference_save(r.copy_reference, dest).metadata
    assert isinstance(md, files.FolderMetadata), md
    assert md.path_display == dest and md.name == album.name, md
    assert md.id.startswith("id:") and md.id != r.metadata.id

    assert tree(shop.customer, dest) == source_tree
    assert tree(shop.customer_full, shop.app_root + dest) == source_tree
    contents = {rel: data for rel, (data, _) in album.tracks.items()}
    contents["/Disc 2/05 - Bonus.mp3"] = bonus
    for rel, data in contents.items():
        assert body_of(shop.customer, dest + rel) == data, rel


def test_file_reference_is_bound_to_its_revision(shop):
    top = "/Singles " + uid()
    old, new = rand(4096), rand(6000)
    v1 = shop.store.files_upload(old, top + "/single.mp3")
    r1 = shop.store.files_copy_reference_get(top + "/single.mp3")
    assert r1.metadata.rev == v1.rev
    v2 = shop.store.files_upload(new, top + "/single.mp3", mode=files.WriteMode.overwrite)
    assert v2.rev != v1.rev and v2.id == v1.id
    # Renaming the source does not matter either: the reference names the file, not a path.
    moved = shop.store.files_move_v2(top + "/single.mp3", top + "/Single (remaster).mp3").metadata
    # As on Dropbox, the moved file has a new rev at its new place.
    assert moved.rev != v2.rev and moved.content_hash == v2.content_hash

    md = shop.customer.files_copy_reference_save(r1.copy_reference, top + "/old.mp3").metadata
    assert md.size == len(old) and md.content_hash == content_hash(old) == v1.content_hash
    assert body_of(shop.customer, top + "/old.mp3") == old

    r2 = shop.store.files_copy_reference_get(v1.id)  # by id
    assert r2.metadata.rev == moved.rev
    assert r2.metadata.path_display == top + "/Single (remaster).mp3"
    md2 = shop.customer.files_copy_reference_save(r2.copy_reference, top + "/new.mp3").metadata
    assert md2.content_hash == content_hash(new)
    assert body_of(shop.customer, top + "/new.mp3") == new

    # The copies are independent of the source.
    shop.store.files_delete_v2(top)
    assert body_of(shop.customer, top + "/old.mp3") == old
    assert body_of(shop.customer, top + "/new.mp3") == new


def test_customer_can_reference_inside_its_own_app_folder(shop):
    top = "/Mine " + uid()
    data = rand(1000)
    up = shop.customer.files_upload(data, top + "/playlist.m3u")
    r = shop.customer.files_copy_reference_get(up.id)
    assert r.metadata.path_display == top + "/playlist.m3u", r.metadata
    md = shop.customer.files_copy_reference_save(r.copy_reference, top + "/copy.m3u").metadata
    assert md.path_display == top + "/copy.m3u" and md.content_hash == up.content_hash
    assert body_of(shop.customer, top + "/copy.m3u") == data


# ---------------------------------------------------------------------------------------
# Errors


def save_error(client, ref, path):
    err = api_error(client.files_copy_reference_save, ref, path)
    assert isinstance(err, files.SaveCopyReferenceError), err
    return err


def get_lookup_error(client, path):
    err = api_error(client.files_copy_reference_get, path)
    assert isinstance(err, files.GetCopyReferenceError), err
    return lookup_error(err)


def test_forged_reference_is_invalid(shop):
    top = "/Forged " + uid()
    up = shop.store.files_upload(rand(100), top + "/a.mp3")
    real = shop.store.files_copy_reference_get(up.path_display).copy_reference
    flipped = real[:-1] + ("A" if real[-1] != "A" else "B")
    for ref in ("x" * len(real), flipped, real + "A", uuid.uuid4().hex, "AAAAAAAAAAAAAAA"):
        err = save_error(shop.customer, ref, top + "/a.mp3")
        assert err.is_invalid_copy_reference(), (ref, err)
    # Nothing was created; the real one still works.
    assert lookup_error(api_error(shop.customer.files_get_metadata, top)).is_not_found()
    shop.customer.files_copy_reference_save(real, top + "/a.mp3")


def test_reference_to_deleted_source_is_not_found(shop):
    top = "/Gone " + uid()
    shop.store.files_upload(rand(100), top + "/dir/a.mp3")
    f = shop.store.files_upload(rand(100), top + "/b.mp3")
    file_ref = shop.store.files_copy_reference_get(f.id).copy_reference
    dir_ref = shop.store.files_copy_reference_get(top + "/dir").copy_reference
    shop.store.files_delete_v2(top + "/b.mp3")
    shop.store.files_delete_v2(top + "/dir")
    for ref, name in ((file_ref, "/b.mp3"), (dir_ref, "/dir")):
        err = save_error(shop.customer, ref, top + name)
        assert err.is_not_found(), (name, err)
    assert lookup_error(api_error(shop.customer.files_get_metadata, top)).is_not_found()


def test_get_of_missing_or_deleted_path_is_not_found(shop):
    top = "/Missing " + uid()
    assert get_lookup_error(shop.store, top + "/nothing.mp3").is_not_found()
    up = shop.store.files_upload(rand(10), top + "/deleted.mp3")
    shop.store.files_delete_v2(up.path_display)
    assert get_lookup_error(shop.store, up.path_display).is_not_found()
    assert get_lookup_error(shop.store, up.id).is_not_found()


def test_get_by_another_users_id_is_not_found(shop, album):
    _, src = album.tracks["/01 - Overture.mp3"]
    for ref in (src.id, "rev:" + src.rev):
        assert get_lookup_error(shop.customer_full, ref).is_not_found(), ref
        assert get_lookup_error(shop.customer, ref).is_not_found(), ref


def test_app_folder_cannot_reference_outside_its_folder(shop):
    outside = shop.customer_full.files_upload(rand(100), "/Private {}/diary.txt".format(uid()))
    for ref in (outside.id, "rev:" + outside.rev):
        assert get_lookup_error(shop.customer, ref).is_not_found(), ref
    # The same file is fine for the full-access client.
    r = shop.customer_full.files_copy_reference_get(outside.id)
    assert r.metadata.path_display == outside.path_display


def test_save_onto_existing_item_is_a_conflict(shop):
    top = "/Conflict " + uid()
    src = shop.store.files_upload(rand(300), top + "/track.mp3")
    ref = shop.store.files_copy_reference_get(src.path_display).copy_reference
    mine = rand(200)
    existing = shop.customer.files_upload(mine, top + "/track.mp3")
    shop.customer.files_create_folder_v2(top + "/Folder")

    err = save_error(shop.customer, ref, top + "/TRACK.mp3")
    assert err.is_path(), err
    assert_conflict(err.get_path(), "file")
    err = save_error(shop.customer, ref, top + "/folder")
    assert err.is_path(), err
    assert_conflict(err.get_path(), "folder")

    md = shop.customer.files_get_metadata(top + "/track.mp3")
    assert (md.rev, md.content_hash) == (existing.rev, existing.content_hash)
    assert body_of(shop.customer, top + "/track.mp3") == mine
    assert isinstance(shop.customer.files_get_metadata(top + "/Folder"), files.FolderMetadata)
    entries, _, _ = list_all(shop.customer, top + "/Folder")
    assert entries == []


def test_disabled_source_account_is_no_permission(server, shop, new_client):
    # A dedicated source: disabling it affects no other test.
    label = server.add_user("label-" + uid())
    label_dbx = new_client(label["access_token"])
    data = rand(700)
    up = label_dbx.files_upload(data, "/Masters/master.wav")
    ref = label_dbx.files_copy_reference_get(up.path_display).copy_reference
    top = "/From label " + uid()
    set_user_enabled(server, label["name"], False)
    try:
        err = save_error(shop.customer, ref, top + "/master.wav")
        assert err.is_no_permission(), err
        assert lookup_error(api_error(shop.customer.files_get_metadata, top)).is_not_found()
    finally:
        set_user_enabled(server, label["name"], True)
    md = shop.customer.files_copy_reference_save(ref, top + "/master.wav").metadata
    assert md.content_hash == up.content_hash
    assert body_of(shop.customer, top + "/master.wav") == data
