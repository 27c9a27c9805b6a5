// The web app's client of Cubby's Dropbox API v2 (/2/ routes), like any other app.
//
// The credential is the sign-in session: the HttpOnly cookie goes with every request, and
// each call carries the session's CSRF token in X-Cubby-CSRF (read once from the shell's
// JSON configuration). No token is ever stored by this code.

const config = JSON.parse(document.getElementById("cubby-config").textContent);

/** The signed-in person: {name, email, account_id}. */
export const account = config.account;
const csrf = config.csrf;

/** The app's icon under its content-hashed name. */
export const iconUrl = config.icon;

/** The token forms of the account page need too (for sign out). */
export const csrfToken = csrf;

/** An API failure: `status` (HTTP), `tag` (e.g. "path/not_found"), `error` (the union). */
export class ApiError extends Error {
  constructor(status, message, error, tag) {
    super(message);
    this.status = status;
    this.error = error;
    this.tag = tag || "";
  }
}

/** Turns a JSON string into one safe in an HTTP header: every non-ASCII char as \uXXXX. */
export function headerSafe(json) {
  return json.replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

/**
 * The tag path of a Dropbox error union: {".tag":"path","path":{".tag":"not_found"}} →
 * "path/not_found"; {".tag":"path","reason":{".tag":"conflict",…}} → "path/conflict/…".
 */
export function tagPath(error) {
  const parts = [];
  let e = error;
  while (e && typeof e === "object" && e[".tag"]) {
    const t = e[".tag"];
    parts.push(t);
    // A write failure keeps its reason beside the tag: {".tag":"path","reason":{…}}.
    e = e[t] !== undefined ? e[t] : e.reason;
  }
  return parts.join("/");
}

const WORDS = {
  not_found: "It no longer exists.",
  conflict: "Something with that name is already there.",
  no_write_permission: "You may not change this.",
  insufficient_space: "Your storage is full.",
  disallowed_name: "That name is not allowed.",
  malformed_path: "That name or path is not valid.",
  cant_move_folder_into_itself: "A folder cannot go inside itself.",
  too_many_files: "Too many files at once.",
  not_file: "That is a folder, not a file.",
  not_folder: "That is a file, not a folder.",
  shared_link_already_exists: "A link already exists.",
  too_large: "It is too large.",
  expired: "It has expired.",
};

/** A sentence for a failure, for people. */
export function describe(err) {
  if (!(err instanceof ApiError)) {
    if (err && err.name === "AbortError") return "Cancelled.";
    return "The server could not be reached. Check the connection and try again.";
  }
  if (err.status === 409) {
    const leaf = err.tag.split("/").filter(Boolean);
    for (let i = leaf.length - 1; i >= 0; i--) {
      if (WORDS[leaf[i]]) return WORDS[leaf[i]];
    }
    return "It could not be done (" + err.tag + ").";
  }
  if (err.status === 429) return "The server is busy. Try again in a moment.";
  if (err.status === 507) return "The server's disk is full.";
  return err.message || "Something went wrong (" + err.status + ").";
}

function signedOut() {
  const here = location.pathname + location.search;
  location.assign("/login?next=" + encodeURIComponent(here));
}

async function failure(resp) {
  const text = await resp.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* plain text error */
  }
  if (resp.status === 401) signedOut();
  if (body && body.error !== undefined) {
    return new ApiError(resp.status, body.error_summary || text, body.error, tagPath(body.error));
  }
  return new ApiError(resp.status, text.trim() || resp.statusText, null, "");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits as a 429 asks (Retry-After), at most 20 s; true if it is worth retrying. */
async function backoff(resp, attempt) {
  if (resp.status !== 429 || attempt >= 5) return false;
  const after = Number(resp.headers.get("Retry-After")) || 2 ** attempt;
  await sleep(Math.min(after, 20) * 1000);
  return true;
}

/** An RPC route: JSON in, JSON out. `opts.signal` cancels. */
export async function rpc(route, arg, opts = {}) {
  for (let attempt = 0; ; attempt++) {
    const resp = await fetch("/2/" + route, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Cubby-CSRF": csrf },
      body: arg === undefined || arg === null ? "null" : JSON.stringify(arg),
      signal: opts.signal,
      credentials: "same-origin",
    });
    if (resp.ok) {
      const t = await resp.text();
      return t ? JSON.parse(t) : null;
    }
    if (await backoff(resp, attempt)) continue;
    throw await failure(resp);
  }
}

/**
 * An upload route (`files/upload`, `files/upload_session/*`): the argument in
 * Dropbox-API-Arg, `body` (a Blob or null) as the request body. XMLHttpRequest, since fetch
 * reports no upload progress: `opts.onprogress(loadedBytes)`, `opts.signal` cancels.
 */
export function upload(route, arg, body, opts = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/2/" + route);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Dropbox-API-Arg", headerSafe(JSON.stringify(arg)));
    xhr.setRequestHeader("X-Cubby-CSRF", csrf);
    xhr.responseType = "text";
    if (opts.onprogress) {
      xhr.upload.onprogress = (e) => opts.onprogress(e.loaded);
    }
    const abort = () => xhr.abort();
    if (opts.signal) {
      if (opts.signal.aborted) {
        reject(new DOMException("Cancelled", "AbortError"));
        return;
      }
      opts.signal.addEventListener("abort", abort, { once: true });
    }
    const done = () => opts.signal && opts.signal.removeEventListener("abort", abort);
    xhr.onload = async () => {
      done();
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(xhr.responseText ? JSON.parse(xhr.responseText) : null);
        return;
      }
      const resp = new Response(xhr.responseText, {
        status: xhr.status,
        headers: { "Retry-After": xhr.getResponseHeader("Retry-After") || "" },
      });
      const err = await failure(resp);
      err.retryAfter = Number(xhr.getResponseHeader("Retry-After")) || 0;
      reject(err);
    };
    xhr.onerror = () => {
      done();
      reject(new TypeError("network error"));
    };
    xhr.onabort = () => {
      done();
      reject(new DOMException("Cancelled", "AbortError"));
    };
    xhr.send(body === null || body === undefined ? new Blob([]) : body);
  });
}

/**
 * A download route's result and body, by POST with Dropbox-API-Arg: {result, blob}. For
 * small things (text previews); big files go through `contentUrl` and the browser.
 */
export async function download(route, arg, opts = {}) {
  const resp = await fetch("/2/" + route, {
    method: "POST",
    headers: { "Dropbox-API-Arg": headerSafe(JSON.stringify(arg)), "X-Cubby-CSRF": csrf },
    signal: opts.signal,
    credentials: "same-origin",
  });
  if (!resp.ok) throw await failure(resp);
  const result = JSON.parse(resp.headers.get("Dropbox-API-Result") || "null");
  return { result, resp };
}

/**
 * A same-origin GET URL of a download route (`files/download`, `files/download_zip`,
 * `files/get_thumbnail_v2`): usable in <a href download>, <img src>, <video src>. The cookie
 * alone authorises such a read.
 */
export function contentUrl(route, arg) {
  return "/2/" + route + "?arg=" + encodeURIComponent(JSON.stringify(arg));
}

/** Every entry of a folder, page by page (`list_folder` + `continue`): `onPage(entries, hasMore)`. */
export async function listAll(arg, onPage, opts = {}) {
  let page = await rpc("files/list_folder", { limit: 2000, ...arg }, opts);
  onPage(page.entries, page.has_more);
  while (page.has_more) {
    page = await rpc("files/list_folder/continue", { cursor: page.cursor }, opts);
    onPage(page.entries, page.has_more);
  }
  return page.cursor;
}

/** Waits for a batch job (`*_batch/check`, `check_job_status`) to finish; its result. */
export async function settle(checkRoute, launched, opts = {}) {
  if (launched[".tag"] !== "async_job_id") return launched;
  const id = launched.async_job_id;
  for (let wait = 100; ; wait = Math.min(wait * 2, 2000)) {
    await sleep(wait);
    const r = await rpc(checkRoute, { async_job_id: id }, opts);
    if (r[".tag"] !== "in_progress") return r;
  }
}

/**
 * Follows changes under a cursor: `longpoll` (on this same origin), then `continue`;
 * `onChanges(entries)` for each batch. Runs until `signal` aborts.
 */
export async function follow(cursor, onChanges, signal) {
  while (!signal.aborted) {
    let r;
    try {
      const resp = await fetch("/2/files/list_folder/longpoll", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ cursor, timeout: 30 }),
        signal,
      });
      if (!resp.ok) throw await failure(resp);
      r = await resp.json();
    } catch (e) {
      if (signal.aborted) return;
      await sleep(3000);
      continue;
    }
    if (r.changes) {
      let page;
      do {
        page = await rpc("files/list_folder/continue", { cursor }, { signal });
        cursor = page.cursor;
        if (page.entries.length) onChanges(page.entries);
      } while (page.has_more);
    }
    if (r.backoff) await sleep(r.backoff * 1000);
  }
}
