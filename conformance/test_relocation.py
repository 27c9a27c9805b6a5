"""files/create_folder(_v2), delete(_v2), move_v2, copy_v2."""

from dropbox import files

from cubby_helpers import (
    api_error,
    assert_conflict,
    body_of,
    content_hash,
    list_all,
)


def exists(dbx, path):
    try:
        dbx.files_get_metadata(path)
        return True
    except Exception as e:  # noqa: BLE001
        from dropbox.exceptions import ApiError

        if isinstance(e, ApiError) and e.error.get_path().is_not_found():
            return False
        raise


# ------------------------------------------------------------ create_folder


def test_create_folder_v2(dbx, base):
    r = dbx.files_create_folder_v2(base + "/New Folder")
    assert isinstance(r, files.CreateFolderResult)
    md = r.metadata
    assert isinstance(md, files.FolderMetadata)
    assert md.name == "New Folder"
    assert md.path_display == base + "/New Folder"
    assert md.path_lower == (base + "/new folder").lower()
    assert md.id.startswith("id:")
    got = dbx.files_get_metadata(base + "/new folder")
    assert isinstance(got, files.FolderMetadata) and got.id == md.id


def test_create_folder_v1(dbx, base):
    md = dbx.files_create_folder(base + "/v1/Nested")
    assert isinstance(md, files.FolderMetadata)
    assert md.path_display == base + "/v1/Nested"
    assert isinstance(dbx.files_get_metadata(base + "/v1"), files.FolderMetadata)


def test_create_existing_folder_is_conflict_folder(dbx, base):
    dbx.files_create_folder_v2(base + "/dup")
    err = api_error(dbx.files_create_folder_v2, base + "/dup")
    assert isinstance(err, files.CreateFolderError)
    assert err.is_path()
    assert_conflict(err.get_path(), "folder")
    err = api_error(dbx.files_create_folder, base + "/DUP")
    assert_conflict(err.get_path(), "folder")


def test_create_folder_over_file_is_conflict_file(dbx, base):
    dbx.files_upload(b"x", base + "/thing")
    err = api_error(dbx.files_create_folder_v2, base + "/thing")
    assert_conflict(err.get_path(), "file")
    err = api_error(dbx.files_create_folder_v2, base + "/thing/below")
    assert_conflict(err.get_path(), "file_ancestor")


def test_create_folder_autorename(dbx, base):
    dbx.files_create_folder_v2(base + "/auto")
    md = dbx.files_create_folder_v2(base + "/auto", autorename=True).metadata
    assert md.path_lower != (base + "/auto").lower()
    assert md.name.startswith("auto ("), md.name


def test_create_folder_naming_errors(dbx, base):
    err = api_error(dbx.files_create_folder_v2, base + "/" + "z" * 256)
    assert err.get_path().is_malformed_path(), err
    err = api_error(dbx.files_create_folder_v2, base + "/x/")
    assert err.get_path().is_malformed_path(), err


# ------------------------------------------------------------------ delete


def test_delete_v2_file(dbx, base):
    up = dbx.files_upload(b"bye", base + "/del.txt")
    r = dbx.files_delete_v2(base + "/DEL.txt")
    assert isinstance(r, files.DeleteResult)
    md = r.metadata
    assert isinstance(md, files.FileMetadata), md  # state at deletion, not DeletedMetadata
    assert md.id == up.id and md.rev == up.rev and md.name == "del.txt"
    assert not exists(dbx, base + "/del.txt")


def test_delete_v1_file(dbx, base):
    up = dbx.files_upload(b"bye", base + "/del1.txt")
    md = dbx.files_delete(base + "/del1.txt")
    assert isinstance(md, files.FileMetadata), md
    assert md.id == up.id
    assert not exists(dbx, base + "/del1.txt")


def test_delete_folder_is_recursive(dbx, base):
    dbx.files_upload(b"1", base + "/tree/a.txt")
    dbx.files_upload(b"2", base + "/tree/sub/b.txt")
    md = dbx.files_delete_v2(base + "/tree").metadata
    assert isinstance(md, files.FolderMetadata), md
    for p in ("/tree", "/tree/a.txt", "/tree/sub", "/tree/sub/b.txt"):
        assert not exists(dbx, base + p), p
    # the name can be reused as a file
    dbx.files_upload(b"file now", base + "/tree")
    assert body_of(dbx, base + "/tree") == b"file now"


def test_delete_by_id(dbx, base):
    up = dbx.files_upload(b"x", base + "/byid.txt")
    md = dbx.files_delete_v2(up.id).metadata
    assert md.id == up.id
    assert not exists(dbx, base + "/byid.txt")


def test_delete_missing_is_path_lookup_not_found(dbx, base):
    err = api_error(dbx.files_delete_v2, base + "/nothing")
    assert isinstance(err, files.DeleteError)
    assert err.is_path_lookup(), err
    assert err.get_path_lookup().is_not_found(), err
    err = api_error(dbx.files_delete, base + "/nothing")
    assert err.is_path_lookup() and err.get_path_lookup().is_not_found(), err


def test_delete_with_matching_parent_rev(dbx, base):
    up = dbx.files_upload(b"x", base + "/pr.txt")
    dbx.files_delete_v2(base + "/pr.txt", parent_rev=up.rev)
    assert not exists(dbx, base + "/pr.txt")


def test_delete_with_stale_parent_rev_fails(dbx, base):
    a = dbx.files_upload(b"x", base + "/pr2.txt")
    dbx.files_upload(b"y", base + "/pr2.txt", mode=files.WriteMode.overwrite)
    api_error(dbx.files_delete_v2, base + "/pr2.txt", parent_rev=a.rev)
    assert exists(dbx, base + "/pr2.txt")


def test_deleted_then_recreated_gets_new_rev(dbx, base):
    a = dbx.files_upload(b"same", base + "/re.txt")
    dbx.files_delete_v2(base + "/re.txt")
    b = dbx.files_upload(b"same", base + "/re.txt")
    assert b.rev != a.rev
    assert body_of(dbx, base + "/re.txt") == b"same"


# -------------------------------------------------------------------- move


def test_move_file_keeps_id(dbx, base):
    up = dbx.files_upload(b"moving", base + "/a/file.txt")
    r = dbx.files_move_v2(base + "/a/file.txt", base + "/b/Renamed.txt")
    assert isinstance(r, files.RelocationResult)
    md = r.metadata
    assert isinstance(md, files.FileMetadata), md
    assert md.id == up.id
    assert md.path_display == base + "/b/Renamed.txt"
    assert md.content_hash == up.content_hash and md.size == up.size
    assert not exists(dbx, base + "/a/file.txt")
    assert body_of(dbx, base + "/b/renamed.txt") == b"moving"
    assert dbx.files_get_metadata(up.id).path_lower == (base + "/b/renamed.txt").lower()


def test_move_folder_moves_children(dbx, base):
    folder = dbx.files_create_folder_v2(base + "/src").metadata
    child = dbx.files_upload(b"kid", base + "/src/deep/kid.txt")
    md = dbx.files_move_v2(base + "/src", base + "/dst").metadata
    assert isinstance(md, files.FolderMetadata) and md.id == folder.id
    assert not exists(dbx, base + "/src")
    moved = dbx.files_get_metadata(base + "/dst/deep/kid.txt")
    assert moved.id == child.id
    assert dbx.files_get_metadata(child.id).path_lower == (base + "/dst/deep/kid.txt").lower()
    entries, _, _ = list_all(dbx, base + "/dst", recursive=True)
    paths = {e.path_lower for e in entries}
    assert (base + "/dst/deep/kid.txt").lower() in paths


def test_move_by_id(dbx, base):
    up = dbx.files_upload(b"x", base + "/idmove.txt")
    md = dbx.files_move_v2(up.id, base + "/moved-by-id.txt").metadata
    assert md.id == up.id and md.name == "moved-by-id.txt"


def test_move_folder_into_itself(dbx, base):
    dbx.files_create_folder_v2(base + "/self")
    err = api_error(dbx.files_move_v2, base + "/self", base + "/self/inside")
    assert isinstance(err, files.RelocationError)
    assert err.is_cant_move_folder_into_itself(), err
    assert exists(dbx, base + "/self")


def test_move_missing_source(dbx, base):
    err = api_error(dbx.files_move_v2, base + "/ghost", base + "/x")
    assert err.is_from_lookup() and err.get_from_lookup().is_not_found(), err


def test_move_onto_existing_is_to_conflict(dbx, base):
    dbx.files_upload(b"1", base + "/one.txt")
    dbx.files_upload(b"2", base + "/two.txt")
    err = api_error(dbx.files_move_v2, base + "/one.txt", base + "/two.txt")
    assert err.is_to(), err
    assert_conflict(err.get_to(), "file")
    assert body_of(dbx, base + "/one.txt") == b"1"
    assert body_of(dbx, base + "/two.txt") == b"2"


def test_move_autorename(dbx, base):
    dbx.files_upload(b"1", base + "/one.txt")
    dbx.files_upload(b"2", base + "/two.txt")
    md = dbx.files_move_v2(base + "/one.txt", base + "/two.txt", autorename=True).metadata
    assert md.path_lower != (base + "/two.txt").lower()
    assert md.name.startswith("two (") and md.name.endswith(").txt"), md.name
    assert body_of(dbx, md.path_lower) == b"1"
    assert body_of(dbx, base + "/two.txt") == b"2"


def test_move_to_disallowed_name(dbx, base):
    dbx.files_upload(b"1", base + "/ok.txt")
    err = api_error(dbx.files_move_v2, base + "/ok.txt", base + "/desktop.ini")
    assert err.is_to() and err.get_to().is_disallowed_name(), err


# -------------------------------------------------------------------- copy


def test_copy_file_new_id_same_hash(dbx, base):
    data = b"copy me" * 1000
    up = dbx.files_upload(data, base + "/orig.bin")
    r = dbx.files_copy_v2(base + "/orig.bin", base + "/sub/Copy.bin")
    assert isinstance(r, files.RelocationResult)
    md = r.metadata
    assert isinstance(md, files.FileMetadata), md
    assert md.id != up.id
    assert md.content_hash == up.content_hash == content_hash(data)
    assert md.size == len(data)
    assert md.path_display == base + "/sub/Copy.bin"
    assert body_of(dbx, base + "/orig.bin") == data
    assert body_of(dbx, base + "/sub/copy.bin") == data
    # the copy is independent of the original
    dbx.files_upload(b"changed", base + "/orig.bin", mode=files.WriteMode.overwrite)
    assert body_of(dbx, base + "/sub/copy.bin") == data


def test_copy_folder_recursive(dbx, base):
    f = dbx.files_upload(b"leaf", base + "/srcdir/a/leaf.txt")
    md = dbx.files_copy_v2(base + "/srcdir", base + "/dstdir").metadata
    assert isinstance(md, files.FolderMetadata)
    c = dbx.files_get_metadata(base + "/dstdir/a/leaf.txt")
    assert c.id != f.id and c.content_hash == f.content_hash
    assert body_of(dbx, base + "/dstdir/a/leaf.txt") == b"leaf"
    assert exists(dbx, base + "/srcdir/a/leaf.txt")


def test_copy_onto_existing_is_to_conflict(dbx, base):
    dbx.files_upload(b"1", base + "/one.txt")
    dbx.files_upload(b"2", base + "/two.txt")
    err = api_error(dbx.files_copy_v2, base + "/one.txt", base + "/two.txt")
    assert err.is_to(), err
    assert_conflict(err.get_to(), "file")


def test_copy_folder_into_itself_fails(dbx, base):
    dbx.files_upload(b"x", base + "/loop/x.txt")
    err = api_error(dbx.files_copy_v2, base + "/loop", base + "/loop/inner")
    assert isinstance(err, files.RelocationError)
    assert err.is_cant_move_folder_into_itself() or err.is_duplicated_or_nested_paths() or err.is_to(), err
