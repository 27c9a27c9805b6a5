"""The web app's browse shell in a real browser (Chromium through Playwright): folders and
breadcrumbs with a URL each, history, sorting, list and grid with thumbnails, a virtual list
of 5,000 entries, keyboard-only use, search as you type, live updates from another client,
hostile file names, a phone viewport and dark mode.

Controls are found by role and accessible name, as a person with a screen reader would.
"""

import os
import re
import time

import dropbox

from conftest import png, web_sign_in

SHOTS = "/tmp/shots-browse"


def grid(page):
    return page.get_by_role("grid", name="Files")


def row(page, text):
    """The list row whose name is `text`."""
    return grid(page).get_by_role("row").filter(has=page.locator("bdi.name", has_text=re.compile("^" + re.escape(text) + "$")))


def names(page):
    """The names of the rows in the DOM, in order."""
    return page.locator("[role=grid] .list-body bdi.name").all_text_contents()


def wait_names(page, want, timeout=10.0):
    """Waits until the drawn names are exactly `want`."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = names(page)
        if got == want:
            return
        time.sleep(0.05)
    assert got == want


def folder_path(page):
    return page.evaluate("location.pathname")


def test_breadcrumbs_url_history_and_reload(web_page):
    page, dbx = web_page, web_page.user.dbx
    dbx.files_upload(b"deep", "/Alpha/Beta Gamma/deep.txt")
    dbx.files_upload(b"top", "/top.txt")
    page.reload()
    page.wait_for_selector("[data-app-ready]")

    grid(page).get_by_role("link", name="Alpha", exact=True).click()
    page.wait_for_url("**/home/Alpha")
    crumbs = page.get_by_role("navigation", name="Breadcrumbs")
    assert crumbs.get_by_role("link").all_text_contents() == ["Home", "Alpha"]
    grid(page).get_by_role("link", name="Beta Gamma", exact=True).click()
    page.wait_for_url("**/home/Alpha/Beta%20Gamma")
    row(page, "deep.txt").wait_for()
    assert crumbs.get_by_role("link").all_text_contents() == ["Home", "Alpha", "Beta Gamma"]
    assert crumbs.get_by_role("link", name="Beta Gamma").get_attribute("aria-current") == "page"

    # A crumb goes up; back and forward walk the history; reload keeps the place.
    crumbs.get_by_role("link", name="Alpha").click()
    page.wait_for_url("**/home/Alpha")
    row(page, "Beta Gamma").wait_for()
    page.go_back()
    page.wait_for_url("**/home/Alpha/Beta%20Gamma")
    row(page, "deep.txt").wait_for()
    page.go_back()
    page.wait_for_url("**/home/Alpha")
    page.go_forward()
    page.wait_for_url("**/home/Alpha/Beta%20Gamma")
    row(page, "deep.txt").wait_for()
    page.reload()
    page.wait_for_selector("[data-app-ready]")
    row(page, "deep.txt").wait_for()
    assert folder_path(page) == "/home/Alpha/Beta%20Gamma"
    crumbs.get_by_role("link", name="Home").click()
    page.wait_for_url("**/home")
    row(page, "top.txt").wait_for()


def test_sort_by_name_size_and_modified(web_page):
    page, dbx = web_page, web_page.user.dbx
    import datetime

    t0 = datetime.datetime(2024, 1, 1, 12, 0, 0)
    # name, size, days after t0 (client_modified: the "Modified" column)
    for name, size, days in (("file10.txt", 5, 1), ("file2.txt", 3000, 3), ("File1.txt", 70, 2)):
        dbx.files_upload(b"x" * size, "/" + name, client_modified=t0 + datetime.timedelta(days=days))
    dbx.files_create_folder_v2("/zeta folder")
    page.reload()
    page.wait_for_selector("[data-app-ready]")

    # Natural name order, folders first.
    wait_names(page, ["zeta folder", "File1.txt", "file2.txt", "file10.txt"])
    name_h = page.get_by_role("columnheader", name="Name")
    assert name_h.get_attribute("aria-sort") == "ascending"
    page.get_by_role("button", name="Name").click()
    wait_names(page, ["zeta folder", "file10.txt", "file2.txt", "File1.txt"])
    assert name_h.get_attribute("aria-sort") == "descending"

    page.get_by_role("button", name="Size").click()
    wait_names(page, ["zeta folder", "file10.txt", "File1.txt", "file2.txt"])
    assert page.get_by_role("columnheader", name="Size").get_attribute("aria-sort") == "ascending"
    assert name_h.get_attribute("aria-sort") == "none"
    page.get_by_role("button", name="Size").click()
    wait_names(page, ["zeta folder", "file2.txt", "File1.txt", "file10.txt"])

    page.get_by_role("button", name="Modified").click()
    wait_names(page, ["zeta folder", "file10.txt", "File1.txt", "file2.txt"])


def test_list_and_grid_show_thumbnails(web_page):
    page, dbx = web_page, web_page.user.dbx
    dbx.files_upload(png(120, 80), "/sunset.png")
    dbx.files_upload(b"text", "/notes.txt")
    page.reload()
    page.wait_for_selector("[data-app-ready]")

    img = row(page, "sunset.png").locator("img")
    # The src is set before the image decodes: wait for both.
    page.wait_for_function(
        "() => { const i = document.querySelector('[role=grid] img');"
        " return i && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0; }"
    )
    assert img.get_attribute("src").startswith("blob:")
    assert img.get_attribute("alt") == ""
    assert row(page, "notes.txt").locator("img").count() == 0

    view = page.get_by_role("button", name="Grid view")
    assert view.get_attribute("aria-pressed") == "false"
    view.click()
    assert view.get_attribute("aria-pressed") == "true"
    tile = row(page, "sunset.png")
    # Tiles: several per line, taller than list rows, with a bigger (w256h256) thumbnail.
    page.wait_for_function(
        "() => { const i = document.querySelector('.grid-view [role=grid] .row img');"
        " return i && i.src.startsWith('blob:') && i.naturalWidth > 64 && i.getBoundingClientRect().width > 100; }"
    )
    box = tile.bounding_box()
    other = row(page, "notes.txt").bounding_box()
    assert box["height"] > 150 and abs(box["y"] - other["y"]) < 2, (box, other)
    # `v` switches back (outside text fields).
    page.locator("body").press("v")
    assert view.get_attribute("aria-pressed") == "false"
    assert row(page, "sunset.png").bounding_box()["height"] == 44


def test_five_thousand_entries_render_virtually(web_page):
    page, dbx = web_page, web_page.user.dbx
    paths = ["/Big/f{:05d}".format(i) for i in range(5000)]
    r = dbx.files_create_folder_batch(paths, force_async=False)
    assert r.is_complete(), r
    dbx.files_upload(b"last", "/Big/zz-last.txt")
    start = time.monotonic()
    page.goto("/home/Big")
    page.wait_for_selector("[data-app-ready]")
    row(page, "f00000").wait_for()
    # Page 1 of 2000 shows at once; then every entry is in and counted.
    page.get_by_text("5,001 items").wait_for()
    assert time.monotonic() - start < 10
    drawn = page.locator("[role=grid] .list-body [role=row]").count()
    assert 0 < drawn < 100, drawn
    assert grid(page).get_attribute("aria-rowcount") == "5002"

    # Scroll to the bottom: the last entry (a file, sorted after the folders) is drawn.
    page.locator(".list-scroll").evaluate("s => s.scrollTop = s.scrollHeight")
    last = row(page, "zz-last.txt")
    last.wait_for()
    assert last.get_attribute("aria-rowindex") == "5002"
    assert last.is_visible()
    drawn = page.locator("[role=grid] .list-body [role=row]").count()
    assert 0 < drawn < 100, drawn
    # Still virtual in the middle; rows sit where their index says.
    page.locator(".list-scroll").evaluate("s => s.scrollTop = 44 * 2500")
    row(page, "f02500").wait_for()
    assert page.locator("[role=grid] .list-body [role=row]").count() < 100


def test_keyboard_only(web_page):
    page, dbx = web_page, web_page.user.dbx
    dbx.files_upload(b"a", "/Inbox/letter.txt")
    dbx.files_upload(b"b", "/Outbox/parcel.txt")
    page.reload()
    page.wait_for_selector("[data-app-ready]")

    # Tab from the search box reaches the list (one tab stop for the whole list).
    page.get_by_role("searchbox", name="Search").focus()
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('role')") == "row":
            break
    focused = lambda: page.evaluate("document.activeElement.querySelector('bdi.name')?.textContent")
    assert focused() == "Inbox"
    page.keyboard.press("ArrowDown")
    assert focused() == "Outbox"
    page.keyboard.press("ArrowUp")
    assert focused() == "Inbox"
    page.keyboard.press("Enter")
    page.wait_for_url("**/home/Inbox")
    row(page, "letter.txt").wait_for()
    page.wait_for_function("() => document.activeElement.getAttribute('role') === 'row'")
    assert focused() == "letter.txt"
    # Enter on a file opens its preview (preview.js); Esc closes it.
    page.keyboard.press("Enter")
    page.locator("dialog[open]").wait_for()
    page.keyboard.press("Escape")
    page.locator("dialog[open]").wait_for(state="detached")
    page.keyboard.press("Alt+ArrowUp")
    page.wait_for_url("**/home")
    # Back in the parent, the focus is on the folder we came from.
    page.wait_for_function("() => document.activeElement.querySelector('bdi.name')?.textContent === 'Inbox'")

    # Selection by keyboard: Ctrl+Space, Ctrl+A, Esc.
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Control+Space")
    assert row(page, "Outbox").get_attribute("aria-selected") == "true"
    assert row(page, "Outbox").get_by_role("checkbox", name="Select Outbox").is_checked()
    page.keyboard.press("Control+a")
    assert row(page, "Inbox").get_attribute("aria-selected") == "true"
    page.get_by_text("2 selected").first.wait_for()
    page.keyboard.press("Escape")
    assert row(page, "Inbox").get_attribute("aria-selected") == "false"
    assert row(page, "Outbox").get_attribute("aria-selected") == "false"

    # F2 and Delete run the actions with those keys on the focused row (here: Rename).
    row(page, "Outbox").click()
    page.keyboard.press("F2")
    dlg = page.get_by_role("dialog", name="Rename")
    dlg.wait_for()
    page.keyboard.press("Escape")
    dlg.wait_for(state="detached")

    # `/` focuses the search; `?` opens the help, where single keys can be switched off.
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.type") == "search"
    page.keyboard.press("Tab")
    page.keyboard.press("?")
    page.get_by_role("dialog", name="Keyboard shortcuts").wait_for()
    page.get_by_role("checkbox", name=re.compile("Single-key shortcuts")).uncheck()
    page.keyboard.press("Escape")
    row(page, "Inbox").click()
    page.keyboard.press("v")
    assert page.get_by_role("button", name="Grid view").get_attribute("aria-pressed") == "false"


def test_search_as_you_type_opens_a_results_folder(web_page):
    page, dbx = web_page, web_page.user.dbx
    dbx.files_upload(b"q", "/Work/Reports/quarterly-figures.txt")
    dbx.files_upload(b"o", "/other.txt")
    page.reload()
    page.wait_for_selector("[data-app-ready]")

    page.get_by_role("searchbox", name="Search").press_sequentially("quarterly", delay=30)
    hit = row(page, "quarterly-figures.txt")
    hit.wait_for()
    page.wait_for_url("**/search?q=quarterly")
    assert row(page, "other.txt").count() == 0
    # The result names its folder; that link opens it.
    hit.get_by_role("link", name=re.compile("Reports")).click()
    page.wait_for_url("**/home/Work/Reports")
    row(page, "quarterly-figures.txt").wait_for()
    assert page.get_by_role("navigation", name="Breadcrumbs").get_by_role("link").all_text_contents() == ["Home", "Work", "Reports"]
    # Back returns to the results.
    page.go_back()
    page.wait_for_url("**/search?q=quarterly")
    row(page, "quarterly-figures.txt").wait_for()


def test_another_clients_upload_appears_without_reload(web_page):
    page, dbx = web_page, web_page.user.dbx
    dbx.files_upload(b"1", "/first.txt")
    page.reload()
    page.wait_for_selector("[data-app-ready]")
    row(page, "first.txt").wait_for()
    time.sleep(0.3)  # the longpoll is in flight
    start = time.monotonic()
    dbx.files_upload(b"hello", "/from-elsewhere.txt")
    row(page, "from-elsewhere.txt").wait_for(timeout=5000)
    assert time.monotonic() - start < 3
    dbx.files_delete_v2("/first.txt")
    row(page, "first.txt").wait_for(state="detached", timeout=5000)

    # Deleted files: the toggle shows the deleted one greyed with a marker.
    toggle = page.get_by_role("button", name="Deleted files")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    gone = row(page, "first.txt")
    gone.wait_for()
    assert "Deleted" in gone.inner_text()
    assert "deleted" in gone.get_attribute("class")
    toggle.click()
    gone.wait_for(state="detached")


def test_two_pages_on_one_folder_see_each_others_changes(web_browser, server, web_user):
    """Two browsers signed in as one person: a folder made, a file renamed and a file deleted
    in one page appear in the other without a reload."""
    web_user.dbx.files_upload(b"x", "/shared/a.txt")
    web_user.dbx.files_upload(b"y", "/shared/b.txt")
    ctx_a, a = web_sign_in(web_browser, server, web_user)
    ctx_b, b = web_sign_in(web_browser, server, web_user)
    try:
        for p in (a, b):
            p.goto("/home/shared")
            row(p, "a.txt").wait_for()
        time.sleep(0.3)  # both longpolls are in flight
        a.get_by_role("button", name="New folder").click()
        a.get_by_role("dialog").get_by_role("textbox").fill("made in A")
        a.get_by_role("dialog").get_by_role("button", name="Create").click()
        row(a, "made in A").wait_for()
        row(b, "made in A").wait_for(timeout=5000)
        b.keyboard.press("Escape")
        row(b, "a.txt").click()
        b.get_by_role("button", name="Delete").first.click()
        row(b, "a.txt").wait_for(state="detached")
        row(a, "a.txt").wait_for(state="detached", timeout=5000)
    finally:
        ctx_a.close()
        ctx_b.close()


def test_hostile_file_name_is_literal_text(web_page):
    page, dbx = web_page, web_page.user.dbx
    evil = "<img src=x onerror=alert(1)>.txt"
    dbx.files_upload(b"x", "/" + evil)
    dbx.files_upload(b"x", "/<svg onload=alert(2)>/inner.txt")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.reload()
    page.wait_for_selector("[data-app-ready]")
    r = row(page, evil)
    r.wait_for()
    assert r.locator("bdi.name").text_content() == evil
    assert r.get_by_role("checkbox", name="Select " + evil).count() == 1
    assert r.get_by_role("button", name="Actions for " + evil).count() == 1
    assert page.locator("img[src='x']").count() == 0
    grid(page).get_by_role("link", name="<svg onload=alert(2)>").click()
    page.wait_for_url("**/home/%3Csvg%20onload%3Dalert(2)%3E")
    row(page, "inner.txt").wait_for()
    assert page.locator("svg[onload]").count() == 0
    assert page.get_by_role("navigation", name="Breadcrumbs").get_by_role("link").all_text_contents() == ["Home", "<svg onload=alert(2)>"]
    # Reload decodes the URL back to the same folder.
    page.reload()
    page.wait_for_selector("[data-app-ready]")
    row(page, "inner.txt").wait_for()
    time.sleep(0.3)
    assert dialogs == []


def test_row_menu_and_selection_by_pointer(web_page):
    page, dbx = web_page, web_page.user.dbx
    for n in ("a.txt", "b.txt", "c.txt", "d.txt"):
        dbx.files_upload(b"x", "/" + n)
    page.reload()
    page.wait_for_selector("[data-app-ready]")
    row(page, "a.txt").click()
    row(page, "c.txt").click(modifiers=["Shift"])
    sel = lambda: [n for n in "abcd" if row(page, n + ".txt").get_attribute("aria-selected") == "true"]
    assert sel() == ["a", "b", "c"]
    row(page, "b.txt").click(modifiers=["Control"])
    assert sel() == ["a", "c"]
    row(page, "d.txt").get_by_role("checkbox", name="Select d.txt").check()
    assert sel() == ["a", "c", "d"]
    assert page.evaluate("document.getElementById('live').textContent") in ("3 selected; actions above", "")
    row(page, "b.txt").click()
    assert sel() == ["b"]
    # The per-row menu opens and closes with Esc, focus back on its button.
    more = page.get_by_role("button", name="Actions for b.txt")
    more.click()
    menu = page.get_by_role("menu", name="Actions for b.txt")
    menu.wait_for()
    assert menu.get_by_role("menuitem").count() >= 1
    page.keyboard.press("Escape")
    menu.wait_for(state="detached")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Actions for b.txt"
    # The Upload menu offers files and a folder.
    page.get_by_role("button", name="Upload").click()
    up = page.get_by_role("menu", name="Upload")
    assert up.get_by_role("menuitem").all_text_contents() == ["Files", "Folder"]
    page.keyboard.press("Escape")
    # The header: the person, the account page and sign out.
    assert page.text_content("#user") == page.user.name
    assert page.get_by_role("link", name="Account").get_attribute("href") == "/account"
    assert page.get_by_role("button", name="Sign out").count() == 1


def test_double_click_opens_the_row_under_the_pointer(web_page):
    """The first click selects a file, which adds its actions to the toolbar; the list must
    not move, or the second click lands on the row above and opens another file."""
    page, dbx = web_page, web_page.user.dbx
    for n in ("first.txt", "second.txt", "third.txt"):
        dbx.files_upload(n.encode(), "/" + n)
    page.reload()
    page.wait_for_selector("[data-app-ready]")
    top = grid(page).bounding_box()["y"]
    row(page, "third.txt").locator("bdi.name").dblclick()
    dialog = page.locator("dialog[open]")
    dialog.wait_for()
    assert dialog.locator("bdi.name").first.text_content() == "third.txt"
    assert grid(page).bounding_box()["y"] == top, "the list moved when a file was selected"
    page.keyboard.press("Escape")


def test_phone_viewport_and_dark_mode(web_browser, server, web_user):
    os.makedirs(SHOTS, exist_ok=True)
    dbx = web_user.dbx
    long_name = "A rather long file name that a phone must still show.txt"
    dbx.files_upload(b"x" * 2048, "/" + long_name)
    dbx.files_upload(png(64, 64), "/photo.png")
    dbx.files_create_folder_v2("/Projects")
    bgs = {}
    for scheme in ("light", "dark"):
        for vw, vh, tag in ((390, 844, "phone"), (1280, 800, "desktop")):
            ctx, page = web_sign_in(web_browser, server, web_user, viewport={"width": vw, "height": vh}, color_scheme=scheme)
            try:
                r = row(page, long_name)
                r.wait_for()
                name = r.locator("bdi.name")
                box = name.bounding_box()
                cell = r.locator(".cell-name").bounding_box()
                # The name column takes what the row has left: most of a phone's width.
                assert cell["width"] > (250 if tag == "phone" else 600), cell
                assert box["width"] > 200, box
                assert box["x"] + box["width"] <= vw
                if tag == "desktop":  # shown whole, not cut with an ellipsis
                    assert name.evaluate("n => n.scrollWidth <= n.clientWidth + 1")
                # Size and date still shown (under the name on a phone).
                size = r.get_by_text("2 KB")
                assert size.is_visible()
                if tag == "phone":
                    assert size.bounding_box()["y"] > box["y"] + 5
                    assert page.evaluate("document.documentElement.scrollWidth") <= vw
                page.wait_for_function("() => document.querySelector('[role=grid] img')?.src.startsWith('blob:')")
                bgs[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
                page.screenshot(path="{}/{}-{}.png".format(SHOTS, tag, scheme))
            finally:
                ctx.close()
    assert bgs["light"] != bgs["dark"], bgs
    assert bgs["dark"] in ("rgb(22, 22, 24)",), bgs


DROP_FILE_JS = """([selector, name]) => {
  const dt = new DataTransfer();
  dt.items.add(new File(["dropped"], name, { type: "text/plain" }));
  const target = document.querySelector(selector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }
}"""


DRAG_ROW_JS = """([from, to]) => {
  const byName = (n) => [...document.querySelectorAll("[role=grid] .row")].find((r) => r.querySelector("bdi.name").textContent === n);
  const dt = new DataTransfer();
  const fire = (el, type) => el.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  fire(byName(from), "dragstart");
  fire(byName(to), "dragenter");
  fire(byName(to), "dragover");
  fire(byName(to), "drop");
  fire(byName(from), "dragend");
}"""


def wait_for_file(dbx, path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return dbx.files_get_metadata(path)
        except dropbox.exceptions.ApiError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_drag_and_drop(web_page):
    page, dbx = web_page, web_page.user.dbx
    dbx.files_upload(b"m", "/Parent/Target/keep.txt")
    dbx.files_upload(b"m", "/Parent/mover.txt")
    page.goto("/home/Parent")
    page.wait_for_selector("[data-app-ready]")
    row(page, "mover.txt").wait_for()

    # A row dragged onto a folder row moves it there. (Synthetic drag events: Playwright's
    # mouse drag hangs in headless Chromium.)
    page.evaluate(DRAG_ROW_JS, ["mover.txt", "Target"])
    row(page, "mover.txt").wait_for(state="detached")
    wait_for_file(dbx, "/Parent/Target/mover.txt")

    # OS files dropped on the list upload into the open folder; on a crumb, into that one.
    page.evaluate(DROP_FILE_JS, [".list-scroll", "onto-list.txt"])
    row(page, "onto-list.txt").wait_for()
    wait_for_file(dbx, "/Parent/onto-list.txt")
    page.evaluate(DROP_FILE_JS, [".crumbs a[href='/home']", "onto-crumb.txt"])
    wait_for_file(dbx, "/onto-crumb.txt")
    page.evaluate(DROP_FILE_JS, [".row.folder", "onto-row.txt"])
    wait_for_file(dbx, "/Parent/Target/onto-row.txt")
