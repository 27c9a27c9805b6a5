// The web app's entry: the page layout (header, toolbar, breadcrumbs, the file list),
// routing (/home/<path>, /search?q=), listing folders page by page, following remote
// changes, search as you type, keyboard shortcuts and drag and drop.
//
// The other modules plug in through small contracts: actions.js exports `actions`
// [{id, label, key?, enabled(entries), run(entries, extra?)}], preview.js `openPreview`,
// upload.js `pickFiles`, `pickFolder`, `filesFromDrop`, `uploadFiles`. Each is imported as
// a namespace and guarded, so the browser works while one of them is a placeholder.

import * as api from "./api.js";
import * as ui from "./ui.js";
import { el, nameNode, state, emit, on } from "./ui.js";
import { createList, sortEntries, openMenu, closeMenu, menuOpen } from "./list.js";
import * as Actions from "./actions.js";
import * as Preview from "./preview.js";
import * as Upload from "./upload.js";
import { sharedPage } from "./folders.js";

const actions = () => (Array.isArray(Actions.actions) ? Actions.actions : []);
const actionById = (id) => actions().find((a) => a.id === id);

/** Runs an action, reporting a failure in words. */
async function runAction(a, entries, extra) {
  try {
    await a.run(entries, extra);
  } catch (err) {
    if (err?.name !== "AbortError") ui.toast(api.describe(err), { error: true });
  }
}

/** Which entries an action applies to: enabled() may throw in a half-written module. */
function applicable(a, entries) {
  try {
    return !!a.enabled(entries);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// Settings kept in localStorage (never credentials): single-key shortcuts on or off.

let shortcutsOn = localStorage.getItem("cubby.shortcuts") !== "off";

// ---------------------------------------------------------------------------------------
// The layout.

const searchInput = el("input", {
  type: "search",
  class: "field search-field",
  "aria-label": "Search",
  placeholder: "Search",
  autocomplete: "off",
  spellcheck: "false",
  enterkeyhint: "search",
});
const searchForm = el("form", { class: "search", role: "search", onsubmit: (e) => e.preventDefault() }, searchInput);

const header = el("header", { class: "topbar" },
  el("a", { class: "brand", href: "/home", onclick: (e) => { if (plainClick(e)) { e.preventDefault(); navigate(""); } } },
    el("img", { src: api.iconUrl, alt: "", width: "28", height: "28" }), "Cubby"),
  searchForm,
  el("div", { class: "who" },
    el("span", { id: "user", class: "user-name" }, api.account?.name || ""),
    el("a", { href: "/shared", class: "btn link shared-link", onclick: (e) => { if (plainClick(e)) { e.preventDefault(); openShared(); } } }, "Shared"),
    el("a", { href: "/account", class: "btn link" }, "Account"),
    el("form", { method: "post", action: "/logout", class: "signout" },
      el("input", { type: "hidden", name: "csrf", value: api.csrfToken }),
      el("button", { type: "submit", class: "btn link" }, "Sign out")),
    el("button", { type: "button", class: "btn icon help-btn", "aria-label": "Keyboard shortcuts", onclick: () => showHelp() }, "?")),
);

const uploadBtn = el("button", {
  type: "button",
  class: "btn primary",
  "aria-haspopup": "menu",
  "aria-expanded": "false",
  onclick: () => openMenu(uploadBtn, [
    { label: "Files", run: () => callUpload("pickFiles", state.folder) },
    { label: "Folder", run: () => callUpload("pickFolder", state.folder) },
  ], { label: "Upload", alignLeft: true }),
}, "Upload");

const actionBar = el("div", { class: "action-bar", role: "group", "aria-label": "Selection actions" });
const deletedBtn = el("button", { type: "button", class: "btn toggle", "aria-pressed": String(state.showDeleted), onclick: () => toggleDeleted() }, "Deleted files");
const viewBtn = el("button", { type: "button", class: "btn toggle", "aria-pressed": String(state.view === "grid"), onclick: () => toggleView() }, "Grid view");

const toolbar = el("div", { class: "toolbar", role: "toolbar", "aria-label": "Actions" },
  uploadBtn, actionBar, el("span", { class: "spacer" }), deletedBtn, viewBtn);

const crumbs = el("nav", { class: "crumbs", "aria-label": "Breadcrumbs" });
const status = el("p", { class: "status" });

const list = createList({
  folderUrl: ui.folderUrl,
  open: openEntry,
  navigate: (p) => navigate(p),
  rowMenu,
  dropFiles,
  dropEntries,
  sort: (key) => {
    state.sort = state.sort.key === key ? { key, dir: -state.sort.dir } : { key, dir: 1 };
    resort();
  },
  selectionChanged,
  shortcutsOn: () => shortcutsOn,
});

const main = el("main", { class: "main" }, toolbar, el("div", { class: "where-bar" }, crumbs, status), list.element);
const shared = sharedPage((p) => navigate(p));
shared.element.hidden = true;
document.body.append(header, main, shared.element);

/** Shows the Shared page (or, `false`, the file list again). */
function showShared(on) {
  if (on && state.selection.size) clearSelection();
  shared.element.hidden = !on;
  main.hidden = on;
  header.querySelector(".shared-link")?.setAttribute("aria-current", on ? "page" : "false");
}

function openShared() {
  if (location.pathname !== "/shared") history.pushState({}, "", "/shared");
  route();
}

function plainClick(e) {
  return e.button === 0 && !e.ctrlKey && !e.metaKey && !e.shiftKey && !e.altKey;
}

// ---------------------------------------------------------------------------------------
// Integration with upload.js and preview.js (guarded: they may be placeholders).

function callUpload(fn, ...args) {
  if (typeof Upload[fn] !== "function") {
    ui.toast("Uploading is not available yet.", { error: true });
    return;
  }
  Promise.resolve(Upload[fn](...args)).catch((err) => ui.toast(api.describe(err), { error: true }));
}

function dropFiles(dataTransfer, dest) {
  if (typeof Upload.filesFromDrop !== "function" || typeof Upload.uploadFiles !== "function") {
    ui.toast("Uploading is not available yet.", { error: true });
    return;
  }
  // filesFromDrop must read the DataTransfer now, inside the drop event.
  Promise.resolve(Upload.filesFromDrop(dataTransfer))
    .then((items) => items && items.length && Upload.uploadFiles(items, dest))
    .catch((err) => ui.toast(api.describe(err), { error: true }));
}

function dropEntries(paths, dest, copy) {
  const a = actionById(copy ? "copy" : "move");
  const entries = state.entries.filter((e) => paths.includes(e.path_lower));
  if (!a || !entries.length) return;
  runAction(a, entries, dest);
}

function openEntry(entry) {
  if (!entry) return;
  if (entry[".tag"] === "folder") navigate(entry.path_display);
  else if (entry[".tag"] === "file") {
    if (typeof Preview.openPreview === "function") Preview.openPreview(entry);
  }
}

// ---------------------------------------------------------------------------------------
// Toolbar actions and the per-row menu, both from actions.js's `actions`.

function renderActions() {
  const sel = ui.selected();
  const buttons = [];
  for (const a of actions()) {
    const on = applicable(a, sel);
    // "New folder" always shows; selection actions only when they apply.
    if (a.id === "new-folder") {
      buttons.push(el("button", { type: "button", class: "btn", disabled: !on, onclick: () => runAction(a, []) }, a.label));
    } else if (sel.length && on) {
      buttons.push(el("button", { type: "button", class: "btn" + (a.id === "delete" ? " danger" : ""), onclick: () => runAction(a, ui.selected()) }, a.label));
    }
  }
  if (sel.length) {
    buttons.push(el("button", { type: "button", class: "btn link", onclick: () => clearSelection() }, "Clear selection"));
  }
  // Keep focus on a button that survives the re-render, if it had it.
  const focusedLabel = actionBar.contains(document.activeElement) ? document.activeElement.textContent : null;
  actionBar.replaceChildren(...buttons);
  if (focusedLabel) [...actionBar.children].find((b) => b.textContent === focusedLabel)?.focus();
}

function rowMenu(entry, button) {
  const items = actions()
    .filter((a) => a.id !== "new-folder" && applicable(a, [entry]))
    .map((a) => ({ label: a.label, danger: a.id === "delete", run: () => runAction(a, [entry]) }));
  if (entry[".tag"] === "folder") items.unshift({ label: "Open", run: () => navigate(entry.path_display) });
  else if (entry[".tag"] === "file" && typeof Preview.openPreview === "function") items.unshift({ label: "Preview", run: () => openEntry(entry) });
  openMenu(button, items, { label: "Actions for " + entry.name });
}

// ---------------------------------------------------------------------------------------
// Selection.

let lastAnnounced = 0;
/** After the selection (or the entries) changed: toolbar, status, live region, event. */
function selectionChanged() {
  const n = state.selection.size;
  renderActions();
  showStatus();
  if (n !== lastAnnounced) ui.announce(n ? n + " selected; actions above" : "Selection cleared");
  lastAnnounced = n;
  emit("selection");
}

function clearSelection() {
  if (!state.selection.size) return;
  state.selection.clear();
  list.clearSelection();
  list.refreshMarks();
  selectionChanged();
}

function selectAll() {
  for (const e of list.items()) state.selection.add(e.path_lower);
  list.refreshMarks();
  selectionChanged();
}

// ---------------------------------------------------------------------------------------
// Status line and breadcrumbs.

let loading = null; // {count} while pages still come in

function showStatus() {
  const n = list.items().length;
  const parts = [];
  if (loading) parts.push(loading.count.toLocaleString() + " loaded…");
  else if (mode === "search") parts.push(searching ? "Searching…" : n.toLocaleString() + (n === 1 ? " result" : " results"));
  else parts.push(n.toLocaleString() + (n === 1 ? " item" : " items"));
  if (state.selection.size) parts.push(state.selection.size.toLocaleString() + " selected");
  status.textContent = parts.join(" · ");
}

/** A crumb link, which is also a drop target for OS files and dragged rows. */
function crumb(label, path, current) {
  const a = el("a", {
    href: ui.folderUrl(path),
    class: "crumb",
    "aria-current": current ? "page" : undefined,
    onclick: (e) => {
      if (!plainClick(e)) return;
      e.preventDefault();
      navigate(path);
    },
  }, label instanceof Node ? label : nameNode(label));
  a.addEventListener("dragover", (e) => {
    const t = e.dataTransfer.types;
    if (!t.includes("Files") && !(t.includes("application/x-cubby-paths") && !current)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = t.includes("Files") || e.ctrlKey || e.altKey ? "copy" : "move";
    a.classList.add("drop-target");
  });
  a.addEventListener("dragleave", () => a.classList.remove("drop-target"));
  a.addEventListener("drop", (e) => {
    a.classList.remove("drop-target");
    const dt = e.dataTransfer;
    e.preventDefault();
    if (dt.types.includes("application/x-cubby-paths")) {
      if (!current) dropEntries(JSON.parse(dt.getData("application/x-cubby-paths")), path, e.ctrlKey || e.altKey);
    } else if (dt.types.includes("Files")) dropFiles(dt, path);
  });
  return a;
}

function renderCrumbs() {
  const items = [];
  if (mode === "search") {
    items.push(crumb("Home", "", false), el("span", { class: "crumb-sep", "aria-hidden": "true" }, "›"),
      el("span", { class: "crumb current" }, "Search results for “", nameNode(query), "”"));
  } else {
    const parts = state.folder.split("/").filter(Boolean);
    items.push(crumb("Home", "", parts.length === 0));
    let path = "";
    parts.forEach((p, i) => {
      path += "/" + p;
      items.push(el("span", { class: "crumb-sep", "aria-hidden": "true" }, "›"), crumb(p, path, i === parts.length - 1));
    });
  }
  crumbs.replaceChildren(el("ol", {}, ...items.map((x) => (x.classList.contains("crumb-sep") ? x : el("li", {}, x)))));
  document.title = mode === "search" ? "Search: " + query + " – Cubby" : (ui.baseName(state.folder) || "Home") + " – Cubby";
}

// ---------------------------------------------------------------------------------------
// Listing a folder: page 1 at once, "n loaded…" while more come, one sort at the end;
// then follow changes (longpoll + continue) until another folder opens.

let mode = "folder"; // or "search", or "shared" (the Shared page)
let query = "";
let controller = null; // aborts the open folder's listing and following (or a search)
let loadSeq = 0;

function markReady() {
  if (!("appReady" in document.body.dataset)) document.body.dataset.appReady = "";
}

/**
 * Opens `path`. `soft` (a refresh of the same folder) keeps the selection, scroll and
 * focus; `focusKey` focuses that entry once listed (coming back up from a subfolder).
 */
async function loadFolder(path, { soft = false, focusKey = null } = {}) {
  controller?.abort();
  const ctrl = (controller = new AbortController());
  const seq = ++loadSeq;
  const signal = ctrl.signal;
  mode = "folder";
  state.folder = path;
  // A keyboard user who opened this folder from the list keeps the focus in the list.
  const keepFocus = list.hasFocus() && !soft;
  const refocus = (key) => {
    if (!keepFocus || (document.activeElement && document.activeElement !== document.body)) return;
    if (!(key && list.focusKey(key))) list.focusItem(0);
  };
  if (!soft) {
    state.selection.clear();
    state.entries = [];
    list.setItems([], { reset: true, where: false, empty: "" });
    emit("selection");
  }
  renderCrumbs();
  renderActions();
  let all = [];
  let first = true;
  loading = { count: 0 };
  showStatus();
  let cursor;
  try {
    cursor = await api.listAll({ path, include_deleted: state.showDeleted, recursive: false }, (page, hasMore) => {
      if (seq !== loadSeq) return;
      for (const e of page) all.push(e);
      loading.count = all.length;
      if (first || !hasMore) {
        if (first && !soft) {
          // Page 1 is shown at once (sorted on its own); later pages wait for the full sort.
          state.entries = all.slice();
          list.setItems(sortEntries(all.slice(), ui.collator), { where: false, empty: "" });
          if (hasMore) refocus(null);
        }
        first = false;
      }
      showStatus();
    }, { signal });
  } catch (err) {
    if (signal.aborted || seq !== loadSeq) return;
    loading = null;
    markReady();
    if (err instanceof api.ApiError && err.status === 409 && /not_found|not_folder/.test(err.tag)) {
      state.entries = [];
      list.setItems([], { empty: "This folder does not exist (any more)." });
      showStatus();
    }
    ui.toast(api.describe(err), { error: true });
    return;
  }
  if (seq !== loadSeq) return;
  loading = null;
  state.entries = all;
  showEntries();
  if (focusKey) list.focusKey(focusKey, false);
  refocus(focusKey);
  markReady();
  emit("entries");
  follow(cursor, signal);
}

/** Sorts state.entries into the list. */
function showEntries(opts = {}) {
  const empty = mode === "search"
    ? "No results for “" + query + "”."
    : "This folder is empty. Drop files here or use Upload.";
  list.setItems(sortEntries(state.entries.slice(), ui.collator), { empty, ...opts });
  // Drop selected keys of entries no longer listed.
  if (state.selection.size) {
    const listed = new Set(state.entries.map((e) => e.path_lower));
    for (const k of state.selection) if (!listed.has(k)) state.selection.delete(k);
  }
  selectionChanged();
}

function resort() {
  showEntries();
}

/** Applies changes from the open folder's cursor: upserts and removals by path_lower. */
function applyChanges(changes) {
  if (mode !== "folder") return;
  const byKey = new Map(state.entries.map((e) => [e.path_lower, e]));
  const folderLower = ui.lowerPath(state.folder);
  for (const c of changes) {
    // Only direct children of the open folder (a cursor is not recursive, but be sure).
    if (ui.parentOf(c.path_lower) !== folderLower) continue;
    if (c[".tag"] === "deleted" && !state.showDeleted) byKey.delete(c.path_lower);
    else byKey.set(c.path_lower, c);
  }
  state.entries = [...byKey.values()];
  showEntries();
  emit("entries");
}

async function follow(cursor, signal) {
  if (typeof api.follow !== "function") return;
  try {
    await api.follow(cursor, applyChanges, signal);
  } catch (err) {
    if (signal.aborted) return;
    // The cursor went stale (reset) or the server is gone: reload once, quietly.
    setTimeout(() => {
      if (!signal.aborted) loadFolder(state.folder, { soft: true });
    }, 2000);
  }
}

// ---------------------------------------------------------------------------------------
// Search as you type: files/search_v2 over the whole account.

let searching = false;
let searchTimer = 0;

async function runSearch(q) {
  controller?.abort();
  const ctrl = (controller = new AbortController());
  const seq = ++loadSeq;
  mode = "search";
  query = q;
  loading = null;
  searching = true;
  state.selection.clear();
  renderCrumbs();
  showStatus();
  try {
    const r = await api.rpc("files/search_v2", {
      query: q,
      options: { path: "", max_results: 100, filename_only: false },
    }, { signal: ctrl.signal });
    if (seq !== loadSeq) return;
    state.entries = (r.matches || []).map((m) => m.metadata && m.metadata.metadata).filter(Boolean);
  } catch (err) {
    if (ctrl.signal.aborted || seq !== loadSeq) return;
    state.entries = [];
    ui.toast(api.describe(err), { error: true });
  }
  searching = false;
  showEntries({ where: true, reset: true });
  markReady();
  emit("entries");
}

searchInput.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    const q = searchInput.value.trim();
    if (!q) {
      if (mode === "search") navigate(state.folder);
      return;
    }
    const url = "/search?q=" + encodeURIComponent(q);
    // One history entry per search, not one per key.
    if (location.pathname === "/search") history.replaceState({}, "", url);
    else history.pushState({}, "", url);
    runSearch(q);
  }, 200);
});
searchInput.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && searchInput.value) {
    e.preventDefault();
    e.stopPropagation();
    searchInput.value = "";
    if (mode === "search") navigate(state.folder);
  } else if (e.key === "ArrowDown" || e.key === "Enter") {
    e.preventDefault();
    clearTimeout(searchTimer);
    if (e.key === "Enter" && searchInput.value.trim() && (mode !== "search" || query !== searchInput.value.trim())) {
      searchInput.dispatchEvent(new Event("input"));
    } else if (list.items().length) list.focusItem(0);
  }
});

// ---------------------------------------------------------------------------------------
// Routing: /home/<path> per folder, /search?q=… for results; back/forward and reload keep
// the place.

function pathFromUrl() {
  const p = location.pathname;
  if (!p.startsWith("/home")) return "";
  return p.slice(5).split("/").filter(Boolean).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  }).map((s) => "/" + s).join("");
}

function route() {
  closeMenu();
  if (location.pathname === "/shared") {
    controller?.abort();
    mode = "shared";
    showShared(true);
    document.title = "Shared – Cubby";
    shared.load();
    markReady();
    return;
  }
  showShared(false);
  if (location.pathname === "/search") {
    const q = new URLSearchParams(location.search).get("q") || "";
    if (q) {
      searchInput.value = q;
      runSearch(q);
      return;
    }
  }
  if (location.pathname === "/" || location.pathname === "/search") history.replaceState({}, "", "/home");
  searchInput.value = "";
  const path = pathFromUrl();
  // Coming back up (parent or back button): focus the folder we came from.
  const focusKey = mode === "folder" ? childOnTheWay(state.folder, path) : null;
  loadFolder(path, { focusKey });
}

/** "/a/b/c" seen from "/a" → "/a/b" (lower case): the child of `path` towards `prev`. */
function childOnTheWay(prev, path) {
  if (!ui.lowerPath(prev).startsWith(ui.lowerPath(path) + "/")) return null;
  const seg = prev.slice(path.length + 1).split("/")[0];
  return ui.lowerPath(path + "/" + seg);
}

/** Opens a folder (display path; "" is the root) with a new history entry. */
function navigate(path) {
  const url = ui.folderUrl(path);
  if (location.pathname + location.search !== url) history.pushState({}, "", url);
  route();
}

addEventListener("popstate", () => route());
on("navigate", (d) => navigate(d && typeof d.path === "string" ? d.path : ""));
// A finished upload shows at once (the change feed confirms it a moment later).
on("upload-done", (d) => {
  const e = d && d.entry;
  if (!e || !e.path_lower) return;
  // Metadata from upload/create_folder carries no ".tag": files have a rev, folders not.
  applyChanges([{ ".tag": e.rev ? "file" : "folder", ...e }]);
});
on("refresh", () => {
  if (mode === "folder") loadFolder(state.folder, { soft: true });
  else if (query) runSearch(query);
});

// ---------------------------------------------------------------------------------------
// View and deleted-files toggles.

function toggleView() {
  state.view = state.view === "grid" ? "list" : "grid";
  localStorage.setItem("cubby.view", state.view);
  viewBtn.setAttribute("aria-pressed", String(state.view === "grid"));
  const key = list.focused()?.path_lower;
  list.render();
  if (key) list.focusKey(key, list.hasFocus());
}

function toggleDeleted() {
  state.showDeleted = !state.showDeleted;
  deletedBtn.setAttribute("aria-pressed", String(state.showDeleted));
  ui.announce(state.showDeleted ? "Showing deleted files" : "Hiding deleted files");
  if (mode === "folder") loadFolder(state.folder, { soft: true });
}

// ---------------------------------------------------------------------------------------
// Keyboard: global shortcuts (the list handles arrows, Enter, Ctrl+Space itself).

function typing(t) {
  if (!t || !t.tagName) return false;
  if (t.isContentEditable || t.tagName === "TEXTAREA" || t.tagName === "SELECT") return true;
  return t.tagName === "INPUT" && !["checkbox", "radio", "button", "submit", "reset"].includes(t.type);
}

document.addEventListener("keydown", (e) => {
  if (e.defaultPrevented || typing(e.target) || document.querySelector("dialog[open]") || menuOpen()) return;
  // The Shared page has no file list: the list's keys do nothing there.
  if (mode === "shared") return;
  const mod = e.ctrlKey || e.metaKey;
  const single = !mod && !e.altKey;
  if (e.altKey && !mod && e.key === "ArrowUp") {
    e.preventDefault();
    if (mode === "folder" && state.folder) navigate(ui.parentOf(state.folder));
    else if (mode === "search") navigate(state.folder);
    return;
  }
  if (mod && !e.altKey && (e.key === "a" || e.key === "A")) {
    e.preventDefault();
    selectAll();
    return;
  }
  if (e.key === "Escape" && single) {
    if (state.selection.size) {
      e.preventDefault();
      clearSelection();
    }
    return;
  }
  // Actions with their own key (Delete, F2): the selection, or else the focused row.
  for (const a of actions()) {
    if (!a.key || a.key !== e.key || mod || e.altKey) continue;
    let entries = ui.selected();
    if (!entries.length && list.hasFocus() && list.focused()) entries = [list.focused()];
    if (entries.length && applicable(a, entries)) {
      e.preventDefault();
      runAction(a, entries);
    }
    return;
  }
  if (!single || !shortcutsOn) return;
  if (e.key === "/") {
    e.preventDefault();
    searchInput.focus();
    searchInput.select();
  } else if (e.key === "v" || e.key === "V") {
    toggleView();
  } else if (e.key === "?") {
    showHelp();
  }
});

// The help dialog, where single-key shortcuts can be switched off (WCAG 2.1.4).
function showHelp() {
  const keys = [
    ["↑ ↓ (← → in grid)", "Move between files"],
    ["Enter", "Open a folder, preview a file"],
    ["Alt + ↑", "Go to the parent folder"],
    ["Ctrl + Space", "Select or unselect"],
    ["Shift + ↑ ↓", "Extend the selection"],
    ["Ctrl + A", "Select all"],
    ["Esc", "Clear the selection"],
    ["Delete", "Delete"],
    ["F2", "Rename"],
    ["a, Shift + F10", "Actions for the focused file"],
    ["/", "Search"],
    ["v", "Switch list / grid"],
    ["?", "This help"],
  ];
  const box = el("input", { type: "checkbox", id: "shortcuts-on", checked: shortcutsOn });
  box.addEventListener("change", () => {
    shortcutsOn = box.checked;
    localStorage.setItem("cubby.shortcuts", shortcutsOn ? "on" : "off");
  });
  const table = el("table", { class: "keys" },
    el("tbody", {}, ...keys.map(([k, what]) => el("tr", {}, el("th", { scope: "row" }, el("kbd", {}, k)), el("td", {}, what)))));
  ui.dialog("Keyboard shortcuts", [
    table,
    el("label", { class: "check-label" }, box, " Single-key shortcuts (a, /, v, ?)"),
  ], [{ label: "Close", value: "ok", primary: true }]);
}

// ---------------------------------------------------------------------------------------
// Start.

renderActions();
route();
