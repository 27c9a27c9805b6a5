// The file list: a virtual `role="grid"` (list or tiles) that renders only the rows in view,
// plus the popup menu and icons the rest of the app uses.
//
// Only rows in view (+3 rows of buffer, +1 tile row in the grid) exist in the DOM; two
// padding spacers stand for the others, so a folder of 100,000 entries costs what 40 rows
// do. Rows have a fixed height (44 px; tiles 220 px), so the scroll position alone says
// which rows to draw. Rows are recycled by key (path_lower) while their entry is unchanged.
//
// Security: names reach the page only through ui.nameNode / textContent / attributes.

import * as api from "./api.js";
import { el, nameNode, state, formatSize, formatDate, parentOf } from "./ui.js";

export const ROW_H = 44;
export const TILE_H = 220;
const TILE_MIN_W = 168;
const BUFFER = 3;

// ---------------------------------------------------------------------------------------
// Icons: tiny SVGs built through the DOM (no markup strings, no external files).

const SVG = "http://www.w3.org/2000/svg";
const ICONS = {
  folder: "M3 6.5A2.5 2.5 0 0 1 5.5 4h4l2 2.5h7A2.5 2.5 0 0 1 21 9v8.5a2.5 2.5 0 0 1-2.5 2.5h-13A2.5 2.5 0 0 1 3 17.5z",
  file: "M6.5 2.5h7l5 5v12a2 2 0 0 1-2 2h-10a2 2 0 0 1-2-2v-15a2 2 0 0 1 2-2zM13.5 2.5v5h5",
  image: "M4 5h16v14H4zM4 16l5-5 4 4 3-3 4 4M15.5 9.5a1 1 0 1 0 0-.01",
  deleted: "M5 7h14M9 7V4h6v3M7 7l1 13h8l1-13",
  more: "M5 12h.01M12 12h.01M19 12h.01",
};

/** An icon element (aria-hidden): `kind` is folder, file, image, deleted or more. */
export function icon(kind) {
  const s = document.createElementNS(SVG, "svg");
  s.setAttribute("viewBox", "0 0 24 24");
  s.setAttribute("aria-hidden", "true");
  s.setAttribute("class", "ico ico-" + kind);
  const p = document.createElementNS(SVG, "path");
  p.setAttribute("d", ICONS[kind]);
  s.append(p);
  return s;
}

const IMAGE_EXT = new Set(["jpg", "jpeg", "png", "gif", "webp", "bmp", "tiff", "tif", "ppm"]);
/** True for a file whose thumbnail the server can make. */
export function isImage(entry) {
  if (entry[".tag"] !== "file") return false;
  const dot = entry.name.lastIndexOf(".");
  return dot > 0 && IMAGE_EXT.has(entry.name.slice(dot + 1).toLowerCase());
}

const isFolder = (e) => e[".tag"] === "folder";
const isDeleted = (e) => e[".tag"] === "deleted";

// ---------------------------------------------------------------------------------------
// The popup menu (`.menu`, role=menu): used by the toolbar and each row's "…" button.

let openMenuState = null;

/** Closes the open popup menu, if any; `refocus` returns focus to its button. */
export function closeMenu(refocus = false) {
  if (!openMenuState) return;
  const { menu, anchor, cleanup } = openMenuState;
  openMenuState = null;
  cleanup();
  menu.remove();
  anchor.setAttribute("aria-expanded", "false");
  if (refocus) anchor.focus();
}

/**
 * Opens a menu under `anchor` with `items` [{label, run, disabled, danger}]. Arrow keys,
 * Home/End move; Esc closes; a click outside closes.
 */
export function openMenu(anchor, items, opts = {}) {
  // A second press of the same button closes its menu.
  if (openMenuState && openMenuState.anchor === anchor) {
    closeMenu(true);
    return null;
  }
  closeMenu();
  const menu = el("div", { class: "menu", role: "menu", "aria-label": opts.label || anchor.getAttribute("aria-label") || anchor.textContent });
  for (const it of items) {
    menu.append(
      el("button", {
        type: "button",
        role: "menuitem",
        class: "menu-item" + (it.danger ? " danger" : ""),
        tabindex: "-1",
        disabled: !!it.disabled,
        onclick: () => {
          closeMenu(true);
          it.run();
        },
      }, it.label),
    );
  }
  if (!items.length) menu.append(el("p", { class: "menu-empty" }, "No actions"));
  document.body.append(menu);
  // Place it under the button, kept inside the window.
  const r = anchor.getBoundingClientRect();
  const m = menu.getBoundingClientRect();
  const left = Math.max(8, Math.min(opts.alignLeft ? r.left : r.right - m.width, innerWidth - m.width - 8));
  let top = r.bottom + 4;
  if (top + m.height > innerHeight - 8) top = Math.max(8, r.top - m.height - 4);
  menu.style.left = left + "px";
  menu.style.top = top + "px";
  anchor.setAttribute("aria-expanded", "true");

  const buttons = () => [...menu.querySelectorAll("button:not([disabled])")];
  const onKey = (e) => {
    const b = buttons();
    const i = b.indexOf(document.activeElement);
    if (e.key === "ArrowDown") b[(i + 1) % b.length]?.focus();
    else if (e.key === "ArrowUp") b[(i - 1 + b.length) % b.length]?.focus();
    else if (e.key === "Home") b[0]?.focus();
    else if (e.key === "End") b[b.length - 1]?.focus();
    else if (e.key === "Escape") closeMenu(true);
    else if (e.key === "Tab") closeMenu();
    else return;
    e.preventDefault();
    e.stopPropagation();
  };
  const onDown = (e) => {
    if (!menu.contains(e.target) && !anchor.contains(e.target)) closeMenu();
  };
  menu.addEventListener("keydown", onKey);
  document.addEventListener("pointerdown", onDown, true);
  // Closes when its button moves (a scroll of the page or list), not on every scroll event:
  // a live update that scrolls nothing visible must not take the menu from under a click.
  const onScroll = (e) => {
    if (e.target instanceof Node && menu.contains(e.target)) return;
    const now = anchor.getBoundingClientRect();
    if (!anchor.isConnected || Math.abs(now.top - r.top) > 2 || Math.abs(now.left - r.left) > 2) closeMenu();
  };
  addEventListener("scroll", onScroll, true);
  const onResize = () => closeMenu();
  addEventListener("resize", onResize);
  openMenuState = {
    menu,
    anchor,
    cleanup: () => {
      document.removeEventListener("pointerdown", onDown, true);
      removeEventListener("scroll", onScroll, true);
      removeEventListener("resize", onResize);
    },
  };
  buttons()[0]?.focus();
  return menu;
}

/** True while a popup menu is open. */
export const menuOpen = () => !!openMenuState;

// ---------------------------------------------------------------------------------------
// Thumbnails: batches of ≤25 for rendered rows only, kept as object URLs in an LRU.

const LRU_MAX = 400;
const thumbs = new Map(); // key → object URL, or null for "has none"; Map order = recency
const pending = new Map(); // key → {entry, size, imgs: Set<img>}
let flushTimer = 0;

function thumbKey(entry, size) {
  return (entry.rev || entry.path_lower) + "|" + size;
}

function remember(key, url) {
  thumbs.delete(key);
  thumbs.set(key, url);
  while (thumbs.size > LRU_MAX) {
    const [oldKey, oldUrl] = thumbs.entries().next().value;
    thumbs.delete(oldKey);
    if (oldUrl) URL.revokeObjectURL(oldUrl);
  }
}

function base64Blob(b64, type) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type });
}

/** Puts the entry's thumbnail into `img` now (cached) or once its batch returns. */
function wantThumb(entry, size, img) {
  const key = thumbKey(entry, size);
  if (thumbs.has(key)) {
    const url = thumbs.get(key);
    remember(key, url); // touch
    if (url) img.src = url;
    return;
  }
  let p = pending.get(key);
  if (!p) pending.set(key, (p = { entry, size, imgs: new Set(), sent: false }));
  p.imgs.add(img);
  if (!flushTimer) flushTimer = setTimeout(flushThumbs, 30);
}

async function flushThumbs() {
  flushTimer = 0;
  const batch = [...pending.entries()].filter(([, p]) => !p.sent).slice(0, 25);
  if (!batch.length) return;
  for (const [, p] of batch) p.sent = true;
  if (pending.size > batch.length) flushTimer = setTimeout(flushThumbs, 0);
  const arg = {
    entries: batch.map(([, p]) => ({
      path: p.entry.rev ? "rev:" + p.entry.rev : p.entry.path_lower,
      size: p.size,
      format: "jpeg",
      mode: "fitone_bestfit",
    })),
  };
  let res = null;
  try {
    res = await api.rpc("files/get_thumbnail_batch", arg);
  } catch {
    /* no thumbnails this time: icons stay */
  }
  batch.forEach(([key, p], i) => {
    pending.delete(key);
    const r = res && res.entries[i];
    let url = null;
    if (r && r[".tag"] === "success") url = URL.createObjectURL(base64Blob(r.thumbnail, "image/jpeg"));
    if (res) remember(key, url);
    for (const img of p.imgs) {
      if (url && img.isConnected) {
        img.src = url;
        img.closest(".thumb")?.classList.add("loaded");
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// The list.

const COLUMNS = [
  { key: "name", label: "Name" },
  { key: "size", label: "Size" },
  { key: "modified", label: "Modified" },
];

/** Sorts entries in place by state.sort: folders first, then the key; natural name order. */
export function sortEntries(entries, collator) {
  const { key, dir } = state.sort;
  const mod = (e) => e.client_modified || e.server_modified || "";
  const cmp = (a, b) => {
    const fa = isFolder(a) ? 0 : 1;
    const fb = isFolder(b) ? 0 : 1;
    if (fa !== fb) return fa - fb;
    let c = 0;
    if (key === "size") c = (a.size || 0) - (b.size || 0);
    else if (key === "modified") c = mod(a) < mod(b) ? -1 : mod(a) > mod(b) ? 1 : 0;
    if (c === 0) c = collator.compare(a.name, b.name);
    return c * dir;
  };
  return entries.sort(cmp);
}

/**
 * Creates the list. `h` holds the app's handlers: open(entry), navigate(path),
 * rowMenu(entry, button), dropFiles(dataTransfer, destPath), dropEntries(paths, destPath,
 * copy), sort(key), selectionChanged().
 */
export function createList(h) {
  let items = []; // the entries in display order
  let index = new Map(); // path_lower → index in items
  let focusIndex = 0;
  let anchorIndex = -1; // for Shift-click / Shift+arrows ranges
  let cols = 1; // tiles per row in grid view
  let showWhere = false; // search results show each entry's folder
  let emptyText = "";
  const rows = new Map(); // path_lower → {entry, row, view}

  const body = el("div", { class: "list-body", role: "rowgroup" });
  const selectAll = el("input", { type: "checkbox", class: "check", "aria-label": "Select all" });
  const headCells = COLUMNS.map((c) =>
    el("div", { role: "columnheader", class: "col-" + c.key, "aria-sort": "none" },
      el("button", { type: "button", class: "sort", dataset: { key: c.key }, onclick: () => h.sort(c.key) }, c.label,
        el("span", { class: "sort-arrow", "aria-hidden": "true" }))),
  );
  const head = el("div", { class: "list-head", role: "row", "aria-rowindex": "1" },
    el("div", { role: "columnheader", class: "col-check" }, selectAll),
    el("div", { role: "columnheader", class: "col-icon" }, el("span", { class: "sr-only" }, "Type")),
    ...headCells,
    el("div", { role: "columnheader", class: "col-more" }, el("span", { class: "sr-only" }, "Actions")),
  );
  const grid = el("div", { class: "list", role: "grid", "aria-label": "Files", "aria-rowcount": "1", "aria-multiselectable": "true" }, head, body);
  const empty = el("div", { class: "empty", hidden: true });
  const scroller = el("div", { class: "list-scroll" }, grid, empty);

  selectAll.addEventListener("change", () => {
    if (selectAll.checked) items.forEach((e) => state.selection.add(e.path_lower));
    else state.selection.clear();
    changed();
  });

  // --- Rendering ---------------------------------------------------------------------

  let frame = 0;
  /** Schedules a render on the next animation frame (scroll, resize: at most once a frame). */
  function schedule() {
    if (!frame) frame = requestAnimationFrame(() => {
      frame = 0;
      render();
    });
  }

  function metrics() {
    const grid = state.view === "grid";
    const width = body.clientWidth || scroller.clientWidth;
    cols = grid ? Math.max(1, Math.floor(width / TILE_MIN_W)) : 1;
    return { itemH: grid ? TILE_H : ROW_H, buffer: grid ? 1 : BUFFER };
  }

  function render() {
    const { itemH, buffer } = metrics();
    scroller.classList.toggle("grid-view", state.view === "grid");
    body.style.setProperty("--cols", String(cols));
    const lines = Math.ceil(items.length / cols);
    // The body's top in the scroller's content (below the sticky header).
    const top = body.offsetTop;
    const first = Math.max(0, Math.floor((scroller.scrollTop - top) / itemH) - buffer);
    const visible = Math.ceil(scroller.clientHeight / itemH) + 2 * buffer + 1;
    const last = Math.min(lines, first + visible);
    body.style.paddingTop = first * itemH + "px";
    body.style.paddingBottom = Math.max(0, lines - last) * itemH + "px";
    const start = first * cols;
    const end = Math.min(items.length, last * cols);
    if (focusIndex >= items.length) focusIndex = Math.max(0, items.length - 1);

    const want = [];
    const keep = new Set();
    for (let i = start; i < end; i++) {
      const e = items[i];
      let r = rows.get(e.path_lower);
      if (!r || r.entry !== e || r.view !== state.view || r.where !== showWhere) {
        r?.row.remove();
        r = { entry: e, view: state.view, where: showWhere, row: buildRow(e) };
        rows.set(e.path_lower, r);
      }
      updateRow(r.row, e, i);
      want.push(r.row);
      keep.add(r.row);
    }
    // Keep the focused row in place (moving a focused node would drop its focus).
    for (const [k, r] of rows) {
      if (!keep.has(r.row)) {
        r.row.remove();
        rows.delete(k);
      }
    }
    let cursor = body.firstChild;
    for (const row of want) {
      if (row === cursor) cursor = cursor.nextSibling;
      else body.insertBefore(row, cursor);
    }
    // If the focused row is not drawn, the first drawn one takes Tab.
    if (want.length && !want.some((r) => r.tabIndex === 0)) want[0].tabIndex = 0;

    grid.setAttribute("aria-rowcount", String(items.length + 1));
    empty.hidden = items.length > 0 || !emptyText;
    empty.textContent = emptyText;
    const n = items.length;
    const sel = n > 0 && state.selection.size >= n && items.every((e) => state.selection.has(e.path_lower));
    selectAll.checked = sel;
    selectAll.indeterminate = !sel && state.selection.size > 0;
    for (const c of headCells) {
      const key = c.querySelector("button").dataset.key;
      c.setAttribute("aria-sort", key === state.sort.key ? (state.sort.dir > 0 ? "ascending" : "descending") : "none");
      c.querySelector(".sort-arrow").textContent = key === state.sort.key ? (state.sort.dir > 0 ? "↑" : "↓") : "";
    }
  }

  function buildRow(e) {
    const folder = isFolder(e);
    const deleted = isDeleted(e);
    const grid = state.view === "grid";
    const check = el("input", { type: "checkbox", class: "check", tabindex: "-1", "aria-label": "Select " + e.name });
    const name = folder
      ? el("a", { class: "name-link", href: h.folderUrl(e.path_display), tabindex: "-1", draggable: "false" }, nameNode(e.name))
      : nameNode(e.name);
    const nameCell = el("div", { role: "gridcell", class: "cell-name" }, name);
    if (deleted) nameCell.append(el("span", { class: "deleted-mark" }, "Deleted"));
    // A shared folder's mount point (other people have it too).
    if (folder && e.sharing_info && e.sharing_info.shared_folder_id) {
      nameCell.append(el("span", { class: "shared-mark", title: "Shared with other people" }, "Shared"));
    }
    if (showWhere) {
      const where = parentOf(e.path_display);
      nameCell.append(
        el("a", { class: "where", href: h.folderUrl(where), tabindex: "-1", dataset: { where } },
          el("span", { class: "sr-only" }, "in folder "), nameNode(where ? where.slice(1) : "Home")),
      );
    }
    let iconCell;
    if (isImage(e)) {
      const img = el("img", { alt: "", loading: "lazy", decoding: "async", draggable: "false" });
      iconCell = el("div", { role: "gridcell", class: "cell-icon thumb" }, icon("image"), img);
      wantThumb(e, grid ? "w256h256" : "w64h64", img);
      if (img.getAttribute("src")) iconCell.classList.add("loaded");
    } else {
      iconCell = el("div", { role: "gridcell", class: "cell-icon" }, icon(deleted ? "deleted" : folder ? "folder" : "file"));
    }
    const more = el("button", { type: "button", class: "btn icon more", tabindex: "-1", "aria-haspopup": "menu", "aria-expanded": "false", "aria-label": "Actions for " + e.name }, icon("more"));
    const row = el("div", {
      role: "row",
      class: "row" + (folder ? " folder" : "") + (deleted ? " deleted" : "") + (showWhere ? " has-where" : ""),
      draggable: deleted ? "false" : "true",
      dataset: { path: e.path_lower },
    },
    el("div", { role: "gridcell", class: "cell-check" }, check),
    iconCell,
    nameCell,
    el("div", { role: "gridcell", class: "cell-size" }, folder || deleted ? "" : formatSize(e.size || 0)),
    el("div", { role: "gridcell", class: "cell-modified" }, formatDate(e.client_modified || e.server_modified)),
    el("div", { role: "gridcell", class: "cell-more" }, more));
    return row;
  }

  function updateRow(row, e, i) {
    const sel = state.selection.has(e.path_lower);
    row.setAttribute("aria-rowindex", String(i + 2));
    row.setAttribute("aria-selected", String(sel));
    row.classList.toggle("selected", sel);
    row.tabIndex = i === focusIndex ? 0 : -1;
    row.querySelector(".check").checked = sel;
    row._index = i;
  }

  /** Re-applies selection and focus marks to the drawn rows (no rebuild). */
  function refreshMarks() {
    for (const r of rows.values()) {
      const i = index.get(r.entry.path_lower);
      if (i !== undefined) updateRow(r.row, r.entry, i);
    }
    render();
  }

  // --- Focus and selection -----------------------------------------------------------

  /** Moves the roving focus to item `i`, scrolling it into view; `dom` focuses it. */
  function focusItem(i, dom = true) {
    if (!items.length) return;
    focusIndex = Math.max(0, Math.min(items.length - 1, i));
    const { itemH } = metrics();
    const line = Math.floor(focusIndex / cols);
    const y = body.offsetTop + line * itemH;
    const headH = head.offsetHeight;
    if (y < scroller.scrollTop + headH) scroller.scrollTop = y - headH;
    else if (y + itemH > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = y + itemH - scroller.clientHeight;
    render();
    if (dom) rows.get(items[focusIndex].path_lower)?.row.focus({ preventScroll: true });
  }

  function changed() {
    refreshMarks();
    h.selectionChanged();
  }

  function selectRange(from, to, add) {
    if (!add) state.selection.clear();
    const [a, b] = from < to ? [from, to] : [to, from];
    for (let i = Math.max(0, a); i <= b; i++) state.selection.add(items[i].path_lower);
  }

  function toggle(i) {
    const k = items[i].path_lower;
    if (state.selection.has(k)) state.selection.delete(k);
    else state.selection.add(k);
    anchorIndex = i;
  }

  const rowOf = (target) => target.closest?.(".row");
  const entryOf = (row) => items[row._index];

  // --- Pointer -------------------------------------------------------------------------

  body.addEventListener("click", (ev) => {
    const row = rowOf(ev.target);
    if (!row) return;
    const i = row._index;
    const e = items[i];
    focusIndex = i;
    if (ev.target.closest(".more")) {
      h.rowMenu(e, ev.target.closest(".more"));
      return;
    }
    if (ev.target.classList.contains("check")) {
      toggle(i);
      changed();
      return;
    }
    const mod = ev.ctrlKey || ev.metaKey;
    const link = ev.target.closest("a");
    if (link) {
      ev.preventDefault();
      if (!mod && !ev.shiftKey) {
        h.navigate(link.classList.contains("where") ? link.dataset.where : e.path_display);
        return;
      }
    }
    if (ev.shiftKey && anchorIndex >= 0) selectRange(anchorIndex, i, mod);
    else if (mod) toggle(i);
    else {
      state.selection.clear();
      state.selection.add(e.path_lower);
      anchorIndex = i;
    }
    changed();
    row.focus({ preventScroll: true });
  });

  // Touch: a long press toggles the row's selection (there is no Ctrl on a phone).
  let pressTimer = 0;
  let pressed = false;
  body.addEventListener("pointerdown", (ev) => {
    pressed = false;
    const row = rowOf(ev.target);
    if (ev.pointerType !== "touch" || !row) return;
    pressTimer = setTimeout(() => {
      pressed = true;
      toggle(row._index);
      changed();
    }, 500);
  });
  for (const t of ["pointerup", "pointercancel", "pointermove"]) {
    body.addEventListener(t, (ev) => {
      if (t !== "pointermove" || Math.abs(ev.movementX) + Math.abs(ev.movementY) > 4) clearTimeout(pressTimer);
    });
  }
  body.addEventListener("click", (ev) => {
    // The click that ends a long press must not undo it.
    if (pressed) {
      pressed = false;
      ev.preventDefault();
      ev.stopImmediatePropagation();
    }
  }, true);

  body.addEventListener("dblclick", (ev) => {
    const row = rowOf(ev.target);
    if (row && !ev.target.closest(".more, .check")) h.open(entryOf(row));
  });

  body.addEventListener("focusin", (ev) => {
    const row = rowOf(ev.target);
    if (row && row._index !== focusIndex) {
      focusIndex = row._index;
      for (const r of rows.values()) r.row.tabIndex = r.row === row ? 0 : -1;
    }
  });

  // --- Keyboard (inside the list; global keys live in app.js) ---------------------------

  grid.addEventListener("keydown", (ev) => {
    const row = rowOf(ev.target);
    if (!row || ev.target !== row) return;
    const i = row._index;
    const page = Math.max(1, Math.floor(scroller.clientHeight / metrics().itemH) - 1) * cols;
    const step = state.view === "grid" ? cols : 1;
    let to = null;
    switch (ev.key) {
      case "ArrowDown": to = i + step; break;
      case "ArrowUp": if (ev.altKey) return; to = i - step; break;
      case "ArrowRight": if (state.view !== "grid") return; to = i + 1; break;
      case "ArrowLeft": if (state.view !== "grid") return; to = i - 1; break;
      case "Home": to = 0; break;
      case "End": to = items.length - 1; break;
      case "PageDown": to = i + page; break;
      case "PageUp": to = i - page; break;
      case "Enter":
        if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
        h.open(items[i]);
        break;
      case " ":
        if (ev.ctrlKey && ev.shiftKey && anchorIndex >= 0) selectRange(anchorIndex, i, true);
        else toggle(i);
        changed();
        break;
      case "ContextMenu":
      case "F10":
        if (ev.key === "F10" && !ev.shiftKey) return;
        h.rowMenu(items[i], row.querySelector(".more"));
        break;
      case "a":
      case "A":
        if (ev.ctrlKey || ev.metaKey || ev.altKey || !h.shortcutsOn()) return;
        h.rowMenu(items[i], row.querySelector(".more"));
        break;
      default:
        return;
    }
    ev.preventDefault();
    ev.stopPropagation();
    if (to !== null && items.length) {
      to = Math.max(0, Math.min(items.length - 1, to));
      if (ev.shiftKey) {
        if (anchorIndex < 0) anchorIndex = i;
        selectRange(anchorIndex, to, false);
        changed();
      } else if (!ev.ctrlKey) {
        anchorIndex = to;
      }
      focusItem(to);
    }
  });

  // --- Drag and drop -----------------------------------------------------------------
  // OS files: onto the list (the open folder) or a folder row. Rows: onto a folder row.

  const DRAG_TYPE = "application/x-cubby-paths";
  let dragging = null; // path_lowers of the rows being dragged

  body.addEventListener("dragstart", (ev) => {
    const row = rowOf(ev.target);
    if (!row) return;
    const e = entryOf(row);
    if (!state.selection.has(e.path_lower)) {
      state.selection.clear();
      state.selection.add(e.path_lower);
      changed();
    }
    dragging = [...state.selection];
    ev.dataTransfer.setData(DRAG_TYPE, JSON.stringify(dragging));
    ev.dataTransfer.setData("text/plain", dragging.length === 1 ? e.name : dragging.length + " items");
    ev.dataTransfer.effectAllowed = "copyMove";
  });
  body.addEventListener("dragend", () => {
    dragging = null;
    clearDrop();
  });

  let dropRow = null;
  function clearDrop() {
    scroller.classList.remove("drop-zone");
    dropRow?.classList.remove("drop-target");
    dropRow = null;
  }

  /** The drop destination under the pointer: a folder row, or the list (open folder). */
  function dropTarget(ev) {
    const row = rowOf(ev.target);
    const e = row && entryOf(row);
    if (e && isFolder(e) && !(dragging && dragging.includes(e.path_lower))) return { row, path: e.path_display };
    return { row: null, path: null };
  }

  scroller.addEventListener("dragover", (ev) => {
    const types = ev.dataTransfer.types;
    const files = types.includes("Files");
    const own = types.includes(DRAG_TYPE);
    if (!files && !own) return;
    const t = dropTarget(ev);
    if (own && !t.row) {
      clearDrop();
      return; // rows dropped on the folder they are in: nothing to do
    }
    ev.preventDefault();
    ev.dataTransfer.dropEffect = own ? (ev.ctrlKey || ev.altKey ? "copy" : "move") : "copy";
    if (dropRow !== t.row) {
      dropRow?.classList.remove("drop-target");
      dropRow = t.row;
      dropRow?.classList.add("drop-target");
    }
    scroller.classList.toggle("drop-zone", files && !t.row);
  });
  scroller.addEventListener("dragleave", (ev) => {
    if (!scroller.contains(ev.relatedTarget)) clearDrop();
  });
  scroller.addEventListener("drop", (ev) => {
    const t = dropTarget(ev);
    clearDrop();
    const dt = ev.dataTransfer;
    if (dt.types.includes(DRAG_TYPE)) {
      if (!t.path) return;
      ev.preventDefault();
      h.dropEntries(JSON.parse(dt.getData(DRAG_TYPE)), t.path, ev.ctrlKey || ev.altKey);
    } else if (dt.types.includes("Files")) {
      ev.preventDefault();
      h.dropFiles(dt, t.path ?? state.folder);
    }
  });

  // Width changes the tiles per line; debounced, as a resize fires many times.
  let resizeTimer = 0;
  new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(schedule, 100);
  }).observe(scroller);
  scroller.addEventListener("scroll", schedule, { passive: true });

  return {
    element: scroller,
    grid,
    /** Shows `list` (already sorted); keeps the focus on the same entry where it can. */
    setItems(list, opts = {}) {
      const focusedKey = items[focusIndex]?.path_lower;
      items = list;
      index = new Map(items.map((e, i) => [e.path_lower, i]));
      if (opts.where !== undefined) showWhere = opts.where;
      if (opts.empty !== undefined) emptyText = opts.empty;
      if (opts.reset) {
        focusIndex = 0;
        anchorIndex = -1;
        scroller.scrollTop = 0;
      } else if (focusedKey && index.has(focusedKey)) {
        focusIndex = index.get(focusedKey);
      }
      const hadFocus = grid.contains(document.activeElement) && rowOf(document.activeElement);
      render();
      if (hadFocus && !grid.contains(document.activeElement)) focusItem(focusIndex);
    },
    items: () => items,
    render,
    refreshMarks,
    focusItem,
    /** Focuses the entry with this path_lower (after navigating back up), if listed. */
    focusKey(key, dom = true) {
      const i = index.get(key);
      if (i !== undefined) focusItem(i, dom);
      return i !== undefined;
    },
    focused: () => items[focusIndex],
    hasFocus: () => grid.contains(document.activeElement),
    clearSelection() {
      anchorIndex = -1;
    },
  };
}
