"""Shared folders in the web app, in Chromium as two people would use them: the owner
shares a folder from its Share dialog, invites someone by name as a viewer and changes them
to an editor; the other opens the Shared page, adds the folder to their files, opens it,
sees the badge, and leaves. Every outcome is checked through the API with the official SDK.

Screenshots go to /tmp/shots-sharing/ (1280×800 and 390×844) when CUBBY_SHOTS is set.
"""

import os

from conftest import WebUser, web_sign_in
from test_web_actions import dialog, go, put, row, select, toolbar

SHOTS = "/tmp/shots-sharing"


def shot(page, name):
    if os.environ.get("CUBBY_SHOTS"):
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, name + ".png"))


def test_share_a_folder_with_a_person_who_adds_it_and_leaves(web_page, web_browser, server, ca_certs):
    page, owner = web_page, web_page.user
    put(owner.dbx, "/Recipes/soup.txt", "leek and potato")
    guest = WebUser(server, ca_certs)
    go(page)
    select(page, "Recipes")
    toolbar(page, "Share").click()
    d = dialog(page)
    d.get_by_text("Only you have this folder.").wait_for()
    d.get_by_role("textbox", name="Name or e-mail address").fill(guest.name)
    d.get_by_role("combobox", name="Access").select_option("viewer")
    d.get_by_role("button", name="Invite").click()
    d.locator(".person-row").filter(has_text=guest.name).wait_for()
    shot(page, "share-people-1280")
    # The folder is shared now, and the guest is a viewer.
    md = owner.dbx.files_get_metadata("/Recipes")
    fid = md.sharing_info.shared_folder_id
    members = {m.user.display_name: m.access_type for m in owner.dbx.sharing_list_folder_members(fid).users}
    assert members[guest.name].is_viewer()
    # A name nobody has says so, in words.
    d.get_by_role("textbox", name="Name or e-mail address").fill("nobody-here-at-all")
    d.get_by_role("button", name="Invite").click()
    d.get_by_text("Nobody here is called").wait_for()
    # Make the guest an editor.
    d.get_by_role("combobox", name="Access of " + guest.name).select_option("editor")
    for _ in range(50):
        members = {m.user.display_name: m.access_type for m in owner.dbx.sharing_list_folder_members(fid).users}
        if members[guest.name].is_editor():
            break
        page.wait_for_timeout(100)
    assert members[guest.name].is_editor()
    d.get_by_role("button", name="Close").click()
    # The list marks the folder as shared.
    row(page, "Recipes").get_by_text("Shared", exact=True).wait_for()

    # The guest: the Shared page, Add to my files, Open.
    ctx, gp = web_sign_in(web_browser, server, guest)
    try:
        gp.get_by_role("link", name="Shared", exact=True).click()
        item = gp.locator(".shared-item").filter(has_text="Recipes")
        item.get_by_text("Shared by " + owner.name).wait_for()
        shot(gp, "shared-page-1280")
        item.get_by_role("button", name="Add to my files").click()
        item.get_by_role("link", name="Open").wait_for()
        assert guest.dbx.files_get_metadata("/Recipes/soup.txt").size == len("leek and potato")
        item.get_by_role("link", name="Open").click()
        gp.get_by_role("grid", name="Files").wait_for()
        gp.get_by_role("checkbox", name="Select soup.txt", exact=True).wait_for()
        assert gp.url.endswith("/home/Recipes")
        # An editor's change reaches the owner.
        put(guest.dbx, "/Recipes/bread.txt", "flour, water, salt")
        assert owner.dbx.files_download("/Recipes/bread.txt")[1].content == b"flour, water, salt"
        # Leaving takes it out of the guest's files; the owner keeps it.
        gp.get_by_role("link", name="Shared", exact=True).click()
        item = gp.locator(".shared-item").filter(has_text="Recipes")
        item.get_by_role("button", name="Leave").click()
        dialog(gp).get_by_role("button", name="Leave").click()
        gp.get_by_text("Nothing is shared yet.").wait_for()
        assert [e.name for e in guest.dbx.files_list_folder("").entries] == []
        assert owner.dbx.files_get_metadata("/Recipes/bread.txt").size > 0
    finally:
        ctx.close()
