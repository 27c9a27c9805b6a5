"""The web app's file actions and previews, driven in Chromium as a person would: select a
row, press a toolbar button, fill the dialog; every outcome is checked through the API with
the official SDK (page.user.dbx).

Screenshots of the dialogs and previews go to /tmp/shots-actions/ (1280×800 and 390×844,
light and dark) when CUBBY_SHOTS is set.
"""

import base64
import os
import re
import zipfile

import dropbox
import pytest
from dropbox.files import WriteMode

from conftest import png, web_sign_in

SHOTS = "/tmp/shots-actions"


# ---------------------------------------------------------------------------------------
# Helpers.


def put(dbx, path, data, mode=WriteMode.overwrite):
    if isinstance(data, str):
        data = data.encode()
    return dbx.files_upload(data, path, mode=mode)


def content(dbx, path):
    return dbx.files_download(path)[1].content


def exists(dbx, path):
    try:
        dbx.files_get_metadata(path)
        return True
    except dropbox.exceptions.ApiError:
        return False


def pdf():
    """A one-page PDF saying "Hello PDF"."""
    stream = b"BT /F1 36 Tf 72 700 Td (Hello PDF) Tj ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


def webm(page):
    """A short WebM recorded in the page from a canvas (real, playable video)."""
    b64 = page.evaluate(
        """async () => {
        const c = document.createElement('canvas'); c.width = 160; c.height = 120;
        const g = c.getContext('2d');
        const rec = new MediaRecorder(c.captureStream(15), {mimeType: 'video/webm'});
        const parts = []; rec.ondataavailable = (e) => parts.push(e.data);
        const stopped = new Promise((r) => (rec.onstop = r));
        rec.start();
        for (let i = 0; i < 12; i++) {
          g.fillStyle = `hsl(${i * 30}, 80%, 50%)`; g.fillRect(0, 0, 160, 120);
          await new Promise((r) => setTimeout(r, 60));
        }
        rec.stop(); await stopped;
        const buf = new Uint8Array(await new Blob(parts).arrayBuffer());
        let s = ''; for (const b of buf) s += String.fromCharCode(b);
        return btoa(s);
      }"""
    )
    return base64.b64decode(b64)


def go(page, folder=""):
    """Opens a folder in the app and waits for its list."""
    page.goto("/home" + folder)
    page.wait_for_selector("[data-app-ready]")
    page.get_by_role("grid", name="Files").wait_for()


def row(page, name):
    return page.get_by_role("row").filter(has=page.get_by_role("checkbox", name="Select " + name, exact=True)).first


def select(page, *names):
    for n in names:
        page.get_by_role("checkbox", name="Select " + n, exact=True).first.check()


def toolbar(page, label):
    return page.get_by_role("toolbar", name="Actions").get_by_role("button", name=label, exact=True)


def dialog(page):
    return page.locator("dialog[open]").last


def toast(page, text):
    t = page.locator(".toast").filter(has_text=text)
    t.first.wait_for()
    return t.first


def preview(page, name):
    """Opens a file's preview as a person does: the row's "…" menu, then Preview."""
    page.get_by_role("button", name="Actions for " + name, exact=True).first.click()
    page.get_by_role("menuitem", name="Preview", exact=True).click()
    d = page.locator("dialog.preview[open]")
    d.wait_for()
    page.wait_for_selector("dialog.preview .preview-stage[aria-busy=false]")
    return d


def shot(page, name):
    if os.environ.get("CUBBY_SHOTS"):
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, name + ".png"))


@pytest.fixture(autouse=True)
def _page_log(request):
    """The page's console errors and uncaught exceptions, printed (shown on a failure)."""
    if "web_page" in request.fixturenames:
        page = request.getfixturevalue("web_page")
        page.on("console", lambda m: m.type in ("error", "warning") and print("console:", m.text))
        page.on("pageerror", lambda e: print("pageerror:", e))
    yield


# ---------------------------------------------------------------------------------------
# Tests.


def test_new_folder_and_rename(web_page):
    page, dbx = web_page, web_page.user.dbx
    put(dbx, "/notes.txt", "n")
    go(page)

    toolbar(page, "New folder").click()
    d = dialog(page)
    d.get_by_role("button", name="Create").click()
    d.get_by_text("Enter a name.").wait_for()
    d.get_by_role("textbox").fill("a/b")
    d.get_by_role("button", name="Create").click()
    d.get_by_text("cannot contain").wait_for()
    d.get_by_role("textbox").fill("NOTES.txt")
    d.get_by_role("button", name="Create").click()
    d.get_by_text("already exists here").wait_for()
    d.get_by_role("textbox").fill("Reports")
    d.get_by_role("textbox").press("Enter")
    toast(page, "Created folder Reports")
    assert dbx.files_get_metadata("/Reports").name == "Reports"
    row(page, "Reports").wait_for()

    # Rename: the stem is selected, so typing replaces it and keeps ".txt".
    select(page, "notes.txt")
    toolbar(page, "Rename").click()
    box = dialog(page).get_by_role("textbox")
    assert box.evaluate("i => [i.selectionStart, i.selectionEnd]") == [0, 5]
    page.keyboard.type("minutes")
    box.press("Enter")
    toast(page, "Renamed to minutes.txt")
    assert content(dbx, "/minutes.txt") == b"n"
    assert not exists(dbx, "/notes.txt")

    # A clash is said in words, in the dialog, and nothing moves.
    row(page, "minutes.txt").wait_for()
    select(page, "minutes.txt")
    page.keyboard.press("F2")
    d = dialog(page)
    d.get_by_role("textbox").fill("reports")
    d.get_by_role("button", name="Rename").click()
    d.get_by_role("alert").filter(has_text="already exists").wait_for()
    d.get_by_role("button", name="Cancel").click()
    assert exists(dbx, "/minutes.txt")


def test_move_and_copy_through_the_picker_and_undo(web_page):
    page, dbx = web_page, web_page.user.dbx
    put(dbx, "/src/x.txt", "x")
    put(dbx, "/src/y.txt", "y")
    dbx.files_create_folder_v2("/dest/inner")
    go(page, "/src")

    select(page, "x.txt", "y.txt")
    toolbar(page, "Move").click()
    d = dialog(page)
    d.get_by_role("button", name="All files").click()
    d.get_by_role("button", name="dest", exact=True).click()
    d.get_by_text("inner").wait_for()
    shot(page, "picker-1280-light")
    d.get_by_role("button", name="Move here").click()
    t = toast(page, "Moved 2 items to dest")
    assert content(dbx, "/dest/x.txt") == b"x" and content(dbx, "/dest/y.txt") == b"y"
    assert not exists(dbx, "/src/x.txt")

    t.get_by_role("button", name="Undo").click()
    toast(page, "Moved back 2 items")
    assert content(dbx, "/src/x.txt") == b"x" and not exists(dbx, "/dest/x.txt")

    row(page, "x.txt").wait_for()
    select(page, "x.txt")
    toolbar(page, "Copy").click()
    d = dialog(page)
    d.get_by_role("button", name="All files").click()
    d.get_by_role("button", name="dest", exact=True).click()
    d.get_by_role("button", name="inner", exact=True).click()
    d.locator(".picker-here").filter(has_text="inner").wait_for()
    # A folder made inside the picker appears in it.
    d.get_by_role("button", name="New folder").click()
    nd = dialog(page)
    nd.get_by_role("textbox").fill("fresh")
    nd.get_by_role("button", name="Create").click()
    d.get_by_role("button", name="fresh", exact=True).wait_for()
    assert exists(dbx, "/dest/inner/fresh")
    d.get_by_role("button", name="Copy here").click()
    toast(page, "Copied 1 item to inner")
    assert content(dbx, "/dest/inner/x.txt") == b"x"
    assert content(dbx, "/src/x.txt") == b"x"

    # A drop on a folder gives the destination: no picker.
    page.evaluate(
        """async () => {
        const ui = await import('/assets/ui.js');
        const {actions} = await import('/assets/actions.js');
        const e = ui.state.entries.find((e) => e.name === 'y.txt');
        await actions.find((a) => a.id === 'move').run([e], '/dest/inner');
      }"""
    )
    assert page.locator("dialog[open]").count() == 0
    toast(page, "Moved 1 item to inner")
    assert content(dbx, "/dest/inner/y.txt") == b"y"


def test_delete_with_undo_then_restore_from_deleted_files(web_page):
    page, dbx = web_page, web_page.user.dbx
    put(dbx, "/d/keep/a.txt", "a")
    put(dbx, "/d/b.txt", "b")
    dbx.files_create_folder_v2("/d/empty")
    put(dbx, "/loose.txt", "loose")
    go(page)

    select(page, "d", "loose.txt")
    toolbar(page, "Delete").click()
    t = toast(page, "Deleted 2 items")
    assert not exists(dbx, "/d") and not exists(dbx, "/loose.txt")
    t.get_by_role("button", name="Undo").click()
    toast(page, "Restored 2 items")
    assert content(dbx, "/d/keep/a.txt") == b"a"
    assert content(dbx, "/d/b.txt") == b"b"
    assert exists(dbx, "/d/empty")
    assert content(dbx, "/loose.txt") == b"loose"

    # Deleted through the API; brought back from the "Deleted files" view.
    dbx.files_delete_v2("/loose.txt")
    dbx.files_delete_v2("/d")
    go(page)
    page.get_by_role("button", name="Deleted files").click()
    select(page, "loose.txt", "d")
    toolbar(page, "Restore").click()
    toast(page, "Restored 2 items")
    assert content(dbx, "/loose.txt") == b"loose"
    assert content(dbx, "/d/keep/a.txt") == b"a"
    assert content(dbx, "/d/b.txt") == b"b"
    assert exists(dbx, "/d/empty")


def test_version_history_lists_and_restores(web_page):
    page, dbx = web_page, web_page.user.dbx
    for text in ("first", "second", "third"):
        put(dbx, "/v.txt", text)
    go(page)
    select(page, "v.txt")
    toolbar(page, "Version history").click()
    d = dialog(page)
    rows = d.locator("tbody tr")
    d.get_by_text("3 versions.").wait_for()
    assert rows.count() == 3
    assert rows.nth(0).get_by_text("Current").is_visible()
    shot(page, "history-1280-light")

    # Preview of the oldest version shows its text, over the dialog.
    rows.nth(2).get_by_role("button", name=re.compile("^Preview")).click()
    pv = page.locator("dialog.preview[open]")
    pv.locator("pre").filter(has_text="first").wait_for()
    pv.get_by_role("button", name="Close").click()

    rows.nth(2).get_by_role("button", name=re.compile("^Restore")).click()
    toast(page, "Restored the version")
    d.get_by_text("4 versions.").wait_for()
    assert content(dbx, "/v.txt") == b"first"


def test_share_with_password_then_revoke(web_page, web_browser, server):
    page, dbx = web_page, web_page.user.dbx
    put(dbx, "/deck.txt", "slides")
    go(page)
    select(page, "deck.txt")
    toolbar(page, "Share").click()
    d = dialog(page)
    d.get_by_text("No links yet.").wait_for()
    d.get_by_label("Password (optional)").fill("open-sesame-42")
    d.get_by_role("button", name="Create link").click()
    url_box = d.get_by_role("textbox", name="Link")
    url_box.wait_for()
    url = url_box.input_value()
    d.get_by_text("Password protected").wait_for()
    d.get_by_role("button", name="Copy").click()
    d.get_by_role("button", name="Copied").wait_for()
    assert d.get_by_role("button", name="Update link").is_visible()
    shot(page, "share-1280-light")
    links = dbx.sharing_list_shared_links(path="/deck.txt", direct_only=True).links
    assert [l.url for l in links] == [url]

    # Someone else opening the link meets the password form.
    other = web_browser.new_context(ignore_https_errors=True)
    try:
        p2 = other.new_page()
        p2.goto(url)
        assert p2.locator("input#password").is_visible()
        assert "slides" not in p2.content()

        d.get_by_role("button", name="Revoke").click()
        d.get_by_text("No links yet.").wait_for()
        assert dbx.sharing_list_shared_links(path="/deck.txt", direct_only=True).links == []
        r = p2.goto(url)
        assert r.status in (404, 410)

        # A new link with an expiry date only.
        d.get_by_label("Expires (optional)").fill("2031-06-30")
        d.get_by_role("button", name="Create link").click()
        d.locator(".share-note").filter(has_text=re.compile("^Expires ")).wait_for()
        links = dbx.sharing_list_shared_links(path="/deck.txt", direct_only=True).links
        assert len(links) == 1 and links[0].expires.year == 2031
        assert p2.goto(links[0].url).status == 200
    finally:
        other.close()


def test_preview_image_text_and_hostile_name(web_page):
    page, dbx = web_page, web_page.user.dbx
    fired = []
    page.on("dialog", lambda dlg: (fired.append(dlg.message), dlg.dismiss()))
    put(dbx, "/pics/photo.png", png(1200, 900))
    put(dbx, "/pics/readme.md", "# Title\n<script>alert(2)</script>\nplain words")
    hostile = "<img src=x onerror=alert(1)>.txt"
    put(dbx, "/pics/" + hostile, "boo")
    go(page, "/pics")

    pv = preview(page, "photo.png")
    img = pv.locator("img.preview-img")
    page.wait_for_function("() => document.querySelector('dialog.preview img.preview-img')?.naturalWidth > 0")
    assert "get_thumbnail_v2" in img.get_attribute("src")
    pv.get_by_role("button", name="Full size").click()
    page.wait_for_function(
        "() => { const i = document.querySelector('dialog.preview img.preview-img');"
        " return i.src.includes('files/download') && i.complete && i.naturalWidth === 1200 }"
    )
    # Arrow keys step through the folder's files (sorted by name): photo.png → readme.md.
    page.keyboard.press("ArrowRight")
    pv.locator("pre").filter(has_text="<script>alert(2)</script>").wait_for()
    assert pv.locator("h2").inner_text() == "readme.md"
    page.keyboard.press("Escape")
    page.locator("dialog.preview").wait_for(state="detached")
    assert page.evaluate("document.activeElement.dataset.path") == "/pics/readme.md"

    pv = preview(page, hostile)
    assert pv.locator("h2").inner_text() == hostile
    pv.locator("pre").filter(has_text="boo").wait_for()
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("dialog.preview script").count() == 0
    pv.get_by_role("button", name="Close").click()

    # A big text file: the first MiB only, said so.
    put(dbx, "/pics/big.log", ("line of the log\n" * 80000))
    go(page, "/pics")
    pv = preview(page, "big.log")
    pv.get_by_text(re.compile(r"Showing the first 1 MB of 1\.2 MB")).wait_for()
    assert len(pv.locator("pre").text_content()) == 1024 * 1024
    pv.get_by_role("button", name="Close").click()

    # SVG: decoded as an image (script inert) and shown as pixels, never as a document.
    put(dbx, "/pics/evil.svg", '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
        '<script>alert(3)</script><rect width="40" height="20" fill="red"/></svg>')
    go(page, "/pics")
    pv = preview(page, "evil.svg")
    pv.locator("canvas").wait_for()
    assert pv.locator("svg, iframe, object, embed").count() == 0
    pv.get_by_role("button", name="Close").click()
    assert fired == []


def test_preview_video_seeks_and_pdf_renders(web_page):
    page, dbx = web_page, web_page.user.dbx
    put(dbx, "/m/clip.webm", webm(page))
    put(dbx, "/m/paper.pdf", pdf())
    go(page, "/m")

    pv = preview(page, "clip.webm")
    video = pv.locator("video")
    src = video.get_attribute("src")
    assert src.startswith("/temp/")
    page.wait_for_function("() => document.querySelector('dialog.preview video')?.readyState >= 1")
    status = page.evaluate(
        "src => fetch(src, {headers: {Range: 'bytes=0-99'}}).then(r => [r.status, r.headers.get('Content-Range')])",
        src,
    )
    assert status[0] == 206 and status[1].startswith("bytes 0-99/")
    page.keyboard.press("Escape")

    pv = preview(page, "paper.pdf")
    frame_el = pv.locator("iframe.preview-pdf")
    src = frame_el.get_attribute("src")
    assert src.startswith("/temp/")
    open_link = pv.get_by_role("link", name="Open PDF")
    assert open_link.get_attribute("rel") == "noopener noreferrer"
    # Chromium's own viewer took the frame: an embed of its PDF plugin inside.
    found = False
    for _ in range(50):
        for f in page.frames:
            if src in f.url:
                try:
                    if f.evaluate("!!document.querySelector('embed[type=\"application/x-google-chrome-pdf\"]')"):
                        found = True
                except Exception:
                    pass
        if found:
            break
        page.wait_for_timeout(100)
    assert found, "the PDF viewer did not render the preview"
    shot(page, "preview-pdf-1280-light")


def test_download_file_and_folder(web_page):
    page, dbx = web_page, web_page.user.dbx
    put(dbx, "/dl/report.txt", "numbers")
    put(dbx, "/dl/box/inside.txt", "in")
    go(page, "/dl")
    select(page, "report.txt")
    with page.expect_download() as got:
        toolbar(page, "Download").click()
    d = got.value
    assert d.suggested_filename == "report.txt"
    assert open(d.path(), "rb").read() == b"numbers"

    page.get_by_role("button", name="Clear selection").click()
    select(page, "box")
    with page.expect_download() as got:
        toolbar(page, "Download").click()
    d = got.value
    assert d.suggested_filename == "box.zip"
    assert open(d.path(), "rb").read(2) == b"PK"


def test_download_selection_as_one_zip(web_page):
    page, dbx = web_page, web_page.user.dbx
    put(dbx, "/sel/report.txt", "numbers")
    put(dbx, "/sel/box/inside.txt", "in")
    put(dbx, "/sel/box/deeper/more.txt", "more")
    put(dbx, "/sel/other.txt", "not chosen")
    go(page, "/sel")
    select(page, "report.txt", "box")
    with page.expect_download() as got:
        toolbar(page, "Download").click()
    d = got.value
    assert d.suggested_filename == "sel.zip"
    with zipfile.ZipFile(d.path()) as z:
        assert z.testzip() is None
        assert sorted(z.namelist()) == ["box/", "box/deeper/", "box/deeper/more.txt", "box/inside.txt", "report.txt"]
        assert z.read("box/deeper/more.txt") == b"more"
        assert z.read("report.txt") == b"numbers"
    # The page stayed where it was.
    assert page.evaluate("location.pathname") == "/home/sel"

    # An item gone behind the page's back: the refusal is said on the page, which stays.
    # The app's live feed would drop the row at once, so its next pages are held back.
    page.route("**/2/files/list_folder/continue", lambda route: route.abort())
    page.get_by_role("button", name="Clear selection").click()
    select(page, "report.txt", "other.txt")
    dbx.files_delete_v2("/sel/other.txt")
    toolbar(page, "Download").click()
    page.get_by_text("An item of the selection is no longer there").first.wait_for()
    assert page.evaluate("location.pathname") == "/home/sel"


@pytest.mark.skipif(not os.environ.get("CUBBY_SHOTS"), reason="screenshots only when CUBBY_SHOTS is set")
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", [(1280, 800), (390, 844)])
def test_screenshots(web_browser, server, web_user, size, scheme):
    dbx = web_user.dbx
    put(dbx, "/Photos/sunset over the long beach with a very long name.png", png(1200, 900))
    put(dbx, "/Photos/notes.md", "# Trip\n\n" + "\n".join("- day %d: walked %d km" % (i, i * 3) for i in range(1, 40)))
    put(dbx, "/Photos/archive.bin", b"\x00\x01" * 500)
    for t in ("draft", "second draft", "final"):
        put(dbx, "/Photos/plan.txt", t)
    dbx.files_create_folder_v2("/Work/Projects")
    dbx.files_create_folder_v2("/Work/Old")
    dbx.sharing_create_shared_link_with_settings("/Photos/plan.txt")
    ctx, page = web_sign_in(web_browser, server, web_user, viewport={"width": size[0], "height": size[1]}, color_scheme=scheme)
    tag = "%d-%s" % (size[0], scheme)
    os.makedirs(SHOTS, exist_ok=True)
    snap = lambda n: page.screenshot(path=os.path.join(SHOTS, "%s-%s.png" % (n, tag)))
    try:
        go(page, "/Photos")
        select(page, "plan.txt")
        toolbar(page, "Rename").click()
        snap("rename")
        dialog(page).get_by_role("textbox").fill("notes.md")
        dialog(page).get_by_role("button", name="Rename").click()
        dialog(page).get_by_role("alert").filter(has_text="already").wait_for()
        snap("rename-clash")
        dialog(page).get_by_role("button", name="Cancel").click()

        toolbar(page, "Move").click()
        dialog(page).get_by_role("button", name="All files").click()
        dialog(page).get_by_role("button", name="Work", exact=True).click()
        dialog(page).get_by_text("Projects").wait_for()
        snap("picker")
        dialog(page).get_by_role("button", name="Cancel").click()

        toolbar(page, "Share").click()
        dialog(page).get_by_role("textbox", name="Link").wait_for()
        snap("share")
        dialog(page).get_by_role("button", name="Close").click()

        toolbar(page, "Version history").click()
        dialog(page).get_by_text("3 versions.").wait_for()
        snap("history")
        dialog(page).get_by_role("button", name="Close").click()

        for name, n in (
            ("sunset over the long beach with a very long name.png", "preview-image"),
            ("notes.md", "preview-text"),
            ("archive.bin", "preview-other"),
        ):
            preview(page, name)
            page.wait_for_timeout(300)
            snap(n)
            page.keyboard.press("Escape")
            page.locator("dialog.preview").wait_for(state="detached")

        page.get_by_role("button", name="Clear selection").click()
        select(page, "archive.bin")
        toolbar(page, "Delete").click()
        toast(page, "Deleted 1 item")
        snap("toast-delete")
    finally:
        ctx.close()
