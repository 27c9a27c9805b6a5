// Shared pieces of the web app: building elements safely, the app's state and its event
// bus, toasts, dialogs, the live region, and locale formatting.
//
// Security rule: file names and every other server string reach the page only through
// `textContent` or attribute setters (this module's `el`), never through innerHTML.

/**
 * Builds an element: `attrs` are properties or attributes (`class`, `on*` listeners,
 * `dataset`), `children` are nodes or strings (set as text).
 */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "text") e.textContent = v;
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/**
 * A file name for display: control characters made visible (U+2400 block), inside <bdi>
 * so a right-to-left override cannot fake an extension.
 */
export function nameNode(name, attrs = {}) {
  const shown = String(name).replace(/[\u0000-\u001f\u007f]/g, (c) =>
    String.fromCharCode(c.charCodeAt(0) === 0x7f ? 0x2421 : 0x2400 + c.charCodeAt(0)),
  ).replace(/[\u202a-\u202e\u2066-\u2069]/g, "\ufffd");
  return el("bdi", { class: "name", ...attrs }, shown);
}

// ---------------------------------------------------------------------------------------
// State and events.

/** The app's state: one object, changed only through the functions below. */
export const state = {
  /** The open folder's display path ("" is the root). */
  folder: "",
  /** The open folder's entries (Dropbox metadata), unsorted. */
  entries: [],
  /** `path_lower`s of the selected entries. */
  selection: new Set(),
  /** "list" or "grid". */
  view: localStorage.getItem("cubby.view") === "grid" ? "grid" : "list",
  /** {key: "name"|"size"|"modified", dir: 1|-1} */
  sort: { key: "name", dir: 1 },
  /** When showing deleted files of the folder too. */
  showDeleted: false,
};

/**
 * The bus: "navigate" {path}, "entries" (the list changed), "selection", "refresh" (reload
 * the folder), "upload-done" {entry}.
 */
export const bus = new EventTarget();

export function emit(type, detail) {
  bus.dispatchEvent(new CustomEvent(type, { detail }));
}

export function on(type, fn) {
  bus.addEventListener(type, (e) => fn(e.detail));
}

/** The selected entries, in list order. */
export function selected() {
  return state.entries.filter((e) => state.selection.has(e.path_lower));
}

// ---------------------------------------------------------------------------------------
// Feedback: the live region, toasts.

// The live region exists from the start: a region added with its first message is often not
// read out.
const live = el("div", { class: "sr-only", "aria-live": "polite", role: "status", id: "live" });
document.body.append(live);
/** Tells assistive technology (a polite live region); not every percent, just events. */
export function announce(text) {
  live.textContent = "";
  setTimeout(() => (live.textContent = text), 30);
}

let toasts;
/**
 * A notification at the bottom: `text`, optional `{action: "Undo", onAction, error, timeout}`.
 * Returns a function that closes it.
 */
export function toast(text, opts = {}) {
  if (!toasts) {
    toasts = el("div", { class: "toasts", role: "region", "aria-label": "Notifications" });
    document.body.append(toasts);
  }
  const t = el("div", { class: "toast" + (opts.error ? " error" : ""), role: opts.error ? "alert" : "status" });
  t.append(el("span", { class: "toast-text" }, text));
  const close = () => t.remove();
  if (opts.action) {
    t.append(
      el("button", {
        class: "btn link",
        type: "button",
        onclick: () => {
          close();
          opts.onAction();
        },
      }, opts.action),
    );
  }
  t.append(el("button", { class: "btn icon", type: "button", "aria-label": "Dismiss", onclick: close }, "×"));
  toasts.append(t);
  setTimeout(close, opts.timeout || (opts.action ? 10000 : 5000));
  return close;
}

// ---------------------------------------------------------------------------------------
// Dialogs: <dialog> with showModal(), so focus is trapped and Esc cancels.

/**
 * A modal dialog. `body` is a node or array of nodes; `buttons` is a list of
 * {label, value, primary}. Resolves to the clicked button's value (null on Esc/Cancel).
 * `onSubmit(value)` may return false to keep it open.
 */
let dialogSeq = 0;
export function dialog(title, body, buttons, opts = {}) {
  return new Promise((resolve) => {
    // Each title has its own id, so a dialog opened over another is named by its own title.
    const titleId = "dlg-title-" + ++dialogSeq;
    const d = el("dialog", { class: "dialog " + (opts.class || ""), "aria-labelledby": titleId });
    const form = el("form", { method: "dialog" });
    form.append(el("h2", { id: titleId }, title));
    form.append(el("div", { class: "dialog-body" }, body));
    const row = el("div", { class: "dialog-buttons" });
    for (const b of buttons) {
      row.append(
        el("button", {
          type: b.primary ? "submit" : "button",
          class: "btn" + (b.primary ? " primary" : "") + (b.danger ? " danger" : ""),
          value: b.value,
          onclick: b.primary ? undefined : () => finish(b.value),
        }, b.label),
      );
    }
    form.append(row);
    d.append(form);
    let settled = false;
    let checking = false;
    const finish = async (v) => {
      // One answer only: Enter pressed twice while `onSubmit` checks runs it once.
      if (settled || checking) return;
      if (v !== null && opts.onSubmit) {
        checking = true;
        const ok = await opts.onSubmit(v);
        checking = false;
        if (ok === false) return;
      }
      settled = true;
      d.close();
      d.remove();
      resolve(v);
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const primary = buttons.find((b) => b.primary);
      finish(primary ? primary.value : true);
    });
    d.addEventListener("cancel", (e) => {
      e.preventDefault();
      finish(null);
    });
    document.body.append(d);
    d.showModal();
    const first = d.querySelector("[autofocus]") || d.querySelector("input,select,textarea,button");
    if (first) first.focus();
    if (opts.onOpen) opts.onOpen(d);
  });
}

/** Asks for a line of text; resolves to it, or null. `select` picks part of the default. */
export async function prompt(title, label, value = "", opts = {}) {
  const input = el("input", { type: "text", class: "field", value, "aria-label": label, autofocus: true, required: true });
  const err = el("p", { class: "field-error", role: "alert" });
  const v = await dialog(title, [el("label", { class: "label" }, label, input), err], [
    { label: "Cancel", value: null },
    { label: opts.ok || "OK", value: "ok", primary: true },
  ], {
    onSubmit: async () => {
      const check = opts.validate && (await opts.validate(input.value));
      if (check) {
        err.textContent = check;
        input.focus();
        return false;
      }
      return true;
    },
    // Selects part of the default (a name's stem) once the dialog is open.
    onOpen: () => {
      if (opts.selectUntil) input.setSelectionRange(0, opts.selectUntil);
    },
  });
  return v === null ? null : input.value;
}

/** Asks yes or no; resolves to true or false. */
export async function confirm(title, text, ok = "OK", danger = false) {
  const v = await dialog(title, el("p", {}, text), [
    { label: "Cancel", value: null },
    { label: ok, value: "ok", primary: true, danger },
  ]);
  return v === "ok";
}

// ---------------------------------------------------------------------------------------
// Formatting, in the person's locale.

const sizeFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const UNITS = ["B", "KB", "MB", "GB", "TB"];
/** 1536 → "1.5 KB" (binary multiples, as file managers show them). */
export function formatSize(n) {
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? String(v) : sizeFmt.format(v)) + " " + UNITS[i];
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
/** An ISO date-time as the person's locale writes it. */
export function formatDate(iso) {
  if (!iso) return "";
  return dateFmt.format(new Date(iso));
}

/** Name comparison: natural order ("file2" < "file10"), case-insensitive. */
export const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

/** The parent of a display path ("" for top-level entries). */
/** The server's comparison key of a name or path: lower case, then Unicode NFC (path_lower). */
export function lowerPath(path) {
  return path.toLowerCase().normalize("NFC");
}

export function parentOf(path) {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "" : path.slice(0, i);
}

/** The last component of a path. */
export function baseName(path) {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** The app URL of a folder: /home/a/b with each segment encoded. */
export function folderUrl(path) {
  return "/home" + path.split("/").map(encodeURIComponent).join("/");
}
