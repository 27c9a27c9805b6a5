// Uploads: the queue (a module singleton, so it outlives in-app navigation), the panel at
// the bottom right, conflicts, and resumable upload sessions for big files.
//
// Small files (< 8 MiB) go in one files/upload each, several at once. Bigger ones go through
// a concurrent upload session: start, append_v2 of 4 MiB-aligned chunks with IN_FLIGHT of
// them on the wire at once (8 MiB growing to 64 MiB while a chunk takes under 5 s; the last
// chunk closes the session), and finish at the file's length. One request at a time leaves
// the browser's upload path idle between chunks; two keep it busy. The acknowledged ranges of
// each session are kept in IndexedDB, keyed by account, destination, relative path, size and
// lastModified, so a lost connection or a reload followed by picking the same file again
// sends only the chunks the server has not acknowledged.
//
// Nothing is ever overwritten unless the person chose "Replace": other uploads use mode add
// without autorename, so a file created meanwhile ends as a conflict in the panel.

import * as api from "./api.js";
import * as ui from "./ui.js";

const MiB = 1024 * 1024;
const SMALL = 8 * MiB;
const CHUNK_MIN = 8 * MiB;
const CHUNK_MAX = 64 * MiB;
const IN_FLIGHT = 2;
const FAST_MS = 5000;
const MAX_RUNNING = 5;
const MAX_BIG = 2;
const KEEP_MS = 7 * 24 * 3600 * 1000;
const MAX_TRIES = 8;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// Session cursors in IndexedDB (a Map when IndexedDB is unavailable).

const memory = new Map();
let dbPromise = null;
function db() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve) => {
      try {
        const req = indexedDB.open("cubby-uploads", 1);
        req.onupgradeneeded = () => req.result.createObjectStore("sessions");
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => resolve(null);
      } catch {
        resolve(null);
      }
    }).then((d) => {
      if (d) prune(d);
      return d;
    });
  }
  return dbPromise;
}

function tx(d, mode, fn) {
  return new Promise((resolve) => {
    try {
      const t = d.transaction("sessions", mode);
      const r = fn(t.objectStore("sessions"));
      t.oncomplete = () => resolve(r && r.result);
      t.onerror = t.onabort = () => resolve(undefined);
    } catch {
      resolve(undefined);
    }
  });
}

async function saved(key) {
  const d = await db();
  const v = d ? await tx(d, "readonly", (s) => s.get(key)) : memory.get(key);
  return v && Date.now() - v.updated < KEEP_MS ? v : null;
}

async function save(key, ses, it) {
  const done = ses.done.map((r) => [r[0], r[1]]);
  const v = { session_id: ses.id, done, updated: Date.now(), key, dest: it.dest, rel: it.rel };
  const d = await db();
  if (d) await tx(d, "readwrite", (s) => s.put(v, key));
  else memory.set(key, v);
}

async function forget(key) {
  const d = await db();
  if (d) await tx(d, "readwrite", (s) => s.delete(key));
  else memory.delete(key);
}

/** Drops cursors older than 7 days: the server has let those sessions go. */
function prune(d) {
  tx(d, "readwrite", (s) => {
    const c = s.openCursor();
    c.onsuccess = () => {
      const cur = c.result;
      if (!cur) return;
      if (!cur.value || Date.now() - cur.value.updated >= KEEP_MS) cur.delete();
      cur.continue();
    };
  });
}

/** After a reload: tells of the uploads that can continue when their files are picked again. */
async function interrupted() {
  const d = await db();
  if (!d || !api.account) return;
  const all = (await tx(d, "readonly", (s) => s.getAll())) || [];
  const mine = all.filter((v) => v && v.key && v.key.startsWith(api.account.account_id + "|") && v.rel);
  if (!mine.length || isActive()) return;
  const where = (v) => (v.dest ? ui.baseName(v.dest) : "your top folder");
  const text = mine.length === 1
    ? `The upload of ${ui.baseName(mine[0].rel)} to ${where(mine[0])} was interrupted. Upload the same file there again to continue where it stopped.`
    : `${mine.length} uploads were interrupted. Upload the same files to the same folders again to continue where they stopped.`;
  ui.toast(text, { action: "Forget", onAction: () => mine.forEach((v) => forget(v.key)), timeout: 15000 });
}
setTimeout(interrupted, 1500);

// ---------------------------------------------------------------------------------------
// Choosing files.

function picker(destPath, folder) {
  const input = ui.el("input", { type: "file", multiple: true, class: "up-input", tabindex: "-1", "aria-hidden": "true" });
  if (folder) input.webkitdirectory = true;
  const done = () => input.remove();
  input.addEventListener("change", () => {
    const items = [...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
    done();
    if (items.length) uploadFiles(items, destPath);
  });
  input.addEventListener("cancel", done);
  document.body.append(input);
  input.click();
}

/** Opens the file chooser; the chosen files are uploaded into `destPath` ("" is the root). */
export function pickFiles(destPath) {
  picker(destPath, false);
}

/** Opens the folder chooser; the folder is uploaded, with its tree, into `destPath`. */
export function pickFolder(destPath) {
  picker(destPath, true);
}

function readAll(reader) {
  return new Promise((resolve, reject) => {
    const out = [];
    const next = () =>
      reader.readEntries((batch) => {
        if (!batch.length) return resolve(out);
        out.push(...batch);
        next();
      }, reject);
    next();
  });
}

async function walk(entry, prefix, out) {
  const path = prefix + entry.name;
  if (entry.isFile) {
    try {
      const file = await new Promise((res, rej) => entry.file(res, rej));
      out.push({ file, path });
    } catch {
      /* unreadable: a broken link or a vanished file */
    }
    return;
  }
  if (!entry.isDirectory) return;
  const children = await readAll(entry.createReader());
  if (!children.length) out.push({ dir: true, path });
  for (const c of children) await walk(c, path + "/", out);
}

/**
 * The files and folders of a drop: [{file, path}] with `path` relative ("a/b.txt"), and
 * {dir: true, path} for empty folders. Reads the entries before the event ends.
 */
export async function filesFromDrop(dt) {
  const items = dt.items ? [...dt.items].filter((i) => i.kind === "file") : [];
  const entries = items.map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  const plain = items.map((i) => i.getAsFile());
  if (!items.length) return [...(dt.files || [])].map((file) => ({ file, path: file.name }));
  const out = [];
  for (let i = 0; i < items.length; i++) {
    if (entries[i]) await walk(entries[i], "", out);
    else if (plain[i]) out.push({ file: plain[i], path: plain[i].name });
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The queue.

/** Every upload the panel shows: {id, file, rel, dest, target, size, state, sent, …}. */
const queue = [];
let nextId = 1;
let running = 0;
let runningBig = 0;

const join = (a, b) => (a ? a.replace(/\/+$/, "") + "/" + b : "/" + b);
const active = (it) => it.state === "queued" || it.state === "uploading" || it.state === "checking";
const isActive = () => queue.some(active);

/** The ISO form Dropbox accepts for client_modified: seconds, "Z". */
function isoSeconds(ms) {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/** Queues `items` ([{file, path}] or {dir: true, path}) for upload into `destPath`. */
export async function uploadFiles(items, destPath = "") {
  destPath = destPath && destPath !== "/" ? "/" + destPath.replace(/^\/+|\/+$/g, "") : "";
  const files = [];
  const dirs = new Set();
  for (const x of items) {
    const rel = String(x.path || (x.file && x.file.name) || "").replace(/^\/+|\/+$/g, "");
    if (!rel) continue;
    const parts = rel.split("/");
    const top = x.dir ? parts.length : parts.length - 1;
    for (let i = 1; i <= top; i++) dirs.add(parts.slice(0, i).join("/"));
    if (x.dir || !x.file) continue;
    const it = {
      id: nextId++,
      file: x.file,
      rel,
      dest: destPath,
      target: join(destPath, rel),
      size: x.file.size,
      state: "checking",
      sent: 0,
      mode: "add",
      autorename: false,
      error: "",
    };
    files.push(it);
  }
  if (!files.length && !dirs.size) return;
  queue.push(...files);
  if (files.length) {
    idle = false;
    panel.show(files);
    ui.announce(files.length === 1 ? `Uploading ${files[0].file.name}.` : `Uploading ${files.length} files.`);
  }
  await makeFolders(destPath, dirs);
  const clashes = await findClashes(files);
  for (const it of files) {
    if (it.state !== "checking") continue;
    it.state = clashes.has(it) ? "conflict" : "queued";
    panel.dirty(it);
  }
  pump();
  if (clashes.size) {
    const mine = [...clashes];
    deciding = deciding.then(() => decide(mine));
    await deciding;
  }
  pump();
}

/** One conflict dialog at a time, batch after batch. */
let deciding = Promise.resolve();

/** Creates the folders of a batch first (so files never land elsewhere), the deepest only. */
async function makeFolders(destPath, dirs) {
  const parents = new Set();
  for (const d of dirs) {
    for (let i = d.indexOf("/"); i > 0; i = d.indexOf("/", i + 1)) parents.add(d.slice(0, i));
  }
  const leaves = [...dirs].filter((d) => !parents.has(d));
  for (let i = 0; i < leaves.length; i += 1000) {
    const paths = leaves.slice(i, i + 1000).map((d) => join(destPath, d));
    try {
      const launch = await api.rpc("files/create_folder_batch", { paths, autorename: false });
      const r = await api.settle("files/create_folder_batch/check", launch);
      for (const e of r.entries || []) {
        if (e[".tag"] === "success" && e.metadata) ui.emit("upload-done", { entry: e.metadata });
      }
    } catch {
      // Each file's upload creates its parents anyway, and reports its own failure.
    }
  }
}

/** The items whose target already exists (one listing per folder, get_metadata for one). */
async function findClashes(files) {
  const byParent = new Map();
  for (const it of files) {
    const p = ui.parentOf(it.target);
    if (!byParent.has(p)) byParent.set(p, []);
    byParent.get(p).push(it);
  }
  const clashes = new Set();
  const jobs = [...byParent.entries()];
  const work = async () => {
    for (let job; (job = jobs.shift()); ) {
      const [parent, its] = job;
      try {
        if (its.length === 1) {
          await api.rpc("files/get_metadata", { path: its[0].target });
          clashes.add(its[0]);
          continue;
        }
        const names = new Set();
        await api.listAll({ path: parent }, (entries) => entries.forEach((e) => names.add(e.name.toLowerCase())));
        for (const it of its) if (names.has(ui.baseName(it.target).toLowerCase())) clashes.add(it);
      } catch {
        // not_found: nothing there yet. Other failures: the add mode still refuses to overwrite.
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(6, jobs.length) }, work));
  return clashes;
}

/** Asks what to do with the clashing items: one dialog for all of them unless unticked. */
async function decide(items) {
  let left = items.filter((it) => it.state === "conflict");
  while (left.length) {
    const first = left[0];
    const many = left.length > 1;
    const all = ui.el("input", { type: "checkbox", checked: true });
    const body = [
      ui.el(
        "p",
        {},
        ui.nameNode(ui.baseName(first.target)),
        many ? ` and ${left.length - 1} more already exist here.` : " already exists here.",
      ),
    ];
    if (many) body.push(ui.el("label", { class: "up-all" }, all, " Apply to all " + left.length + " files"));
    const choice = await ui.dialog(
      many ? "Files already exist" : "A file already exists",
      body,
      [
        { label: "Skip", value: "skip" },
        { label: "Replace", value: "replace", danger: true },
        { label: "Keep both", value: "keep", primary: true },
      ],
      { class: "up-dialog" },
    );
    const these = !many || all.checked ? left : [first];
    for (const it of these) {
      if (it.state !== "conflict") continue;
      resolveConflict(it, choice || "skip");
    }
    left = left.filter((it) => it.state === "conflict");
    pump();
  }
}

function resolveConflict(it, choice) {
  if (choice === "skip") {
    it.state = "skipped";
  } else {
    it.mode = choice === "replace" ? "overwrite" : "add";
    it.autorename = choice === "keep";
    it.state = "queued";
    it.error = "";
  }
  panel.dirty(it);
}

/**
 * Starts queued uploads while requests are free: a big file takes IN_FLIGHT of the
 * MAX_RUNNING, which leaves a connection of HTTP/1.1's six per server to the rest of the app.
 */
function pump() {
  for (const it of queue) {
    if (running >= MAX_RUNNING) break;
    if (it.state !== "queued") continue;
    const big = it.size >= SMALL;
    if (big && runningBig >= MAX_BIG) continue;
    const need = big ? IN_FLIGHT : 1;
    if (running + need > MAX_RUNNING) break;
    running += need;
    if (big) runningBig++;
    run(it, big).finally(() => {
      running -= need;
      if (big) runningBig--;
      pump();
      panel.dirty(it);
      if (!isActive()) finished();
    });
  }
}

async function run(it, big) {
  idle = false;
  it.state = "uploading";
  it.sent = 0;
  it.ctrl = new AbortController();
  panel.dirty(it);
  try {
    const entry = big ? await session(it) : await single(it);
    if (entry.size !== it.size) {
      throw Object.assign(new Error(`The server stored ${ui.formatSize(entry.size)} of ${ui.formatSize(it.size)}.`), { sizeMismatch: true });
    }
    it.state = "done";
    it.entry = entry;
    it.sent = it.size;
    ui.emit("upload-done", { entry });
  } catch (e) {
    fullTag(e);
    if (it.state === "cancelled" || (e && e.name === "AbortError")) {
      it.state = "cancelled";
      it.sent = 0;
      return;
    }
    const conflict = e instanceof api.ApiError && e.status === 409 && /(^|\/)conflict(\/|$)/.test(e.tag);
    it.state = conflict ? "conflict" : "failed";
    it.error = e && e.sizeMismatch ? e.message : api.describe(e);
    ui.announce(`Upload of ${it.file.name} failed: ${it.error}`);
  }
}

function commit(it) {
  return {
    path: it.target,
    mode: { ".tag": it.mode },
    autorename: it.autorename,
    strict_conflict: it.autorename,
    client_modified: isoSeconds(it.file.lastModified || Date.now()),
  };
}

/**
 * An upload error with its full tag: UploadError's `path` variant carries its WriteError in
 * `reason`, where api.tagPath does not look ("path" → "path/conflict/file").
 */
function fullTag(e) {
  const u = e instanceof api.ApiError && e.error;
  if (u && u[".tag"] === "path" && !(u.path && u.path[".tag"])) {
    const reason = u.reason || (u.path && u.path.reason);
    if (reason) e.tag = "path/" + api.tagPath(reason);
  }
  return e;
}

/** Worth another try: no answer at all, a 429 or a server error. */
const transient = (e) => !(e instanceof api.ApiError) ? e && e.name !== "AbortError" : e.status === 429 || e.status >= 500;

/** Waits before the `n`th retry: 1 s doubling to 20 s, or as a 429 asks; and until online. */
async function pause(it, e, n, signal = it.ctrl.signal) {
  const ms = e && e.retryAfter ? e.retryAfter * 1000 : Math.min(1000 * 2 ** n, 20000);
  const why = !(e instanceof api.ApiError) ? "Connection lost" : e.status === 429 ? "The server is busy" : "Server error";
  it.note = why + "; retrying…";
  panel.dirty(it);
  await Promise.race([sleep(ms), aborted(signal)]);
  if (!navigator.onLine) {
    await Promise.race([new Promise((r) => addEventListener("online", r, { once: true })), aborted(signal)]);
  }
  it.note = "";
  if (signal.aborted) throw new DOMException("Cancelled", "AbortError");
}

const aborted = (signal) => new Promise((r) => signal.addEventListener("abort", r, { once: true }));

async function single(it) {
  for (let n = 0; ; n++) {
    try {
      return await api.upload("files/upload", commit(it), it.file, {
        signal: it.ctrl.signal,
        onprogress: (b) => progress(it, b),
      });
    } catch (e) {
      if (!transient(e) || n >= MAX_TRIES - 1) throw e;
      it.sent = 0;
      await pause(it, e, n);
    }
  }
}

/** Adds [a, b) to `ranges`, sorted and merged. */
function addRange(ranges, a, b) {
  const all = [...ranges, [a, b]].sort((x, y) => x[0] - y[0]);
  const out = [];
  for (const [x, y] of all) {
    const last = out[out.length - 1];
    if (last && x <= last[1]) last[1] = Math.max(last[1], y);
    else out.push([x, y]);
  }
  ranges.splice(0, ranges.length, ...out);
}

const covered = (ranges) => ranges.reduce((n, [a, b]) => n + b - a, 0);

/** The first chunk of at most `len` bytes that no range of `taken` holds: [a, b], or null. */
function nextChunk(taken, len, size) {
  let a = 0;
  let end = size;
  for (const [x, y] of [...taken].sort((p, q) => p[0] - q[0])) {
    if (x <= a) a = Math.max(a, y);
    else {
      end = x;
      break;
    }
  }
  return a < size ? [a, Math.min(a + len, end, size)] : null;
}

const tagIs = (e, re) => e instanceof api.ApiError && re.test(e.tag || "");

/**
 * A big file through a concurrent session. The server takes the 4 MiB-aligned chunks in any
 * order and a chunk again at an offset it holds (a retry after a lost reply replaces it); the
 * closing chunk sent again is answered `closed`, which only says the first try got there.
 */
async function session(it) {
  const file = it.file;
  const key = [api.account.account_id, it.dest, it.rel, it.size, file.lastModified].join("|");
  it.key = key;
  const signal = it.ctrl.signal;
  let rec = await saved(key);
  if (rec && !Array.isArray(rec.done)) {
    // A sequential cursor from an older version of this page: start over.
    await forget(key);
    rec = null;
  }
  let ses = rec ? { id: rec.session_id, done: rec.done } : null;
  it.sent = ses ? covered(ses.done) : 0;
  let fails = 0;
  let finishing = false;
  let sending = false;
  for (;;) {
    try {
      finishing = false;
      if (!ses) {
        const arg = { close: false, session_type: { ".tag": "concurrent" } };
        const r = await api.upload("files/upload_session/start", arg, null, { signal });
        ses = { id: r.session_id, done: [] };
        await save(key, ses, it);
      }
      sending = true;
      await chunks(it, ses, signal);
      sending = false;
      finishing = true;
      const entry = await api.upload(
        "files/upload_session/finish",
        { cursor: { session_id: ses.id, offset: it.size }, commit: commit(it) },
        null,
        { signal },
      );
      await forget(key);
      return entry;
    } catch (e) {
      if (signal.aborted) throw e;
      const fromChunks = sending;
      sending = false;
      const gone = tagIs(e, /(^|\/)not_found$/) && /lookup_failed|^not_found/.test(e.tag);
      if (gone && finishing && fails > 0) {
        // A finish whose reply was lost: the file may well be there.
        const m = await api.rpc("files/get_metadata", { path: it.target }).catch(() => null);
        if (m && m.size === it.size && m.client_modified === commit(it).client_modified) {
          await forget(key);
          return m;
        }
      }
      // The session is gone (expired, or finished elsewhere), or the server lacks a piece the
      // record says it has (a record from another session's era): start over.
      const lost = gone || (finishing && tagIs(e, /concurrent_session_(missing_data|not_closed)|incorrect_offset/));
      if (lost && fails < MAX_TRIES) {
        ses = null;
        it.sent = 0;
        fails++;
        await forget(key);
        continue;
      }
      // A chunk's failure has had its own retries.
      if (fromChunks || !transient(e) || fails >= MAX_TRIES - 1) throw e;
      await pause(it, e, fails++);
    }
  }
}

/**
 * Sends the chunks the server has not acknowledged, IN_FLIGHT at a time, each with its own
 * retries; records each acknowledged one. The first failure that is not worth retrying stops
 * the others and is thrown.
 */
async function chunks(it, ses, signal) {
  const size = it.size;
  const flying = new Map();
  const ctrl = new AbortController();
  const stop = () => ctrl.abort();
  signal.addEventListener("abort", stop, { once: true });
  let chunk = CHUNK_MIN;
  let failure = null;
  const show = () => {
    let n = covered(ses.done);
    for (const f of flying.values()) n += f.sent;
    progress(it, n);
  };
  const send = async (a, b, f) => {
    const close = b === size;
    for (let n = 0; ; n++) {
      try {
        await api.upload(
          "files/upload_session/append_v2",
          { cursor: { session_id: ses.id, offset: a }, close },
          it.file.slice(a, b),
          { signal: ctrl.signal, onprogress: (x) => ((f.sent = x), show()) },
        );
        return;
      } catch (e) {
        f.sent = 0;
        if (ctrl.signal.aborted) throw e;
        // Our closing chunk, already in (a lost reply, or a record saved too late).
        if (close && tagIs(e, /(^|\/)closed$/)) return;
        if (!transient(e) || n >= MAX_TRIES - 1) throw e;
        await pause(it, e, n, ctrl.signal);
      }
    }
  };
  const worker = async () => {
    while (!failure) {
      const next = nextChunk([...ses.done, ...[...flying.values()].map((f) => f.range)], chunk, size);
      if (!next) return;
      const [a, b] = next;
      const f = { range: next, sent: 0 };
      flying.set(a, f);
      const t0 = performance.now();
      try {
        await send(a, b, f);
        addRange(ses.done, a, b);
        await save(it.key, ses, it);
      } catch (e) {
        if (!failure) failure = e;
        ctrl.abort();
        return;
      } finally {
        flying.delete(a);
        show();
      }
      const took = performance.now() - t0;
      if (took < FAST_MS && b - a === chunk) chunk = Math.min(chunk * 2, CHUNK_MAX);
      else if (took > 3 * FAST_MS) chunk = Math.max(chunk / 2, CHUNK_MIN);
    }
  };
  try {
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  } finally {
    signal.removeEventListener("abort", stop);
  }
  if (failure) throw failure;
}

function progress(it, bytes) {
  it.sent = Math.min(bytes, it.size);
  panel.dirty(it);
}

function cancel(it) {
  if (!active(it) && it.state !== "conflict") return;
  it.state = "cancelled";
  it.sent = 0;
  if (it.ctrl) it.ctrl.abort();
  if (it.key) forget(it.key);
  panel.dirty(it);
  if (!isActive()) finished();
}

function cancelAll() {
  for (const it of queue) cancel(it);
  ui.announce("Uploads cancelled.");
}

function retry(it, choice) {
  if (choice) resolveConflict(it, choice);
  else {
    it.state = "queued";
    it.error = "";
    panel.dirty(it);
  }
  pump();
}

/** True once the queue's end has been announced. */
let idle = true;

function finished() {
  panel.dirty();
  if (idle) return;
  idle = true;
  const done = queue.filter((it) => it.state === "done").length;
  const failed = queue.filter((it) => it.state === "failed" || it.state === "conflict").length;
  if (!done && !failed) return;
  ui.announce(failed ? `Uploads finished: ${done} uploaded, ${failed} not uploaded.` : `Upload complete: ${done} ${done === 1 ? "file" : "files"} uploaded.`);
}

addEventListener("beforeunload", (e) => {
  if (isActive()) {
    e.preventDefault();
    e.returnValue = "Uploads are still in progress.";
  }
});

// ---------------------------------------------------------------------------------------
// The panel.

const STATE_WORDS = {
  checking: "Checking…",
  queued: "Queued",
  uploading: "Uploading",
  conflict: "Already exists",
  done: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
  skipped: "Skipped",
};

function timeLeft(s) {
  if (!isFinite(s) || s <= 0) return "";
  if (s < 60) return `${Math.ceil(s)} s left`;
  if (s < 3600) return `${Math.ceil(s / 60)} min left`;
  return `${Math.floor(s / 3600)} h ${Math.ceil((s % 3600) / 60)} min left`;
}

function bar(label) {
  const fill = ui.el("div", { class: "up-fill" });
  const b = ui.el("div", { class: "up-bar", role: "progressbar", "aria-label": label, "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0" }, fill);
  b.set = (pct) => {
    const v = Math.max(0, Math.min(100, Math.floor(pct)));
    if (b.getAttribute("aria-valuenow") !== String(v)) {
      b.setAttribute("aria-valuenow", String(v));
      // A transform, not a width: the compositor redraws it without a layout, and with no
      // transition no frame is drawn between updates (an animated width cost the browser
      // about a tenth of its CPU during a large upload).
      fill.style.transform = `scaleX(${v / 100})`;
    }
  };
  return b;
}

const panel = {
  root: null,
  open: true,
  dirtySet: new Set(),
  timer: 0,
  samples: [],
  speed: 0,

  build() {
    const title = ui.el("h2", { class: "up-title", id: "up-title" });
    this.toggle = ui.el("button", { type: "button", class: "btn link up-toggle", "aria-expanded": "true", "aria-controls": "up-body", onclick: () => this.setOpen(!this.open) }, "Hide uploads");
    this.close = ui.el("button", { type: "button", class: "btn link up-close", onclick: () => this.clear() }, "Close");
    this.total = bar("Total upload progress");
    this.stats = ui.el("p", { class: "up-stats" });
    this.cancelAll = ui.el("button", { type: "button", class: "btn up-cancel-all", onclick: cancelAll }, "Cancel all");
    this.list = ui.el("ul", { class: "up-list", "aria-label": "Files" });
    this.body = ui.el("div", { class: "up-body", id: "up-body" }, ui.el("div", { class: "up-summary" }, this.stats, this.cancelAll), this.list);
    this.root = ui.el(
      "section",
      { class: "up-panel", "aria-labelledby": "up-title" },
      ui.el("div", { class: "up-head" }, title, this.toggle, this.close),
      this.total,
      this.body,
    );
    this.title = title;
    document.body.append(this.root);
    setInterval(() => this.sample(), 500);
  },

  show(items) {
    if (!this.root) this.build();
    this.root.hidden = false;
    for (const it of items) this.row(it);
    this.dirty();
  },

  setOpen(open) {
    this.open = open;
    this.body.hidden = !open;
    this.toggle.textContent = open ? "Hide uploads" : "Show uploads";
    this.toggle.setAttribute("aria-expanded", String(open));
    this.root.classList.toggle("collapsed", !open);
  },

  clear() {
    for (let i = queue.length - 1; i >= 0; i--) {
      if (!active(queue[i])) {
        queue[i].li && queue[i].li.remove();
        queue.splice(i, 1);
      }
    }
    if (!queue.length) this.root.hidden = true;
    this.samples = [];
    this.dirty();
  },

  row(it) {
    const name = ui.baseName(it.target);
    const label = it.rel;
    const status = ui.el("span", { class: "up-status" });
    const pbar = bar("Upload of " + name);
    const buttons = ui.el("span", { class: "up-buttons" });
    const nameBox = ui.el("span", { class: "up-name", title: label }, ui.nameNode(label));
    it.li = ui.el("li", { class: "up-item" }, ui.el("div", { class: "up-line" }, nameBox, buttons), ui.el("div", { class: "up-line" }, status), pbar);
    Object.assign(it, { status, pbar, buttons, nameBox, shown: "" });
    this.list.append(it.li);
  },

  dirty(it) {
    if (it) this.dirtySet.add(it);
    if (!this.timer) this.timer = setTimeout(() => this.render(), 100);
  },

  sample() {
    const now = performance.now();
    const bytes = queue.reduce((s, it) => s + (it.state === "uploading" || it.state === "done" ? it.sent : 0), 0);
    this.samples.push({ now, bytes });
    while (this.samples.length > 12) this.samples.shift();
    const a = this.samples[0];
    const rate = now > a.now ? ((bytes - a.bytes) * 1000) / (now - a.now) : 0;
    this.speed = Math.max(0, rate);
    if (isActive()) this.dirty();
  },

  render() {
    this.timer = 0;
    if (!this.root) return;
    for (const it of this.dirtySet) this.renderItem(it);
    this.dirtySet.clear();
    const counted = queue.filter((it) => it.state !== "cancelled" && it.state !== "skipped");
    const total = counted.reduce((s, it) => s + it.size, 0);
    const sent = counted.reduce((s, it) => s + (it.state === "done" ? it.size : it.sent), 0);
    const n = (st) => counted.filter((it) => it.state === st).length;
    const busy = isActive();
    const pct = total ? (sent * 100) / total : counted.length && n("done") === counted.length ? 100 : 0;
    const failed = n("failed") + n("conflict");
    this.total.set(pct);
    if (busy) {
      const left = queue.filter(active).length;
      this.title.textContent = `Uploading ${left} ${left === 1 ? "file" : "files"}`;
    } else if (failed) {
      this.title.textContent = `${n("done")} of ${counted.length} uploaded`;
    } else {
      this.title.textContent = n("done") ? `${n("done")} uploaded` : "Uploads";
    }
    const parts = [`${Math.floor(pct)}%`, `${ui.formatSize(sent)} of ${ui.formatSize(total)}`];
    if (busy && this.speed > 0) {
      parts.push(ui.formatSize(Math.round(this.speed)) + "/s");
      parts.push(timeLeft((total - sent) / this.speed));
    }
    // Each part stays on one line; lines break only between parts.
    this.stats.textContent = parts.filter(Boolean).map((p) => p.replace(/ /g, "\u00a0")).join(" · ");
    this.cancelAll.hidden = !busy;
    this.close.hidden = busy;
    this.root.classList.toggle("busy", busy);
  },

  renderItem(it) {
    if (!it.li) return;
    const pct = it.size ? (it.sent * 100) / it.size : it.state === "done" ? 100 : 0;
    it.pbar.set(it.state === "done" ? 100 : pct);
    it.pbar.hidden = it.state !== "uploading";
    it.li.dataset.state = it.state;
    let text = STATE_WORDS[it.state];
    if (it.state === "uploading") text = it.note || `${ui.formatSize(it.sent)} of ${ui.formatSize(it.size)}`;
    if (it.state === "queued" || it.state === "checking") text += " · " + ui.formatSize(it.size);
    if (it.state === "failed" || (it.state === "conflict" && it.error)) text += ": " + it.error;
    if (it.state === "done" && it.entry && it.entry.name !== ui.baseName(it.target)) text = "Saved as " + it.entry.name;
    it.status.textContent = text;
    const key = it.state + "|" + (it.entry ? it.entry.path_display : "");
    if (it.shown === key) return;
    it.shown = key;
    const name = ui.baseName(it.target);
    const b = [];
    if (it.state === "done" && it.entry) {
      const parent = ui.parentOf(it.entry.path_display);
      const a = ui.el("a", { href: ui.folderUrl(parent), class: "up-link", title: "Open " + (parent || "the top folder") }, ui.nameNode(it.rel));
      a.addEventListener("click", (e) => {
        if (e.button || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        ui.emit("navigate", { path: parent });
      });
      it.nameBox.replaceChildren(a);
    } else {
      it.nameBox.replaceChildren(ui.nameNode(it.rel));
    }
    if (it.state === "failed") b.push(ui.el("button", { type: "button", class: "btn link", onclick: () => retry(it) }, "Retry"));
    if (it.state === "conflict") {
      b.push(ui.el("button", { type: "button", class: "btn link", onclick: () => retry(it, "replace") }, "Replace"));
      b.push(ui.el("button", { type: "button", class: "btn link", onclick: () => retry(it, "keep") }, "Keep both"));
    }
    if (active(it) || it.state === "conflict") {
      b.push(ui.el("button", { type: "button", class: "btn icon up-x", "aria-label": "Cancel upload of " + name, title: "Cancel", onclick: () => cancel(it) }, "×"));
    }
    it.buttons.replaceChildren(...b);
  },
};

/** For tests and the shell: a summary of the queue. */
export function status() {
  return queue.map((it) => ({ path: it.target, state: it.state, sent: it.sent, size: it.size, error: it.error }));
}
