// The file actions of the web app: each is {id, label, key?, enabled(entries), run(entries,
// extra?)}; the shell renders them as toolbar buttons and in each row's "…" menu.
//
// Names reach the page only through ui.el / ui.nameNode (textContent), never innerHTML.
// Every change ends in emit("refresh"), a toast and an announcement.

import * as api from "./api.js";
import * as ui from "./ui.js";
import { openPreview } from "./preview.js";
import { peopleSection } from "./folders.js";

const { el, nameNode, state, emit } = ui;

const tag = (e) => e[".tag"];
const isFile = (e) => tag(e) === "file";
const isFolder = (e) => tag(e) === "folder";
const isDeleted = (e) => tag(e) === "deleted";
const live = (es) => es.length > 0 && es.every((e) => !isDeleted(e));
const one = (es) => es.length === 1 && !isDeleted(es[0]);
const join = (folder, name) => (folder || "") + "/" + name;
const items = (n) => n + (n === 1 ? " item" : " items");

function report(text, opts) {
  ui.toast(text, opts);
  ui.announce(text);
}

function fail(err) {
  console.error(err);
  report(api.describe(err), { error: true });
}

/** A sentence for a failure union found inside a batch result. */
function sayFailure(failure) {
  return api.describe(new api.ApiError(409, "", failure, api.tagPath(failure)));
}

/** Runs `fn` over `list`, `n` at a time; resolves to the results (errors as {error}). */
async function pool(list, n, fn) {
  const out = new Array(list.length);
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      try {
        out[i] = await fn(list[i]);
      } catch (error) {
        out[i] = { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, list.length) }, worker));
  return out;
}

/** Why a new name is not acceptable in `folder` ("" when it is); `self` is the entry renamed. */
function nameProblem(name, folder, self) {
  if (!name.trim()) return "Enter a name.";
  if (name.includes("/")) return "A name cannot contain “/”.";
  if (name === "." || name === "..") return "That name is not allowed.";
  if (name.length > 255) return "That name is too long.";
  const lower = ui.lowerPath(name);
  if (self && ui.lowerPath(self.name) === lower) return "";
  if (ui.lowerPath(folder) === ui.lowerPath(state.folder)) {
    const clash = state.entries.find((e) => !isDeleted(e) && ui.lowerPath(e.name) === lower);
    if (clash) return `“${clash.name}” already exists here. Choose another name.`;
  }
  return "";
}

let dialogs = 0;
/**
 * ui.dialog with a title id of its own: ui.dialog names every title "dlg-title", so a
 * dialog opened over another (New folder over the picker) would take the other's name.
 */
function dialog(title, body, buttons, opts) {
  const opener = document.activeElement;
  const p = ui.dialog(title, body, buttons, opts).then((v) => {
    // Focus goes back where it was (the shell moves it on if that element went away).
    if (opener && opener.isConnected && opener.focus && !document.querySelector("dialog[open]")) opener.focus();
    return v;
  });
  const d = document.body.lastElementChild;
  const h = d && d.tagName === "DIALOG" && d.querySelector("#dlg-title");
  if (h) {
    h.id = "dlg-title-" + ++dialogs;
    d.setAttribute("aria-labelledby", h.id);
  }
  return p;
}

/**
 * A one-line text dialog whose `submit(value)` runs the change: a string it returns (or
 * throws) is shown in the dialog, which stays open; `select` is how much of the value starts
 * selected (the stem of a file name).
 */
function ask(title, label, value, ok, submit, select) {
  const input = el("input", { type: "text", class: "field", value, autocomplete: "off", spellcheck: "false" });
  const err = el("p", { class: "field-error", role: "alert" });
  let busy = false;
  const p = dialog(title, [el("label", { class: "label" }, label, input), err], [
    { label: "Cancel", value: null },
    { label: ok, value: "ok", primary: true },
  ], {
    class: "ask",
    onSubmit: async () => {
      if (busy) return false; // Enter pressed twice: one change at a time
      busy = true;
      err.textContent = "";
      let problem;
      try {
        problem = await submit(input.value);
      } catch (e) {
        problem = api.describe(e);
      } finally {
        busy = false;
      }
      if (problem) {
        err.textContent = problem;
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return false;
      }
      return true;
    },
  });
  input.focus();
  input.setSelectionRange(0, select === undefined ? value.length : select);
  return p;
}

// ---------------------------------------------------------------------------------------
// Batches.

const chunks = (list, n) => {
  const out = [];
  for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n));
  return out;
};

/** move_batch_v2 / copy_batch_v2 of {from_path, to_path} pairs: {done: [metadata], failed: [text]}. */
async function relocate(kind, pairs) {
  const done = [];
  const failed = [];
  for (const part of chunks(pairs, 1000)) {
    const launched = await api.rpc("files/" + kind + "_batch_v2", { entries: part, autorename: false });
    const r = await api.settle("files/" + kind + "_batch/check_v2", launched);
    (r.entries || []).forEach((x, i) => {
      if (tag(x) === "success") done.push({ from: part[i].from_path, meta: x.success });
      else failed.push(sayFailure(x.failure));
    });
  }
  return { done, failed };
}

function outcome(verb, done, failed) {
  if (!failed.length) return verb + " " + items(done) + ".";
  return `${verb} ${done} of ${done + failed.length}. ${failed[0]}`;
}

// ---------------------------------------------------------------------------------------
// Restoring deleted things.

/** The newest revision of a file path, or null when it never was a file (a folder). */
async function latestRevision(path) {
  try {
    const r = await api.rpc("files/list_revisions", { path, mode: "path", limit: 1 });
    // Newest first, as the API lists them.
    const revs = r.entries || [];
    return revs.length ? revs[0] : null;
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 409 && /not_found|not_file/.test(e.tag)) return null;
    throw e;
  }
}

/**
 * Brings back a deleted path: a file from its newest revision; a folder (Dropbox has no
 * folder restore) by restoring each deleted file under it, found by listing its parent
 * recursively with include_deleted, and re-creating its empty folders. Resolves to the
 * number of files restored.
 */
async function restoreDeleted(path) {
  const rev = await latestRevision(path);
  if (rev) {
    await api.rpc("files/restore", { path, rev: rev.rev });
    return 1;
  }
  const prefix = ui.lowerPath(path) + "/";
  const gone = [];
  await api.listAll({ path: ui.parentOf(path), recursive: true, include_deleted: true }, (page) => {
    for (const e of page) if (isDeleted(e) && e.path_lower.startsWith(prefix)) gone.push(e);
  });
  // A deleted entry with deleted entries under it was a folder; it comes back with them.
  const leaves = gone.filter((e) => !gone.some((o) => o.path_lower.startsWith(e.path_lower + "/")));
  let files = 0;
  const results = await pool(leaves, 4, async (e) => {
    const r = await latestRevision(e.path_display);
    if (r) {
      await api.rpc("files/restore", { path: e.path_display, rev: r.rev });
      files++;
    } else {
      await api.rpc("files/create_folder_v2", { path: e.path_display });
    }
  });
  if (!leaves.length) await api.rpc("files/create_folder_v2", { path });
  const bad = results.find((r) => r && r.error);
  if (bad && !files) throw bad.error;
  return files;
}

/** Undo of a delete: each file from the rev it had; each folder from what was under it. */
async function undelete(snapshot) {
  const results = await pool(snapshot, 4, async (s) => {
    if (s.files) {
      const back = await pool(s.files, 4, (f) => api.rpc("files/restore", { path: f.path, rev: f.rev }));
      for (const f of s.folders) {
        try {
          await api.rpc("files/create_folder_v2", { path: f });
        } catch {
          /* already back, through a file under it */
        }
      }
      const bad = back.find((r) => r && r.error);
      if (bad) throw bad.error;
    } else {
      await api.rpc("files/restore", { path: s.path, rev: s.rev });
    }
  });
  const bad = results.filter((r) => r && r.error);
  emit("refresh");
  if (bad.length) report(`Restored ${snapshot.length - bad.length} of ${snapshot.length}. ${api.describe(bad[0].error)}`, { error: true });
  else report("Restored " + items(snapshot.length) + ".");
}

/** What a folder holds (its files with their revs, its folders), to undo its deletion. */
async function snapshotFolder(path) {
  const files = [];
  const folders = [path];
  await api.listAll({ path, recursive: true }, (page) => {
    for (const e of page) {
      if (isFile(e)) files.push({ path: e.path_display, rev: e.rev });
      else if (isFolder(e)) folders.push(e.path_display);
    }
  });
  return { path, files, folders };
}

// ---------------------------------------------------------------------------------------
// Download.

function save(url, name) {
  const a = el("a", { href: url, download: name || "", class: "sr-only" });
  document.body.append(a);
  a.click();
  a.remove();
}

/** A file's download URL: its rev when it is a revision, else its path. */
export function fileUrl(entry) {
  const path = entry.path || entry.path_lower || entry.path_display;
  return api.contentUrl("files/download", { path });
}

async function download(entries) {
  if (entries.length === 1 && isFile(entries[0])) {
    save(fileUrl(entries[0]), entries[0].name);
    report("Downloading " + entries[0].name + ".");
    return;
  }
  if (entries.length === 1) {
    save(api.contentUrl("files/download_zip", { path: entries[0].path_lower }), entries[0].name + ".zip");
    report("Downloading " + entries[0].name + " as a ZIP file.");
    return;
  }
  // A selection: one ZIP of all of it, made by the server's /zip form (the API's
  // download_zip takes one folder). The form is posted into a hidden frame: the browser
  // saves a ZIP as a file, and a refusal (too large, gone) is a page the frame shows, whose
  // message is read back here.
  const form = el("form", { method: "post", action: "/zip", target: zipFrame().name, hidden: true }, [
    el("input", { type: "hidden", name: "csrf", value: api.csrfToken }),
    ...entries.map((e) => el("input", { type: "hidden", name: "path", value: e.path_lower })),
  ]);
  document.body.append(form);
  form.submit();
  form.remove();
  report(`Downloading ${entries.length} items as one ZIP file.`);
}

let frame = null;

/** The hidden frame selection ZIPs are posted into; reports the refusal it may show. */
function zipFrame() {
  if (frame) return frame;
  frame = el("iframe", { name: "cubby-zip", title: "ZIP download", hidden: true });
  frame.addEventListener("load", () => {
    let message = null;
    try {
      message = frame.contentDocument?.getElementById("error")?.textContent;
    } catch {
      message = "The ZIP file could not be made.";
    }
    if (message) report(message, { error: true });
  });
  document.body.append(frame);
  return frame;
}

// ---------------------------------------------------------------------------------------
// The folder picker (move, copy).

/** Lets the person pick a folder; resolves to its path ("" is the root) or null. */
function pickFolder(title, ok, entries) {
  let at = state.folder;
  const moving = new Set(entries.filter(isFolder).map((e) => e.path_lower));
  const crumbs = el("nav", { class: "picker-crumbs", "aria-label": "Folder in the picker" });
  const list = el("ul", { class: "picker-list", "aria-label": "Folders" });
  const status = el("p", { class: "picker-status", role: "status" });
  const newBtn = el("button", { type: "button", class: "btn", onclick: () => makeFolder() }, "New folder");
  let token = 0;

  async function show(path) {
    at = path;
    const mine = ++token;
    const refocus = crumbs.contains(document.activeElement) || list.contains(document.activeElement);
    crumbs.replaceChildren();
    const parts = path ? path.split("/").slice(1) : [];
    const add = (label, p, last) => {
      crumbs.append(
        last
          ? el("span", { class: "picker-here", "aria-current": "location", tabindex: "-1" }, nameNode(label))
          : el("button", { type: "button", class: "btn link", onclick: () => show(p) }, nameNode(label)),
      );
      if (!last) crumbs.append(el("span", { class: "picker-sep", "aria-hidden": "true" }, "/"));
    };
    add("All files", "", parts.length === 0);
    parts.forEach((n, i) => add(n, "/" + parts.slice(0, i + 1).join("/"), i === parts.length - 1));
    list.replaceChildren();
    status.textContent = "Loading…";
    const folders = [];
    try {
      await api.listAll({ path }, (page) => folders.push(...page.filter(isFolder)));
    } catch (e) {
      if (mine === token) status.textContent = api.describe(e);
      return;
    }
    if (mine !== token) return;
    folders.sort((a, b) => ui.collator.compare(a.name, b.name));
    for (const f of folders) {
      const inside = moving.has(f.path_lower);
      list.append(
        el("li", {},
          el("button", {
            type: "button",
            class: "picker-item",
            disabled: inside,
            title: inside ? "A folder cannot go inside itself" : null,
            onclick: () => show(f.path_display),
          }, el("span", { class: "picker-icon", "aria-hidden": "true" }), nameNode(f.name)),
        ),
      );
    }
    status.textContent = folders.length ? "" : "No folders here.";
    if (refocus) (list.querySelector("button:not(:disabled)") || crumbs.querySelector(".picker-here, button"))?.focus();
  }

  async function makeFolder() {
    await ask("New folder", "Name", "", "Create", async (name) => {
      if (!name.trim()) return "Enter a name.";
      if (name.includes("/")) return "A name cannot contain “/”.";
      await api.rpc("files/create_folder_v2", { path: join(at, name) });
      return "";
    });
    show(at);
  }

  show(at);
  return dialog(title, [crumbs, list, status, el("div", { class: "picker-tools" }, newBtn)], [
    { label: "Cancel", value: null },
    { label: ok, value: "ok", primary: true },
  ], { class: "picker" }).then((v) => (v === null ? null : at));
}

async function relocateTo(kind, entries, dest) {
  const verb = kind === "move" ? "Moved" : "Copied";
  const pairs = entries
    .filter((e) => kind === "copy" || ui.parentOf(e.path_lower) !== ui.lowerPath(dest))
    .map((e) => ({ from_path: e.path_display, to_path: join(dest, e.name) }));
  if (!pairs.length) {
    report("Already in that folder.");
    return;
  }
  const { done, failed } = await relocate(kind, pairs);
  emit("refresh");
  const where = dest ? " to " + ui.baseName(dest) : " to All files";
  const text = outcome(verb, done.length, failed);
  const opts = { error: failed.length > 0 };
  if (kind === "move" && done.length) {
    opts.action = "Undo";
    opts.onAction = async () => {
      try {
        const back = await relocate(
          "move",
          done.map((d) => ({ from_path: d.meta.path_display, to_path: d.from })),
        );
        emit("refresh");
        report(outcome("Moved back", back.done.length, back.failed), { error: back.failed.length > 0 });
      } catch (e) {
        fail(e);
      }
    };
  }
  report(failed.length ? text : text.replace(/\.$/, where + "."), opts);
}

function relocateAction(kind, label) {
  return {
    id: kind,
    label,
    enabled: live,
    async run(entries, extra) {
      try {
        let dest = typeof extra === "string" ? extra : null;
        if (dest === null) {
          const n = entries.length === 1 ? "“" + entries[0].name + "”" : items(entries.length);
          dest = await pickFolder(`${label} ${n} to…`, kind === "move" ? "Move here" : "Copy here", entries);
          if (dest === null) return;
        }
        await relocateTo(kind, entries, dest);
      } catch (e) {
        fail(e);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------
// Share.

const expiryOf = (date) => new Date(date + "T23:59:59").toISOString().replace(/\.\d+Z$/, "Z");

function linkRow(link, onRevoke) {
  const url = el("input", { type: "text", class: "field share-url", readonly: true, value: link.url, "aria-label": "Link" });
  const perms = link.link_permissions || {};
  const vis = perms.resolved_visibility && tag(perms.resolved_visibility);
  const notes = [];
  if (vis === "password" || perms.require_password) notes.push("Password protected");
  if (link.expires) notes.push("Expires " + ui.formatDate(link.expires));
  if (!notes.length) notes.push("Anyone with the link");
  const copy = el("button", { type: "button", class: "btn", onclick: () => copyText(url, copy) }, "Copy");
  const revoke = el("button", { type: "button", class: "btn danger", onclick: () => onRevoke(link, row) }, "Revoke");
  const row = el("li", { class: "share-link" },
    el("div", { class: "share-line" }, url, copy, revoke),
    el("p", { class: "share-note" }, notes.join(" · ")),
  );
  return row;
}

async function copyText(input, button) {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    // No clipboard (an insecure context, or refused): select it for Ctrl+C instead.
    input.focus();
    input.select();
    try {
      document.execCommand("copy");
    } catch {
      /* the selection stays for the person to copy */
    }
  }
  button.textContent = "Copied";
  ui.announce("Link copied.");
  setTimeout(() => (button.textContent = "Copy"), 2000);
}

async function share(entry) {
  const list = el("ul", { class: "share-links", "aria-label": "Links" });
  const listStatus = el("p", { class: "share-empty" }, "Loading links…");
  const password = el("input", { type: "password", class: "field", autocomplete: "new-password", name: "link-password" });
  const expiry = el("input", { type: "date", class: "field", min: new Date().toISOString().slice(0, 10), name: "link-expiry" });
  const err = el("p", { class: "field-error", role: "alert" });

  const revoke = async (link, row) => {
    try {
      await api.rpc("sharing/revoke_shared_link", { url: link.url });
      row.remove();
      await load();
      report("Link revoked.");
    } catch (e) {
      err.textContent = api.describe(e);
    }
  };
  const legend = el("legend", {}, "New link");
  const render = (links) => {
    list.replaceChildren(...links.map((l) => linkRow(l, revoke)));
    listStatus.textContent = links.length ? "" : "No links yet.";
    // One link per file: with one there, the form changes its settings.
    legend.textContent = links.length ? "Change the link’s settings" : "New link";
    const ok = legend.closest("dialog")?.querySelector(".dialog-buttons .btn.primary");
    if (ok) ok.textContent = links.length ? "Update link" : "Create link";
  };
  const load = async () => {
    try {
      const r = await api.rpc("sharing/list_shared_links", { path: entry.path_lower, direct_only: true });
      render(r.links || []);
    } catch (e) {
      listStatus.textContent = api.describe(e);
    }
  };

  const create = async () => {
    err.textContent = "";
    const settings = {};
    if (password.value) {
      settings.requested_visibility = "password";
      settings.link_password = password.value;
    }
    if (expiry.value) settings.expires = expiryOf(expiry.value);
    let link;
    try {
      link = await api.rpc("sharing/create_shared_link_with_settings", { path: entry.path_lower, settings });
    } catch (e) {
      const existing = e instanceof api.ApiError && e.tag.startsWith("shared_link_already_exists")
        ? e.error.shared_link_already_exists && e.error.shared_link_already_exists.metadata
        : null;
      if (!existing) {
        err.textContent = api.describe(e);
        return false;
      }
      // One link per file: apply the new settings to the one there is.
      try {
        link = Object.keys(settings).length
          ? await api.rpc("sharing/modify_shared_link_settings", { url: existing.url, settings })
          : existing;
      } catch (e2) {
        err.textContent = api.describe(e2);
        return false;
      }
    }
    password.value = "";
    await load();
    const row = [...list.querySelectorAll(".share-url")].find((i) => i.value === link.url);
    if (row) row.select();
    report("Link ready: " + (settings.link_password ? "password protected." : "anyone with it can open it."));
    return false;
  };

  load();
  // A folder is shared with people (members) and by link; a file by link.
  const people = isFolder(entry) ? [peopleSection(entry), el("h3", { class: "share-heading" }, "Link")] : [];
  await dialog("Share “" + entry.name + "”", [
    ...people,
    el("section", { class: "share-existing", "aria-label": "Existing links" }, list, listStatus),
    el("fieldset", { class: "share-new" },
      legend,
      el("label", { class: "label" }, "Password (optional)", password),
      el("label", { class: "label" }, "Expires (optional)", expiry),
      err,
    ),
  ], [
    { label: "Close", value: null },
    { label: "Create link", value: "create", primary: true },
  ], { class: "share", onSubmit: create });
}

// ---------------------------------------------------------------------------------------
// Version history.

/** Dates to the second: several saves a minute are told apart. */
const stamp = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const when = (iso) => stamp.format(new Date(iso));

async function history(entry) {
  const rows = el("tbody");
  const status = el("p", { class: "history-status", role: "status" }, "Loading versions…");
  let current = entry.rev;
  const load = async () => {
    let r;
    try {
      r = await api.rpc("files/list_revisions", { path: entry.path_display, mode: "path", limit: 100 });
    } catch (e) {
      status.textContent = api.describe(e);
      return;
    }
    const revs = r.entries || []; // newest first
    if (!r.is_deleted && revs.length) current = revs[0].rev;
    rows.replaceChildren(
      ...revs.map((v) => {
        const isCurrent = v.rev === current && !r.is_deleted;
        return el("tr", { class: isCurrent ? "current" : "" },
          el("td", {}, when(v.server_modified), isCurrent ? el("span", { class: "badge" }, "Current") : null),
          el("td", { class: "num" }, ui.formatSize(v.size)),
          el("td", {}, el("div", { class: "history-actions" },
            el("button", {
              type: "button",
              class: "btn",
              "aria-label": "Preview version of " + when(v.server_modified),
              onclick: () => openPreview({ ...v, path: "rev:" + v.rev }),
            }, "Preview"),
            isCurrent ? null : el("button", {
              type: "button",
              class: "btn",
              "aria-label": "Restore version of " + when(v.server_modified),
              onclick: async (ev) => {
                ev.currentTarget.disabled = true;
                try {
                  await api.rpc("files/restore", { path: entry.path_display, rev: v.rev });
                  emit("refresh");
                  report("Restored the version of " + when(v.server_modified) + ".");
                } catch (e) {
                  fail(e);
                }
                await load();
              },
            }, "Restore"),
          )),
        );
      }),
    );
    status.textContent = revs.length === 1 ? "1 version." : revs.length + " versions.";
  };
  load();
  await dialog("Versions of “" + entry.name + "”", [
    status,
    el("div", { class: "history-scroll" },
      el("table", { class: "history" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Saved"), el("th", { scope: "col", class: "num" }, "Size"), el("th", { scope: "col" }, el("span", { class: "sr-only" }, "Actions")))),
        rows,
      ),
    ),
  ], [{ label: "Close", value: "close", primary: true }], { class: "history-dialog" });
}

// ---------------------------------------------------------------------------------------
// The actions.

export const actions = [
  {
    id: "new-folder",
    label: "New folder",
    enabled: () => true,
    async run() {
      const folder = state.folder;
      let made = null;
      await ask("New folder", "Name", "", "Create", async (name) => {
        const problem = nameProblem(name, folder);
        if (problem) return problem;
        made = (await api.rpc("files/create_folder_v2", { path: join(folder, name) })).metadata;
        return "";
      });
      if (made) {
        emit("refresh");
        report("Created folder " + made.name + ".");
      }
    },
  },
  {
    id: "download",
    label: "Download",
    enabled: live,
    run: download,
  },
  {
    id: "share",
    label: "Share",
    enabled: one,
    run: (entries) => share(entries[0]).catch(fail),
  },
  {
    id: "rename",
    label: "Rename",
    key: "F2",
    enabled: one,
    async run(entries) {
      const e = entries[0];
      const folder = ui.parentOf(e.path_display);
      const dot = e.name.lastIndexOf(".");
      const stem = isFile(e) && dot > 0 ? dot : e.name.length;
      let moved = null;
      await ask("Rename", "New name", e.name, "Rename", async (name) => {
        if (name === e.name) return "";
        const problem = nameProblem(name, folder, e);
        if (problem) return problem;
        moved = (await api.rpc("files/move_v2", { from_path: e.path_display, to_path: join(folder, name), autorename: false })).metadata;
        return "";
      }, stem);
      if (moved) {
        emit("refresh");
        report(`Renamed to ${moved.name}.`);
      }
    },
  },
  relocateAction("move", "Move"),
  relocateAction("copy", "Copy"),
  {
    id: "delete",
    label: "Delete",
    key: "Delete",
    enabled: live,
    async run(entries) {
      try {
        const snapshot = await Promise.all(
          entries.map((e) => (isFolder(e) ? snapshotFolder(e.path_display) : { path: e.path_display, rev: e.rev })),
        );
        const ok = [];
        const failed = [];
        for (const part of chunks(entries, 1000)) {
          const launched = await api.rpc("files/delete_batch", { entries: part.map((e) => ({ path: e.path_display })) });
          const r = await api.settle("files/delete_batch/check", launched);
          (r.entries || []).forEach((x, i) => {
            if (tag(x) === "success") ok.push(snapshot[entries.indexOf(part[i])]);
            else failed.push(sayFailure(x.failure));
          });
        }
        emit("refresh");
        const text = failed.length ? outcome("Deleted", ok.length, failed) : "Deleted " + items(ok.length) + ".";
        report(text, ok.length ? { action: "Undo", onAction: () => undelete(ok).catch(fail), error: failed.length > 0 } : { error: true });
      } catch (e) {
        fail(e);
      }
    },
  },
  {
    id: "version-history",
    label: "Version history",
    enabled: (es) => es.length === 1 && isFile(es[0]),
    run: (entries) => history(entries[0]).catch(fail),
  },
  {
    id: "restore",
    label: "Restore",
    enabled: (es) => es.length > 0 && es.every(isDeleted),
    async run(entries) {
      const results = await pool(entries, 3, (e) => restoreDeleted(e.path_display));
      const bad = results.filter((r) => r && r.error);
      emit("refresh");
      if (bad.length) {
        report(`Restored ${entries.length - bad.length} of ${entries.length}. ${api.describe(bad[0].error)}`, { error: true });
      } else {
        report("Restored " + items(entries.length) + ".");
      }
    },
  },
];
