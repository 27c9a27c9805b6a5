"""Shared folders with the official SDK: three accounts work in one folder.

The owner shares a folder with an editor and a viewer; the editor mounts it, writes and
moves files; the owner's cursor and longpoll see the editor's writes; the viewer's writes
fail with no_write_permission on each write route; removing the editor cuts their listing,
cursor and links; unsharing with leave_a_copy leaves each member a copy.
"""

import threading
import time
import uuid

import pytest
import requests
from dropbox import common, files, sharing
from dropbox.exceptions import ApiError, PathRootError

from cubby_helpers import api_error, drain, list_all, rand, upload_write_error


def uid():
    return uuid.uuid4().hex[:8]


@pytest.fixture
def trio(server, new_client):
    """Three fresh accounts: (name, account id, client) each; the name is also the local
    part of the account's e-mail address (the SDK checks addresses against a pattern)."""
    out = []
    for role in ("owner", "editor", "viewer"):
        name = "{}{}".format(role, uid())
        user = server.admin("user", "add", name, "--email", name + "@example.com")
        token = server.admin("token", name)["access_token"]
        out.append((name, user["account_id"], new_client(token)))
    return out


def share(dbx, path):
    launch = dbx.sharing_share_folder(path)
    assert launch.is_complete(), launch
    return launch.get_complete()


def mount(dbx, folder_id):
    mountable = dbx.sharing_list_mountable_folders().entries
    assert folder_id in [f.shared_folder_id for f in mountable]
    return dbx.sharing_mount_folder(folder_id)


def paths(dbx):
    return sorted(e.path_display for e in list_all(dbx, "", recursive=True)[0])


def no_write_permission(err):
    """The WriteError inside any write route's union says no_write_permission."""
    for attr in ("get_path", "get_path_write", "get_to", "get_from_write"):
        for check in ("is_path", "is_path_write", "is_to", "is_from_write"):
            if hasattr(err, check) and getattr(err, check)() and hasattr(err, attr):
                try:
                    inner = getattr(err, attr)()
                except AttributeError:
                    continue
                inner = getattr(inner, "reason", inner)
                if isinstance(inner, files.WriteError):
                    return inner.is_no_write_permission()
    return False


def test_three_members_share_one_folder(trio, ca_certs):
    (owner_name, owner_id, owner), (editor_name, editor_id, editor), (viewer_name, viewer_id, viewer) = trio
    owner.files_upload(b"plan v1", "/Project/plan.txt")
    owner.files_upload(b"notes", "/Project/docs/notes.txt")
    owner.files_upload(b"mine", "/private.txt")
    folder = share(owner, "/Project")
    fid = folder.shared_folder_id
    assert folder.access_type.is_owner()
    assert folder.path_lower == "/project"
    assert owner_name in folder.owner_display_names

    # The mount point and its contents carry sharing info.
    top = owner.files_get_metadata("/Project")
    assert top.sharing_info.shared_folder_id == fid
    plan = owner.files_get_metadata("/Project/plan.txt")
    assert plan.sharing_info.parent_shared_folder_id == fid
    assert not plan.sharing_info.read_only

    owner.sharing_add_folder_member(
        fid,
        [
            sharing.AddMember(
                sharing.MemberSelector.email(editor_name + "@example.com"),
                sharing.AccessLevel.editor,
            ),
            sharing.AddMember(sharing.MemberSelector.dropbox_id(viewer_id), sharing.AccessLevel.viewer),
        ],
    )
    mounted = mount(editor, fid)
    assert mounted.access_type.is_editor()
    assert paths(editor) == ["/Project", "/Project/docs", "/Project/docs/notes.txt", "/Project/plan.txt"]
    mount(viewer, fid)

    members = owner.sharing_list_folder_members(fid)
    names = {m.user.display_name: m.access_type for m in members.users}
    assert names[owner_name].is_owner()
    assert names[editor_name].is_editor()
    assert names[viewer_name].is_viewer()
    assert owner.users_get_account(editor_id).name.display_name == editor_name
    assert [a.account_id for a in owner.users_get_account_batch([editor_id, viewer_id])] == [
        editor_id,
        viewer_id,
    ]

    # The owner's cursor and longpoll see the editor's writes.
    cursor = owner.files_list_folder_get_latest_cursor("", recursive=True).cursor
    woke = {}

    def poll():
        woke["r"] = owner.files_list_folder_longpoll(cursor, timeout=30)

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    editor.files_upload(b"from the editor", "/Project/docs/draft.txt")
    t.join(35)
    assert woke["r"].changes
    seen, cursor = drain(owner, cursor)
    got = {e.path_lower: e for e in seen}
    assert "/project/docs/draft.txt" in got, got
    assert got["/project/docs/draft.txt"].sharing_info.parent_shared_folder_id == fid
    _, body = owner.files_download("/Project/docs/draft.txt")
    assert body.content == b"from the editor"

    # The editor moves files inside, in and out.
    editor.files_move_v2("/Project/plan.txt", "/Project/docs/plan.txt")
    editor.files_upload(b"brought in", "/brought.txt")
    editor.files_move_v2("/brought.txt", "/Project/brought.txt")
    seen, cursor = drain(owner, cursor)
    live = {e.path_lower for e in seen if isinstance(e, files.FileMetadata)}
    assert {"/project/docs/plan.txt", "/project/brought.txt"} <= live, live

    # The viewer reads, and every write route refuses.
    _, body = viewer.files_download("/Project/docs/plan.txt")
    assert body.content == b"plan v1"
    assert viewer.files_get_metadata("/Project/docs/plan.txt").sharing_info.read_only
    viewer.files_upload(b"elsewhere", "/elsewhere.txt")
    err = api_error(viewer.files_upload, b"x", "/Project/x.txt")
    assert upload_write_error(err).is_no_write_permission(), err
    err = api_error(
        viewer.files_upload, b"x", "/Project/docs/plan.txt", mode=files.WriteMode.overwrite
    )
    assert upload_write_error(err).is_no_write_permission(), err
    err = api_error(viewer.files_create_folder_v2, "/Project/new")
    assert err.get_path().is_no_write_permission(), err
    err = api_error(viewer.files_delete_v2, "/Project/docs/plan.txt")
    assert err.is_path_write() and err.get_path_write().is_no_write_permission(), err
    err = api_error(viewer.files_move_v2, "/Project/docs/plan.txt", "/plan.txt")
    assert err.is_from_write() and err.get_from_write().is_no_write_permission(), err
    err = api_error(viewer.files_copy_v2, "/elsewhere.txt", "/Project/elsewhere.txt")
    assert err.is_to() and err.get_to().is_no_write_permission(), err
    rev = viewer.files_get_metadata("/Project/docs/plan.txt").rev
    err = api_error(viewer.files_restore, "/Project/docs/plan.txt", rev)
    assert err.is_path_write() and err.get_path_write().is_no_write_permission(), err
    ref = viewer.files_copy_reference_get("/elsewhere.txt").copy_reference
    err = api_error(viewer.files_copy_reference_save, ref, "/Project/ref.txt")
    assert err.is_path() and err.get_path().is_no_write_permission(), err
    err = api_error(viewer.files_save_url, "/Project/fetched.txt", "https://example.com/x")
    assert err.is_path() and err.get_path().is_no_write_permission(), err
    session = viewer.files_upload_session_start(b"s", close=True).session_id
    err = api_error(
        viewer.files_upload_session_finish,
        b"",
        files.UploadSessionCursor(session, 1),
        files.CommitInfo("/Project/session.txt"),
    )
    assert err.is_path() and err.get_path().is_no_write_permission(), err
    batch = viewer.files_upload_session_finish_batch_v2(
        [
            files.UploadSessionFinishArg(
                files.UploadSessionCursor(
                    viewer.files_upload_session_start(b"b", close=True).session_id, 1
                ),
                files.CommitInfo("/Project/batch.txt"),
            )
        ]
    )
    failure = batch.entries[0].get_failure()
    assert failure.is_path() and failure.get_path().is_no_write_permission(), failure
    err = api_error(
        viewer.sharing_add_folder_member,
        fid,
        [sharing.AddMember(sharing.MemberSelector.dropbox_id(owner_id))],
    )
    assert err.is_no_permission(), err
    assert "/project/x.txt" not in {p.lower() for p in paths(owner)}

    # Dropbox-API-Path-Root: the folder as the root of the viewer's paths.
    under = viewer.with_path_root(common.PathRoot.namespace_id(fid))
    rooted = sorted(e.path_display for e in list_all(under, "", recursive=True)[0])
    assert "/docs/draft.txt" in rooted and "/brought.txt" in rooted, rooted
    err = api_error(under.files_upload, b"x", "/rooted.txt")
    assert upload_write_error(err).is_no_write_permission(), err

    # Removing the editor cuts their listing, cursor and links at once.
    editor_cursor = editor.files_list_folder("/Project", recursive=True).cursor
    inside_cursor = editor.files_list_folder("/Project/docs").cursor
    link = editor.files_get_temporary_link("/Project/docs/draft.txt").link
    assert requests.get(link, verify=ca_certs).content == b"from the editor"
    job = owner.sharing_remove_folder_member(
        fid, sharing.MemberSelector.dropbox_id(editor_id), leave_a_copy=False
    )
    status = owner.sharing_check_remove_member_job_status(job.get_async_job_id())
    assert status.is_complete(), status
    assert paths(editor) == []
    # The listed folder is gone from the editor's tree (a recursive cursor says not_found),
    # and a cursor inside it can no longer be followed (reset).
    err = api_error(editor.files_list_folder_continue, editor_cursor)
    assert err.is_path() and err.get_path().is_not_found(), err
    err = api_error(editor.files_list_folder_continue, inside_cursor)
    assert err.is_reset(), err
    assert requests.get(link, verify=ca_certs).status_code == 410
    err = api_error(editor.files_get_metadata, "ns:{}/docs/draft.txt".format(fid))
    assert err.get_path().is_not_found(), err

    # Unsharing with leave_a_copy: the owner keeps the folder, the viewer a copy.
    launch = owner.sharing_unshare_folder(fid, leave_a_copy=True)
    assert launch.is_complete(), launch
    assert owner.files_get_metadata("/Project").sharing_info is None
    kept = ["/Project", "/Project/brought.txt", "/Project/docs", "/Project/docs/draft.txt",
            "/Project/docs/notes.txt", "/Project/docs/plan.txt"]
    assert paths(owner) == kept + ["/private.txt"]
    assert paths(viewer) == kept + ["/elsewhere.txt"]
    # Separate copies now.
    viewer.files_upload(b"only mine", "/Project/only-viewer.txt")
    with pytest.raises(ApiError):
        owner.files_get_metadata("/Project/only-viewer.txt")


def test_strangers_and_app_folders_reach_nothing(trio, server, new_client):
    (owner_name, _, owner), (stranger_name, _, stranger), _ = trio
    owner.files_upload(rand(100), "/Secret/a.bin")
    fid = share(owner, "/Secret").shared_folder_id
    for path in ("ns:{}/a.bin".format(fid), "ns:{}".format(fid)):
        err = api_error(stranger.files_get_metadata, path)
        assert err.get_path().is_not_found(), err
    err = api_error(stranger.sharing_mount_folder, fid)
    assert err.is_access_error() and err.get_access_error().is_not_a_member(), err
    err = api_error(stranger.sharing_get_folder_metadata, fid)
    assert err.is_not_a_member(), err
    with pytest.raises(PathRootError) as ei:
        stranger.with_path_root(common.PathRoot.namespace_id(fid)).files_list_folder("")
    assert ei.value.error.is_no_permission(), ei.value.error
    err = api_error(stranger.files_upload, b"planted", "ns:{}/planted.bin".format(fid))
    assert upload_write_error(err).is_malformed_path() or upload_write_error(err).is_no_write_permission()
    assert paths(owner) == ["/Secret", "/Secret/a.bin"]
    # Nesting: nothing shared inside a shared folder, nor around one.
    owner.files_create_folder_v2("/Secret/inner")
    err = api_error(owner.sharing_share_folder, "/Secret/inner")
    assert err.get_bad_path().is_inside_shared_folder(), err
    owner.files_move_v2("/Secret", "/Outer/Secret")
    err = api_error(owner.sharing_share_folder, "/Outer")
    assert err.get_bad_path().is_contains_shared_folder(), err
    err = api_error(owner.files_copy_v2, "/Outer", "/Copy")
    assert err.is_cant_copy_shared_folder(), err
