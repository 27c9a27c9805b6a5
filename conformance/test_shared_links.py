"""Shared links through the official SDK: the sharing routes, their error unions as the SDK
parses them, list_folder through a link, and the public URL fetched with requests."""

import datetime
import re

import requests
from dropbox import files, sharing

from cubby_helpers import api_error, lookup_error, rand


def link_token_path(url):
    """The path part of a link URL (/s/<token>/<name>)."""
    m = re.match(r"^https://[^/]+(/s/[A-Za-z0-9_-]{43}/[^?]+)$", url)
    assert m, url
    return m.group(1)


def test_create_list_get_and_revoke_a_file_link(dbx, base, http):
    data = rand(5000)
    up = dbx.files_upload(data, base + "/Report.bin")
    md = dbx.sharing_create_shared_link_with_settings(
        base + "/report.bin",
        sharing.SharedLinkSettings(requested_visibility=sharing.RequestedVisibility.public),
    )
    assert isinstance(md, sharing.FileLinkMetadata), md
    assert md.name == "Report.bin"
    assert md.path_lower == (base + "/report.bin").lower()
    assert md.id == up.id and md.rev == up.rev and md.size == 5000
    assert md.expires is None
    perms = md.link_permissions
    assert perms.can_revoke is True
    assert perms.resolved_visibility.is_public()
    assert perms.allow_download is True
    link_token_path(md.url)

    # The public URL: bytes, a range, an attachment.
    r = http.get(md.url)
    assert r.status_code == 200 and r.content == data
    r = http.get(md.url, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["Content-Range"] == "bytes 10-19/5000"
    r = http.get(md.url + "?dl=1")
    assert r.headers["Content-Disposition"].startswith("attachment;")

    # A second create reports the existing link, with its metadata.
    err = api_error(dbx.sharing_create_shared_link_with_settings, base + "/report.bin")
    assert isinstance(err, sharing.CreateSharedLinkWithSettingsError)
    assert err.is_shared_link_already_exists(), err
    existing = err.get_shared_link_already_exists()
    assert existing is not None and existing.is_metadata()
    assert existing.get_metadata().url == md.url

    listed = dbx.sharing_list_shared_links()
    assert md.url in [l.url for l in listed.links]
    assert listed.has_more is False
    assert listed.cursor
    by_path = dbx.sharing_list_shared_links(path=base + "/report.bin", direct_only=True)
    assert [l.url for l in by_path.links] == [md.url]

    got = dbx.sharing_get_shared_link_metadata(md.url)
    assert isinstance(got, sharing.FileLinkMetadata)
    assert got.url == md.url and got.rev == up.rev

    fmd, resp = dbx.sharing_get_shared_link_file(md.url)
    try:
        assert resp.content == data
    finally:
        resp.close()
    assert isinstance(fmd, sharing.FileLinkMetadata) and fmd.size == 5000

    assert dbx.sharing_revoke_shared_link(md.url) is None
    assert http.get(md.url).status_code == 404
    err = api_error(dbx.sharing_get_shared_link_metadata, md.url)
    assert isinstance(err, sharing.SharedLinkError)
    assert err.is_shared_link_not_found(), err
    err = api_error(dbx.sharing_revoke_shared_link, md.url)
    assert err.is_shared_link_not_found(), err


def test_folder_link_listing_and_paths(dbx, base, http):
    dbx.files_upload(b"alpha", base + "/F/a.txt")
    dbx.files_upload(b"beta", base + "/F/Sub/b.txt")
    md = dbx.sharing_create_shared_link_with_settings(base + "/F")
    assert isinstance(md, sharing.FolderLinkMetadata), md

    r = dbx.files_list_folder(path="", shared_link=files.SharedLink(url=md.url))
    names = sorted(e.name for e in r.entries)
    assert names == ["Sub", "a.txt"]
    assert all(e.path_lower is None for e in r.entries)
    sub = dbx.files_list_folder(path="/sub", shared_link=files.SharedLink(url=md.url))
    assert [e.name for e in sub.entries] == ["b.txt"]
    assert isinstance(sub.entries[0], files.FileMetadata)

    child = dbx.sharing_get_shared_link_metadata(md.url, path="/Sub/b.txt")
    assert isinstance(child, sharing.FileLinkMetadata) and child.name == "b.txt"
    fmd, resp = dbx.sharing_get_shared_link_file(md.url, path="/a.txt")
    try:
        assert resp.content == b"alpha"
    finally:
        resp.close()

    err = api_error(dbx.sharing_get_shared_link_file, md.url)
    assert isinstance(err, sharing.GetSharedLinkFileError)
    assert err.is_shared_link_is_directory(), err
    err = api_error(dbx.sharing_get_shared_link_metadata, md.url, path="/missing")
    assert err.is_shared_link_not_found(), err
    err = api_error(
        dbx.files_list_folder, path="/missing", shared_link=files.SharedLink(url=md.url)
    )
    assert lookup_error(err).is_not_found(), err

    page = http.get(md.url)
    assert page.status_code == 200 and "a.txt" in page.text
    assert http.get(md.url + "?path=%2FSub%2Fb.txt").content == b"beta"

    # Links to a folder above an item are listed for it unless direct_only.
    above = dbx.sharing_list_shared_links(path=base + "/F/Sub/b.txt")
    assert [l.url for l in above.links] == [md.url]
    assert dbx.sharing_list_shared_links(path=base + "/F/Sub/b.txt", direct_only=True).links == []


def test_password_and_expiry_settings(dbx, dbx2, base, http):
    dbx.files_upload(b"secret bytes", base + "/p.txt")
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    expires = (now + datetime.timedelta(hours=2)).replace(microsecond=0)
    md = dbx.sharing_create_shared_link_with_settings(
        base + "/p.txt",
        sharing.SharedLinkSettings(
            requested_visibility=sharing.RequestedVisibility.password,
            link_password="hunter22",
            expires=expires,
        ),
    )
    assert md.expires == expires
    assert md.link_permissions.resolved_visibility.is_password()

    # Another user needs the password through the API.
    err = api_error(dbx2.sharing_get_shared_link_metadata, md.url)
    assert err.is_shared_link_access_denied(), err
    err = api_error(dbx2.sharing_get_shared_link_metadata, md.url, link_password="nope")
    assert err.is_shared_link_access_denied(), err
    other = dbx2.sharing_get_shared_link_metadata(md.url, link_password="hunter22")
    assert other.path_lower is None and other.link_permissions.can_revoke is False
    _, resp = dbx2.sharing_get_shared_link_file(md.url, link_password="hunter22")
    try:
        assert resp.content == b"secret bytes"
    finally:
        resp.close()

    # The public URL shows a form; a wrong password is refused; the right one sets a cookie.
    r = http.get(md.url)
    assert r.status_code == 200 and 'name="password"' in r.text
    assert "secret bytes" not in r.text
    with requests.Session() as s:
        s.verify = http.verify
        s.trust_env = False
        r = s.post(md.url, data={"password": "wrong"}, allow_redirects=False)
        assert r.status_code == 401 and 'id="error"' in r.text
        r = s.post(md.url, data={"password": "hunter22"}, allow_redirects=False)
        assert r.status_code == 302
        cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "Secure" in cookie
        assert "Path=" + link_token_path(md.url).rsplit("/", 1)[0] in cookie
        assert "hunter22" not in cookie
        r = s.get(md.url)
        assert r.status_code == 200 and r.content == b"secret bytes"
        r = s.get(md.url, headers={"Range": "bytes=7-"})
        assert r.status_code == 206 and r.content == b"bytes"

    # Settings errors.
    err = api_error(
        dbx.sharing_modify_shared_link_settings,
        md.url,
        sharing.SharedLinkSettings(expires=datetime.datetime(2001, 1, 1)),
    )
    assert isinstance(err, sharing.ModifySharedLinkSettingsError)
    assert err.is_settings_error() and err.get_settings_error().is_invalid_settings(), err
    dbx.files_upload(b"x", base + "/q.txt")
    err = api_error(
        dbx.sharing_create_shared_link_with_settings,
        base + "/q.txt",
        sharing.SharedLinkSettings(requested_visibility=sharing.RequestedVisibility.password),
    )
    assert err.is_settings_error() and err.get_settings_error().is_invalid_settings(), err

    # Removing the expiry and the password opens the link to everyone.
    changed = dbx.sharing_modify_shared_link_settings(
        md.url,
        sharing.SharedLinkSettings(requested_visibility=sharing.RequestedVisibility.public),
        remove_expiration=True,
    )
    assert changed.expires is None
    assert changed.link_permissions.resolved_visibility.is_public()
    assert http.get(md.url).content == b"secret bytes"


def test_error_unions(dbx, dbx2, base):
    err = api_error(dbx.sharing_create_shared_link_with_settings, base + "/none.txt")
    assert isinstance(err, sharing.CreateSharedLinkWithSettingsError)
    assert err.is_path() and err.get_path().is_not_found(), err

    dbx.files_upload(b"mine", base + "/mine.txt")
    md = dbx.sharing_create_shared_link_with_settings(base + "/mine.txt")
    # Another user may read through the link, but not change or revoke it.
    err = api_error(dbx2.sharing_revoke_shared_link, md.url)
    assert isinstance(err, sharing.RevokeSharedLinkError)
    assert err.is_shared_link_access_denied(), err
    err = api_error(
        dbx2.sharing_modify_shared_link_settings,
        md.url,
        sharing.SharedLinkSettings(allow_download=False),
    )
    assert err.is_shared_link_access_denied(), err
    assert dbx2.sharing_get_shared_link_metadata(md.url).name == "mine.txt"

    err = api_error(dbx.sharing_revoke_shared_link, "https://example.com/not-a-link")
    assert err.is_shared_link_malformed(), err
    err = api_error(dbx.sharing_get_shared_link_metadata, "https://example.com/s/x/y")
    assert err.is_shared_link_not_found(), err
    err = api_error(dbx.sharing_list_shared_links, cursor="k0.bogus.cursor")
    assert isinstance(err, sharing.ListSharedLinksError)
    assert err.is_reset(), err
    err = api_error(dbx.sharing_list_shared_links, path=base + "/none")
    assert err.is_path() and err.get_path().is_not_found(), err


def test_app_folder_links_stay_in_the_app_folder(server, new_client, dbx, base):
    dbx.files_upload(b"outside", base + "/outside.txt")
    made = server.admin("app", "add", "Links " + base[-6:], "--access", "app_folder")
    tok = server.admin("token", "alice", "--app", made["app_key"])
    app = new_client(tok["access_token"])
    app.files_upload(b"in", "/in.txt")
    md = app.sharing_create_shared_link_with_settings("/in.txt")
    assert md.path_lower == "/in.txt"
    err = api_error(app.sharing_create_shared_link_with_settings, base + "/outside.txt")
    assert err.is_path() and err.get_path().is_not_found(), err
    full = dbx.sharing_create_shared_link_with_settings(base + "/outside.txt")
    err = api_error(app.sharing_revoke_shared_link, full.url)
    assert err.is_shared_link_access_denied(), err
    assert [l.url for l in app.sharing_list_shared_links().links] == [md.url]
