"""The web app's uploads (crates/server/assets/upload.js) in a real browser.

Outcomes are checked through the API with the official SDK: contents, sizes and Dropbox
content hashes. The big tests go through upload sessions; the resume tests cut the
connection (or reload the page) mid-way and check that bytes the server already had were
not sent again.

Set CUBBY_WEB_SHOTS=DIR to also save screenshots of the panel (light, dark, desktop, phone).
"""

import collections
import hashlib
import json
import os
import time

import dropbox
import pytest

from conftest import web_sign_in

MiB = 1024 * 1024
SHOTS = os.environ.get("CUBBY_WEB_SHOTS")


def dropbox_hash(path):
    """Dropbox's content_hash: SHA-256 of the concatenated SHA-256s of 4 MiB blocks."""
    blocks = []
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                break
            blocks.append(hashlib.sha256(b).digest())
    return hashlib.sha256(b"".join(blocks)).hexdigest()


def random_file(path, size):
    """A file of `size` random-looking bytes (fast: a random 1 MiB block, varied per MiB)."""
    seed = os.urandom(MiB)
    with open(path, "wb") as f:
        left, i = size, 0
        while left > 0:
            block = i.to_bytes(8, "little") + seed[8:]
            f.write(block[: min(left, MiB)])
            left -= MiB
            i += 1
    return str(path)


def content(dbx, path):
    return dbx.files_download(path)[1].content


def has_upload_button(page):
    return page.get_by_role("button", name="Upload", exact=True).count() > 0


def choose(page, paths, folder=False, dest=None):
    """Picks `paths` through the app: the toolbar's Upload menu (Files or Folder), or
    upload.js's pickFiles/pickFolder directly for another destination."""
    if dest is None and has_upload_button(page):
        with page.expect_file_chooser() as fc:
            for attempt in range(3):
                # The shell's menu closes on any scroll, e.g. the list refreshing itself.
                page.get_by_role("button", name="Upload", exact=True).click()
                try:
                    page.get_by_role("menuitem", name="Folder" if folder else "Files").click(timeout=3000)
                    break
                except Exception:
                    if attempt == 2:
                        raise
    else:
        fn = "pickFolder" if folder else "pickFiles"
        with page.expect_file_chooser() as fc:
            page.evaluate(
                "([fn, dest]) => import('/assets/upload.js').then((m) => m[fn](dest))",
                [fn, dest or ""],
            )
    fc.value.set_files(paths)


def items(page):
    return page.locator(".up-panel .up-item")


def wait_states(page, want, timeout=30_000):
    """Waits until the panel's rows are in the states `want` (a list, in order)."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        got = items(page).evaluate_all("(els) => els.map((e) => e.dataset.state)")
        if got == want:
            return
        if time.monotonic() > deadline:
            raise AssertionError("upload states {} != {}; panel: {}".format(
                got, want, page.locator(".up-panel").inner_text()))
        page.wait_for_timeout(100)


def append_offsets(page):
    """Records the offset of every append_v2 request (and which closed the session), the
    offsets the server acknowledged (a 200), the most appends in flight at once, and the
    session starts with their arguments."""
    log = {"appends": [], "closing": [], "acked": [], "starts": 0, "start_args": [], "flying": 0, "most": 0}

    def is_append(req):
        return req.url.endswith("/2/files/upload_session/append_v2")

    def on_request(req):
        if is_append(req):
            arg = json.loads(req.headers["dropbox-api-arg"])
            log["appends"].append(arg["cursor"]["offset"])
            if arg.get("close"):
                log["closing"].append(arg["cursor"]["offset"])
            log["flying"] += 1
            log["most"] = max(log["most"], log["flying"])
        elif req.url.endswith("/2/files/upload_session/start"):
            log["starts"] += 1
            log["start_args"].append(json.loads(req.headers["dropbox-api-arg"]))

    def on_response(resp):
        if is_append(resp.request) and resp.status == 200:
            log["acked"].append(json.loads(resp.request.headers["dropbox-api-arg"])["cursor"]["offset"])

    def on_end(req):
        if is_append(req):
            log["flying"] -= 1
            if req.failure:
                log.setdefault("failed", []).append((json.loads(req.headers["dropbox-api-arg"])["cursor"]["offset"], req.failure))

    page.on("request", on_request)
    page.on("response", on_response)
    page.on("requestfinished", on_end)
    page.on("requestfailed", on_end)
    return log


def sent_once_but(log, *again):
    """Every append offset was sent once, but those of `again` (sent exactly twice)."""
    counts = collections.Counter(log["appends"])
    assert {o for o, n in counts.items() if n > 1} == set(again), log
    assert all(counts[o] == 2 for o in again), log


# ---------------------------------------------------------------------------------------


BEFORE_UNLOAD_WARNS = """() => {
  const e = new Event('beforeunload', { cancelable: true });
  dispatchEvent(e);
  return e.defaultPrevented;
}"""


def test_several_small_files(web_page, tmp_path):
    page = web_page
    dbx = page.user.dbx
    page.evaluate("""() => import('/assets/ui.js').then((ui) => {
      window.uploaded = [];
      ui.on('upload-done', (d) => window.uploaded.push(d.entry.path_display));
    })""")
    names = {"a.txt": b"alpha\n", "b b.md": b"# beta\n" * 1000, "\u00e9t\u00e9.bin": os.urandom(300_000), "empty.txt": b""}
    paths = []
    for n, data in names.items():
        (tmp_path / n).write_bytes(data)
        paths.append(str(tmp_path / n))
    choose(page, paths)
    wait_states(page, ["done"] * 4)
    for n, data in names.items():
        assert content(dbx, "/" + n) == data
    assert sorted(page.evaluate("window.uploaded")) == sorted("/" + n for n in names)
    page.wait_for_function("() => /Upload complete: 4 files uploaded/.test(document.getElementById('live')?.textContent)")
    assert not page.evaluate(BEFORE_UNLOAD_WARNS)
    panel = page.locator(".up-panel")
    assert panel.get_by_role("progressbar", name="Total upload progress").get_attribute("aria-valuenow") == "100"
    assert "4 uploaded" in panel.inner_text()
    # A done file links to its folder; the panel closes once idle.
    assert panel.get_by_role("link", name="a.txt").get_attribute("href") == "/home"
    panel.get_by_role("button", name="Close").click()
    assert panel.is_hidden()


def test_folder_with_subfolders(web_page, tmp_path):
    page = web_page
    dbx = page.user.dbx
    root = tmp_path / "album"
    (root / "2024" / "summer").mkdir(parents=True)
    (root / "2023").mkdir()
    files = {"top.txt": b"top", "2024/a.txt": b"a24", "2024/summer/sea.txt": b"sea", "2023/b.txt": b"b23"}
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    dbx.files_create_folder_v2("/dest")
    page.goto("/home/dest")
    page.wait_for_selector("[data-app-ready]")
    choose(page, str(root), folder=True)
    wait_states(page, ["done"] * 4)
    for rel, data in files.items():
        assert content(dbx, "/dest/album/" + rel) == data
    md = dbx.files_get_metadata("/dest/album/2024/summer")
    assert isinstance(md, dropbox.files.FolderMetadata)
    # A done file's name opens its folder, in the app: the panel stays.
    page.locator(".up-panel").get_by_role("link", name="2024/summer/sea.txt").click()
    page.wait_for_url("**/home/dest/album/2024/summer")
    assert page.locator(".up-panel").is_visible()
    assert items(page).count() == 4


def test_drop_reads_every_entry_and_keeps_empty_folders(web_page):
    """filesFromDrop loops readEntries (Chrome hands out 100 per call) and keeps empty
    folders; uploadFiles creates them, then the files."""
    page = web_page
    dbx = page.user.dbx
    got = page.evaluate(
        """async () => {
      const m = await import('/assets/upload.js');
      const file = (name, text) => ({ isFile: true, isDirectory: false, name,
        file: (ok) => ok(new File([text], name)) });
      const dir = (name, children) => ({ isFile: false, isDirectory: true, name,
        createReader() {
          let i = 0;
          return { readEntries(ok) { const b = children.slice(i, i + 100); i += 100; setTimeout(() => ok(b)); } };
        } });
      const many = Array.from({ length: 150 }, (_, i) => file('f' + i + '.txt', 'n' + i));
      const tree = dir('drop', [dir('many', many), dir('empty', []), file('x.txt', 'x')]);
      const dt = { items: [{ kind: 'file', webkitGetAsEntry: () => tree, getAsFile: () => null }] };
      const items = await m.filesFromDrop(dt);
      await m.uploadFiles(items, '');
      return items.map((x) => (x.dir ? 'dir:' : '') + x.path);
    }"""
    )
    assert len([p for p in got if p.startswith("drop/many/")]) == 150
    assert "dir:drop/empty" in got and "drop/x.txt" in got
    wait_states(page, ["done"] * 151, timeout=60_000)
    assert isinstance(dbx.files_get_metadata("/drop/empty"), dropbox.files.FolderMetadata)
    assert content(dbx, "/drop/many/f149.txt") == b"n149"
    entries = dbx.files_list_folder("/drop/many", limit=2000).entries
    assert len(entries) == 150


DROP = """([folder, files]) => {
  const dt = new DataTransfer();
  for (const [name, text] of files) dt.items.add(new File([text], name));
  const target = folder
    ? [...document.querySelectorAll('.list-scroll bdi')].find((b) => b.textContent === folder)
    : document.querySelector('.list-scroll');
  target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
}"""


def test_drop_on_the_list_and_on_a_folder_row(web_page):
    page = web_page
    dbx = page.user.dbx
    dbx.files_create_folder_v2("/inbox")
    page.reload()
    page.locator(".list-scroll bdi", has_text="inbox").wait_for()
    page.evaluate(DROP, [None, [["d1.txt", "dropped one"], ["d2.txt", "dropped two"]]])
    wait_states(page, ["done"] * 2)
    page.evaluate(DROP, ["inbox", [["d3.txt", "into inbox"]]])
    wait_states(page, ["done"] * 3)
    assert content(dbx, "/d1.txt") == b"dropped one"
    assert content(dbx, "/d2.txt") == b"dropped two"
    assert content(dbx, "/inbox/d3.txt") == b"into inbox"


def test_conflicts_keep_both_replace_skip(web_page, tmp_path):
    page = web_page
    dbx = page.user.dbx
    overwrite = dropbox.files.WriteMode.overwrite
    for n in ("keep.txt", "replace.txt", "skip.txt"):
        dbx.files_upload(b"old " + n.encode(), "/" + n, mode=overwrite)
    (tmp_path / "fresh1.txt").write_bytes(b"fresh one")
    (tmp_path / "fresh2.txt").write_bytes(b"fresh two")
    (tmp_path / "fresh3.txt").write_bytes(b"fresh three")
    for n in ("keep.txt", "replace.txt", "skip.txt"):
        (tmp_path / n).write_bytes(b"new " + n.encode())

    def batch(clash, fresh, button, shot=None):
        choose(page, [str(tmp_path / clash), str(tmp_path / fresh)])
        dlg = page.get_by_role("dialog", name="A file already exists")
        dlg.wait_for()
        assert clash in dlg.inner_text()
        # The clash waits for the answer; the other file of the batch goes on meanwhile.
        page.wait_for_function(
            "(n) => [...document.querySelectorAll('.up-item')].some((e) => e.dataset.state === 'done' && e.textContent.includes(n))",
            arg=fresh,
        )
        dlg.get_by_role("button", name=button, exact=True).click()

    batch("keep.txt", "fresh1.txt", "Keep both")
    wait_states(page, ["done"] * 2)
    assert content(dbx, "/keep.txt") == b"old keep.txt"
    assert content(dbx, "/keep (1).txt") == b"new keep.txt"
    assert "Saved as keep (1).txt" in page.locator(".up-panel").inner_text()

    batch("replace.txt", "fresh2.txt", "Replace")
    wait_states(page, ["done"] * 4)
    assert content(dbx, "/replace.txt") == b"new replace.txt"

    batch("skip.txt", "fresh3.txt", "Skip")
    wait_states(page, ["done"] * 4 + ["skipped", "done"])
    assert content(dbx, "/skip.txt") == b"old skip.txt"
    for i, n in enumerate(("one", "two", "three")):
        assert content(dbx, "/fresh{}.txt".format(i + 1)) == b"fresh " + n.encode()


def test_conflict_dialog_applies_to_all_or_one_by_one(web_page, tmp_path):
    page = web_page
    dbx = page.user.dbx
    for n in ("x.txt", "y.txt", "z.txt"):
        dbx.files_upload(b"old", "/" + n)
        (tmp_path / n).write_bytes(b"new " + n.encode())
    paths = [str(tmp_path / n) for n in ("x.txt", "y.txt", "z.txt")]
    # Untick "Apply to all": one answer per file, the first being asked first.
    choose(page, paths)
    dlg = page.get_by_role("dialog", name="Files already exist")
    dlg.get_by_role("checkbox", name="Apply to all 3 files").uncheck()
    dlg.get_by_role("button", name="Replace", exact=True).click()
    dlg = page.get_by_role("dialog", name="Files already exist")
    dlg.get_by_role("checkbox", name="Apply to all 2 files").click()  # ticked: off
    dlg.get_by_role("button", name="Skip", exact=True).click()
    dlg = page.get_by_role("dialog", name="A file already exists")
    assert "z.txt" in dlg.inner_text()
    dlg.get_by_role("button", name="Keep both", exact=True).click()
    wait_states(page, ["done", "skipped", "done"])
    assert content(dbx, "/x.txt") == b"new x.txt"
    assert content(dbx, "/y.txt") == b"old"
    assert content(dbx, "/z (1).txt") == b"new z.txt"


def test_a_file_created_meanwhile_is_a_conflict_not_overwritten(web_page, tmp_path):
    page = web_page
    dbx = page.user.dbx
    (tmp_path / "race.txt").write_bytes(b"mine")

    def sneak(route):
        # Someone else creates the file between the check and the upload.
        dbx.files_upload(b"theirs", "/race.txt")
        route.continue_()

    page.route("**/2/files/upload", sneak)
    choose(page, [str(tmp_path / "race.txt")])
    wait_states(page, ["conflict"])
    page.unroute("**/2/files/upload")
    assert content(dbx, "/race.txt") == b"theirs"
    row = items(page).first
    assert "already there" in row.inner_text()
    row.get_by_role("button", name="Keep both").click()
    wait_states(page, ["done"])
    assert content(dbx, "/race (1).txt") == b"mine"


def test_failure_in_words_then_retry(web_page, tmp_path):
    page = web_page
    dbx = page.user.dbx
    (tmp_path / "full.txt").write_bytes(b"data")
    # UploadError's shape: the `path` variant carries its WriteError in `reason`.
    body = json.dumps({
        "error_summary": "path/insufficient_space/..",
        "error": {".tag": "path", "reason": {".tag": "insufficient_space"}, "upload_session_id": ""},
    })
    page.route("**/2/files/upload", lambda r: r.fulfill(status=409, content_type="application/json", body=body))
    choose(page, [str(tmp_path / "full.txt")])
    wait_states(page, ["failed"])
    row = items(page).first
    assert "Your storage is full." in row.inner_text()
    assert "[object" not in row.inner_text()
    page.unroute("**/2/files/upload")
    row.get_by_role("button", name="Retry").click()
    wait_states(page, ["done"])
    assert content(dbx, "/full.txt") == b"data"


def test_big_file_through_a_session(web_page, tmp_path):
    page = web_page
    dbx = page.user.dbx
    path = random_file(tmp_path / "big.bin", 40 * MiB + 12345)
    log = append_offsets(page)
    choose(page, [path])
    wait_states(page, ["done"], timeout=60_000)
    md = dbx.files_get_metadata("/big.bin")
    assert md.size == 40 * MiB + 12345
    assert md.content_hash == dropbox_hash(path)
    assert log["starts"] == 1
    assert log["start_args"][0]["session_type"][".tag"] == "concurrent"
    offsets = log["appends"]
    assert offsets[0] == 0 and offsets == sorted(set(offsets))
    # Chunks of 4 MiB multiples, starting at 8 MiB; the last one closes the session.
    sizes = [b - a for a, b in zip(offsets, offsets[1:])]
    assert sizes and sizes[0] == 8 * MiB and all(s % (4 * MiB) == 0 for s in sizes)
    assert log["closing"] == [offsets[-1]]
    # More than one chunk on the wire at once.
    assert log["most"] >= 2, log


def test_cancel_commits_nothing(web_page, tmp_path):
    page = web_page
    dbx = page.user.dbx
    path = random_file(tmp_path / "cancel.bin", 40 * MiB)
    stall = []
    # The second append never answers, so the upload is surely in flight when cancelled.
    page.route("**/2/files/upload_session/append_v2", lambda r: stall.append(r) if stall or r.request.headers["dropbox-api-arg"].find('"offset":0') < 0 else r.continue_())
    choose(page, [path])
    page.wait_for_function("() => document.querySelector('.up-item')?.dataset.state === 'uploading'")
    assert page.evaluate(BEFORE_UNLOAD_WARNS)
    page.get_by_role("button", name="Cancel upload of cancel.bin").click()
    wait_states(page, ["cancelled"])
    assert not page.evaluate(BEFORE_UNLOAD_WARNS)
    assert page.locator(".up-panel").get_by_role("button", name="Close").is_visible()
    page.unroute("**/2/files/upload_session/append_v2")
    with pytest.raises(dropbox.exceptions.ApiError):
        dbx.files_get_metadata("/cancel.bin")


@pytest.mark.parametrize("which", ["middle", "closing"])
def test_lost_reply_sends_only_that_chunk_again(web_page, tmp_path, which):
    """The server got a chunk but its reply was lost: only that chunk goes again (the server
    replaces it; the closing chunk again is answered `closed`, which the page takes as the
    first try's success), nothing else is resent, and the file is whole."""
    page = web_page
    dbx = page.user.dbx
    size = 40 * MiB + 777
    path = random_file(tmp_path / "lost.bin", size)
    log = append_offsets(page)
    lost = {}

    def deliver_then_drop(route):
        arg = json.loads(route.request.headers["dropbox-api-arg"])
        hit = arg["close"] if which == "closing" else (arg["cursor"]["offset"] > 0 and not arg["close"])
        if lost or not hit:
            route.continue_()
            return
        lost["offset"] = arg["cursor"]["offset"]
        resp = route.fetch()  # the server receives the chunk…
        assert resp.ok, resp.text()
        route.abort("connectionreset")  # …and the browser never hears back.

    page.route("**/2/files/upload_session/append_v2", deliver_then_drop)
    choose(page, [path])
    wait_states(page, ["done"], timeout=60_000)
    page.unroute("**/2/files/upload_session/append_v2")
    assert lost, log
    sent_once_but(log, lost["offset"])
    assert log["starts"] == 1
    md = dbx.files_get_metadata("/lost.bin")
    assert md.size == size and md.content_hash == dropbox_hash(path)


def test_busy_server_retry_after(web_page, tmp_path):
    page = web_page
    dbx = page.user.dbx
    (tmp_path / "busy.txt").write_bytes(b"busy")
    times = []

    def busy(route):
        times.append(time.monotonic())
        if len(times) == 1:
            route.fulfill(status=429, headers={"Retry-After": "2"}, content_type="application/json",
                          body=json.dumps({"error_summary": "too_many_requests/", "error": {".tag": "too_many_requests"}}))
        else:
            route.continue_()

    page.route("**/2/files/upload", busy)
    choose(page, [str(tmp_path / "busy.txt")])
    wait_states(page, ["done"])
    page.unroute("**/2/files/upload")
    assert len(times) == 2 and times[1] - times[0] >= 1.8
    assert content(dbx, "/busy.txt") == b"busy"


def test_cancel_all(web_page, tmp_path):
    page = web_page
    dbx = page.user.dbx
    held = []
    page.route("**/2/files/upload", lambda r: held.append(r))  # never answered
    for n in ("c1.txt", "c2.txt"):
        (tmp_path / n).write_bytes(b"x")
    choose(page, [str(tmp_path / "c1.txt"), str(tmp_path / "c2.txt")])
    wait_states(page, ["uploading"] * 2)
    page.locator(".up-panel").get_by_role("button", name="Cancel all").click()
    wait_states(page, ["cancelled"] * 2)
    page.unroute("**/2/files/upload")
    assert dbx.files_list_folder("").entries == []


def test_resume_after_connection_loss_200mib(web_page, tmp_path):
    page = web_page
    dbx = page.user.dbx
    size = 200 * MiB
    path = random_file(tmp_path / "huge.bin", size)
    log = append_offsets(page)
    cut = {}

    def cut_one(route):
        # Two chunks arrive whole; the connection of the fourth append is reset. (The route
        # stays: adding or removing one while appends are in flight can restart them.)
        if len(log["acked"]) >= 2 and not cut and json.loads(route.request.headers["dropbox-api-arg"])["cursor"]["offset"] > 0:
            cut["offset"] = json.loads(route.request.headers["dropbox-api-arg"])["cursor"]["offset"]
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/2/files/upload_session/append_v2", cut_one)
    t0 = time.monotonic()
    choose(page, [path])
    wait_states(page, ["done"], timeout=120_000)
    elapsed = time.monotonic() - t0
    assert cut, "no append was cut"
    assert cut["offset"] > 0
    # Only the cut chunk went again; nothing the server had acknowledged.
    sent_once_but(log, cut["offset"])
    assert log["starts"] == 1 and log["most"] >= 2
    md = dbx.files_get_metadata("/huge.bin")
    assert md.size == size
    assert md.content_hash == dropbox_hash(path)
    print("\n200 MiB browser upload with one cut: {:.1f} s, {:.1f} MB/s (incl. a 1 s retry pause)".format(
        elapsed, size / 1e6 / elapsed))


def test_offline_then_online_continues(web_page, tmp_path):
    page = web_page
    dbx = page.user.dbx
    size = 160 * MiB  # enough chunks that some are still to send when the network goes
    path = random_file(tmp_path / "offline.bin", size)
    log = append_offsets(page)
    choose(page, [path])
    page.wait_for_event(
        "requestfinished", predicate=lambda r: r.url.endswith("/upload_session/append_v2"), timeout=60_000
    )
    page.context.set_offline(True)
    page.wait_for_function("() => /Connection lost; retrying/.test(document.querySelector('.up-item')?.textContent)")
    before = len(log["appends"])
    acked = set(log["acked"])
    page.wait_for_timeout(2500)  # past a few backoffs: it waits for the network to return
    page.context.set_offline(False)
    wait_states(page, ["done"], timeout=60_000)
    after = log["appends"][before:]
    assert acked and after and not acked & set(after), log
    assert log["starts"] == 1
    md = dbx.files_get_metadata("/offline.bin")
    assert md.size == size and md.content_hash == dropbox_hash(path)


def test_resume_after_reload_and_pick_again(web_browser, server, web_user, tmp_path):
    ctx, page = web_sign_in(web_browser, server, web_user)
    try:
        dbx = web_user.dbx
        size = 40 * MiB
        path = random_file(tmp_path / "again.bin", size)
        first = append_offsets(page)
        # Two chunks go through; every later append fails, so the upload is mid-way when the
        # page goes.
        passed = []
        page.route("**/2/files/upload_session/append_v2",
                   lambda r: r.abort("connectionreset") if len(passed) >= 2 else (passed.append(1), r.continue_()))
        choose(page, [path])
        page.wait_for_function("() => /retrying/.test(document.querySelector('.up-item')?.textContent)")
        page.wait_for_timeout(300)  # the last acknowledgement recorded in IndexedDB
        acked = set(first["acked"])
        assert acked, first
        page.on("dialog", lambda d: d.accept())
        page.reload()
        page.wait_for_selector("[data-app-ready]")
        page.unroute("**/2/files/upload_session/append_v2")
        # The app says what can go on, and how.
        page.get_by_text("The upload of again.bin to your top folder was interrupted.").wait_for()
        log = append_offsets(page)
        choose(page, [path])
        wait_states(page, ["done"], timeout=60_000)
        assert log["starts"] == 0, log
        # Nothing the server acknowledged before the reload went again.
        assert log["appends"] and not acked & set(log["appends"]), (acked, log)
        md = dbx.files_get_metadata("/again.bin")
        assert md.size == size and md.content_hash == dropbox_hash(path)
    finally:
        ctx.close()


# ---------------------------------------------------------------------------------------
# Screenshots of the panel (CUBBY_WEB_SHOTS=DIR).

VARIANTS = [
    ("desktop-light", {"width": 1280, "height": 800}, "light"),
    ("desktop-dark", {"width": 1280, "height": 800}, "dark"),
    ("phone-light", {"width": 390, "height": 844}, "light"),
    ("phone-dark", {"width": 390, "height": 844}, "dark"),
]


@pytest.mark.skipif(not SHOTS, reason="CUBBY_WEB_SHOTS not set")
@pytest.mark.parametrize("name,viewport,scheme", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_panel_screenshots(web_browser, server, web_user, tmp_path, name, viewport, scheme):
    os.makedirs(SHOTS, exist_ok=True)
    ctx, page = web_sign_in(web_browser, server, web_user, viewport=viewport, color_scheme=scheme)
    try:
        dbx = web_user.dbx
        for n in ("report.pdf", "notes.txt"):
            dbx.files_upload(b"old", "/" + n, mode=dropbox.files.WriteMode.overwrite)
        big = random_file(tmp_path / "holiday video with a rather long name.mp4", 48 * MiB)
        small = []
        for n in ("notes.txt", "report.pdf", "photo 1.jpg", "photo 2.jpg", "\u05e9\u05dc\u05d5\u05dd.txt"):
            (tmp_path / n).write_bytes(os.urandom(20_000))
            small.append(str(tmp_path / n))
        full = json.dumps({"error_summary": "path/insufficient_space/..",
                           "error": {".tag": "path", "reason": {".tag": "insufficient_space"}}})
        page.route("**/2/files/upload", lambda r: r.fulfill(status=409, content_type="application/json", body=full)
                   if "photo 2" in r.request.headers["dropbox-api-arg"] else r.continue_())
        held = []
        page.route("**/2/files/upload_session/append_v2", lambda r: held.append(r) if len(held) or "\"offset\":0" not in r.request.headers["dropbox-api-arg"] else r.continue_())
        choose(page, [big] + small)
        dlg = page.get_by_role("dialog")
        dlg.wait_for()
        page.wait_for_timeout(300)
        page.screenshot(path=os.path.join(SHOTS, name + "-conflict.png"))
        dlg.get_by_role("button", name="Keep both").click()
        page.wait_for_function("() => document.querySelector('.up-item[data-state=failed]')")
        page.wait_for_function("() => [...document.querySelectorAll('.up-item')].filter((e) => e.dataset.state === 'done').length >= 4")
        page.wait_for_timeout(700)
        page.screenshot(path=os.path.join(SHOTS, name + "-uploading.png"))
        page.get_by_role("button", name="Hide uploads").click()
        page.screenshot(path=os.path.join(SHOTS, name + "-collapsed.png"))
        page.get_by_role("button", name="Show uploads").click()
        page.unroute("**/2/files/upload_session/append_v2")
        for r in held:
            r.abort("connectionreset")
        wait_states(page, ["done", "done", "done", "done", "failed", "done"], timeout=60_000)
        page.screenshot(path=os.path.join(SHOTS, name + "-failed.png"))
        page.unroute("**/2/files/upload")
        page.get_by_role("button", name="Retry").click()
        wait_states(page, ["done"] * 6)
        page.wait_for_timeout(300)
        page.screenshot(path=os.path.join(SHOTS, name + "-done.png"))
    finally:
        ctx.close()


@pytest.mark.skipif(not os.environ.get("CUBBY_WEB_MEASURE"), reason="CUBBY_WEB_MEASURE not set")
def test_measure_200mib(web_page, tmp_path, server):
    """Prints the browser's upload rate of 200 MiB, and curl's through the same session
    routes with the same chunk sizes, one at a time and as many in flight as the page had,
    for comparison."""
    import subprocess

    page = web_page
    size = 200 * MiB
    path = random_file(tmp_path / "rate.bin", size)
    log = append_offsets(page)
    t0 = time.monotonic()
    choose(page, [path])
    wait_states(page, ["done"], timeout=120_000)
    browser = time.monotonic() - t0
    offsets = sorted(set(log["appends"])) + [size]
    assert page.user.dbx.files_get_metadata("/rate.bin").content_hash == dropbox_hash(path)

    def curl(route, arg, body_file=None, offset=0, length=0):
        cmd = ["curl", "-sS", "--fail-with-body", "--cacert", server.ca_path, "-X", "POST",
               server.base_url + "/2/" + route,
               "-H", "Authorization: Bearer " + page.user.token,
               "-H", "Content-Type: application/octet-stream",
               "-H", "Dropbox-API-Arg: " + json.dumps(arg)]
        if body_file:
            with open(body_file, "rb") as f:
                f.seek(offset)
                data = f.read(length)
            r = subprocess.run(cmd + ["--data-binary", "@-"], input=data, capture_output=True, check=True)
        else:
            r = subprocess.run(cmd + ["--data-binary", ""], capture_output=True, check=True)
        return json.loads(r.stdout)

    chunks = sorted(zip(offsets, offsets[1:]))
    t0 = time.monotonic()
    sid = curl("files/upload_session/start", {"close": False})["session_id"]
    for a, b in chunks:
        curl("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": a}, "close": False}, path, a, b - a)
    md = curl("files/upload_session/finish", {"cursor": {"session_id": sid, "offset": size}, "commit": {"path": "/rate-curl.bin"}})
    by_curl = time.monotonic() - t0
    assert md["size"] == size
    # And as the page sends them: a concurrent session, as many chunks in flight as it had.
    import concurrent.futures
    t0 = time.monotonic()
    sid = curl("files/upload_session/start", {"close": False, "session_type": {".tag": "concurrent"}})["session_id"]
    with concurrent.futures.ThreadPoolExecutor(max(1, log["most"])) as pool:
        list(pool.map(lambda c: curl("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": c[0]}, "close": c[1] == size},
                                     path, c[0], c[1] - c[0]), chunks))
    md = curl("files/upload_session/finish", {"cursor": {"session_id": sid, "offset": size}, "commit": {"path": "/rate-curl-2.bin"}})
    by_curl_2 = time.monotonic() - t0
    assert md["size"] == size
    print("\n200 MiB: browser {:.1f} s = {:.1f} MB/s ({} in flight); curl (same chunks {}) {:.1f} s = {:.1f} MB/s, "
          "and {} in flight through a concurrent session {:.1f} s = {:.1f} MB/s".format(
              browser, size / 1e6 / browser, log["most"], [(b - a) // MiB for a, b in chunks], by_curl, size / 1e6 / by_curl,
              log["most"], by_curl_2, size / 1e6 / by_curl_2))
