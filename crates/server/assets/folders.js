// Shared folders in the web app: the "People" part of a folder's Share dialog (invite by
// name or e-mail address as an editor or a viewer, change or remove members) and the
// "Shared" page (folders shared with me: open, add to my files, leave).
//
// Security: names and addresses reach the page only through ui.el / ui.nameNode.

import * as api from "./api.js";
import * as ui from "./ui.js";
import { el, emit, nameNode } from "./ui.js";

const tag = (v) => (v && typeof v === "object" ? v[".tag"] : v);
const ROLES = { owner: "Owner", editor: "Can edit", viewer: "Can view" };
const roleName = (level) => ROLES[tag(level)] || tag(level);

/** The shared folder id of a folder's metadata: its own, when it is a mount point. */
export function sharedFolderId(entry) {
  return (entry && entry.sharing_info && entry.sharing_info.shared_folder_id) || entry?.shared_folder_id || null;
}

/** Whether an item sits inside a shared folder (which then decides who has it). */
function insideShared(entry) {
  return !!(entry && entry.sharing_info && entry.sharing_info.parent_shared_folder_id && !sharedFolderId(entry));
}

/**
 * The People section of a folder's Share dialog: the members (the owner first), a form to
 * invite more, and for the owner buttons to change or remove them. Returns the element.
 */
export function peopleSection(entry) {
  let folderId = sharedFolderId(entry);
  let mine = null; // my access level
  const list = el("ul", { class: "people", "aria-label": "People with access" });
  const status = el("p", { class: "share-empty" }, folderId ? "Loading people…" : "Only you have this folder.");
  const err = el("p", { class: "field-error", role: "alert" });
  const who = el("input", {
    type: "text",
    class: "field",
    name: "invite",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "Name or e-mail address",
    "aria-label": "Name or e-mail address",
  });
  const role = el("select", { class: "field role", "aria-label": "Access" },
    el("option", { value: "editor" }, "Can edit"),
    el("option", { value: "viewer" }, "Can view"));
  const invite = el("button", { type: "button", class: "btn", onclick: () => add() }, "Invite");
  const form = el("div", { class: "invite-line" }, who, role, invite);
  who.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      add();
    }
  });

  const row = (m) => {
    const name = m.user.display_name;
    const level = tag(m.access_type);
    const cells = [
      el("span", { class: "person" }, nameNode(name), el("span", { class: "person-mail" }, m.user.email)),
    ];
    const canManage = mine === "owner" && level !== "owner";
    if (canManage) {
      const change = el("select", { class: "field role", "aria-label": "Access of " + name },
        el("option", { value: "editor", selected: level === "editor" }, "Can edit"),
        el("option", { value: "viewer", selected: level === "viewer" }, "Can view"));
      change.addEventListener("change", () => update(m, change.value));
      const remove = el("button", { type: "button", class: "btn", onclick: () => removeMember(m) }, "Remove");
      cells.push(change, remove);
    } else {
      cells.push(el("span", { class: "role-name" }, roleName(m.access_type)));
    }
    return el("li", { class: "person-row" }, ...cells);
  };

  async function load() {
    if (!folderId) return;
    try {
      const [meta, members] = await Promise.all([
        api.rpc("sharing/get_folder_metadata", { shared_folder_id: folderId }),
        api.rpc("sharing/list_folder_members", { shared_folder_id: folderId }),
      ]);
      mine = tag(meta.access_type);
      list.replaceChildren(...members.users.map(row));
      status.textContent = "";
      const policy = tag(meta.policy && meta.policy.acl_update_policy);
      form.hidden = !(mine === "owner" || (mine === "editor" && policy === "editors"));
      if (form.hidden && mine === "viewer") status.textContent = "You can view this folder; its owner decides who else has it.";
    } catch (e) {
      status.textContent = api.describe(e);
    }
  }

  const selector = (text) => {
    const t = text.trim();
    return t.startsWith("dbid:") ? { ".tag": "dropbox_id", dropbox_id: t } : { ".tag": "email", email: t };
  };

  async function add() {
    err.textContent = "";
    const names = who.value.split(/[,;\s]+/).filter(Boolean);
    if (!names.length) {
      err.textContent = "Type a name or an e-mail address.";
      who.focus();
      return;
    }
    invite.disabled = true;
    try {
      if (!folderId) {
        const r = await api.rpc("sharing/share_folder", { path: entry.path_lower });
        const done = tag(r) === "complete" ? r : await api.settle("sharing/check_share_job_status", r);
        folderId = done.shared_folder_id;
        emit("refresh");
      }
      await api.rpc("sharing/add_folder_member", {
        shared_folder_id: folderId,
        members: names.map((n) => ({ member: selector(n), access_level: role.value })),
      });
      who.value = "";
      ui.announce("Invited " + names.join(", ") + ".");
      await load();
    } catch (e) {
      err.textContent = e instanceof api.ApiError && e.tag.includes("bad_member")
        ? "Nobody here is called “" + names.join(", ") + "”. Check the name or address."
        : e instanceof api.ApiError && e.tag.includes("inside_shared_folder")
          ? "This folder is inside a shared folder: invite people to that folder instead."
          : api.describe(e);
    } finally {
      invite.disabled = false;
    }
  }

  async function update(m, level) {
    err.textContent = "";
    try {
      await api.rpc("sharing/update_folder_member", {
        shared_folder_id: folderId,
        member: { ".tag": "dropbox_id", dropbox_id: m.user.account_id },
        access_level: level,
      });
      ui.announce(m.user.display_name + " " + (level === "viewer" ? "can view." : "can edit."));
      await load();
    } catch (e) {
      err.textContent = api.describe(e);
    }
  }

  async function removeMember(m) {
    err.textContent = "";
    try {
      const job = await api.rpc("sharing/remove_folder_member", {
        shared_folder_id: folderId,
        member: { ".tag": "dropbox_id", dropbox_id: m.user.account_id },
        leave_a_copy: false,
      });
      const done = await api.settle("sharing/check_remove_member_job_status", job);
      if (tag(done) === "failed") {
        err.textContent = "That could not be done (" + api.tagPath(done.failed) + ").";
        return;
      }
      ui.announce(m.user.display_name + " no longer has this folder.");
      await load();
    } catch (e) {
      err.textContent = api.describe(e);
    }
  }

  const section = el("section", { class: "share-people", "aria-label": "People" },
    el("h3", { class: "share-heading" }, "People"));
  if (insideShared(entry)) {
    section.append(el("p", { class: "share-empty" },
      "This folder is inside a shared folder; everyone with that folder has it. Share that folder to invite people."));
    return section;
  }
  section.append(list, status, form, err);
  load();
  return section;
}

// ---------------------------------------------------------------------------------------
// The Shared page.

/**
 * The "Shared" page: the folders shared with me. `navigate(path)` opens one in the file
 * list. Returns {element, load}.
 */
export function sharedPage(navigate) {
  const body = el("ul", { class: "shared-list", "aria-label": "Folders shared with you" });
  const status = el("p", { class: "status shared-status" }, "Loading…");
  const element = el("section", { class: "shared-page" },
    el("h2", { class: "page-title" }, "Shared"),
    el("p", { class: "page-lead" }, "Folders you share, and folders people share with you. A folder shared with you appears in your files once you add it."),
    status, body);

  const item = (f) => {
    const mounted = !!f.path_display;
    const owner = (f.owner_display_names || []).join(", ");
    const level = tag(f.access_type);
    const facts = [level === "owner" ? "You own it" : "Shared by " + owner, roleName(f.access_type)];
    if (mounted) facts.push("In your files at " + f.path_display);
    const buttons = [];
    if (mounted) {
      buttons.push(el("a", {
        class: "btn",
        href: ui.folderUrl(f.path_display),
        onclick: (e) => {
          if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
          e.preventDefault();
          navigate(f.path_display);
        },
      }, "Open"));
    } else {
      buttons.push(el("button", { type: "button", class: "btn primary", onclick: () => mount(f) }, "Add to my files"));
    }
    if (level !== "owner") {
      buttons.push(el("button", { type: "button", class: "btn", onclick: () => leave(f) }, "Leave"));
    }
    return el("li", { class: "shared-item" + (mounted ? "" : " waiting") },
      el("div", { class: "shared-name" }, nameNode(f.name), el("span", { class: "shared-facts" }, facts.join(" · "))),
      el("div", { class: "shared-buttons" }, ...buttons));
  };

  async function load() {
    status.textContent = "Loading…";
    try {
      const r = await api.rpc("sharing/list_folders", {});
      const entries = (r.entries || []).slice().sort((a, b) => {
        // Waiting invitations first, then by name.
        const wa = a.path_display ? 1 : 0;
        const wb = b.path_display ? 1 : 0;
        return wa - wb || ui.collator.compare(a.name, b.name);
      });
      body.replaceChildren(...entries.map(item));
      const waiting = entries.filter((f) => !f.path_display).length;
      status.textContent = entries.length
        ? entries.length + (entries.length === 1 ? " folder" : " folders") + (waiting ? " · " + waiting + " waiting for you to add" : "")
        : "Nothing is shared yet. To share a folder, select it in your files and choose Share.";
    } catch (e) {
      status.textContent = api.describe(e);
    }
  }

  async function mount(f) {
    try {
      const m = await api.rpc("sharing/mount_folder", { shared_folder_id: f.shared_folder_id });
      ui.toast("Added “" + f.name + "” to your files" + (m.path_display ? " at " + m.path_display : "") + ".");
      await load();
    } catch (e) {
      ui.toast(e instanceof api.ApiError && e.tag.includes("insufficient_quota")
        ? "There is not enough space in your account for this folder."
        : api.describe(e), { error: true });
    }
  }

  async function leave(f) {
    const ok = await ui.confirm("Leave “" + f.name + "”?",
      "It leaves your files, and you will need a new invitation to get it back. Its owner and other members keep it.",
      "Leave", true);
    if (!ok) return;
    try {
      await api.rpc("sharing/relinquish_folder_membership", { shared_folder_id: f.shared_folder_id, leave_a_copy: false });
      ui.toast("You left “" + f.name + "”.");
      await load();
    } catch (e) {
      ui.toast(api.describe(e), { error: true });
    }
  }

  return { element, load };
}
