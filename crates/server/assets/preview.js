// The preview overlay: a modal <dialog> over the whole window showing one file (or one
// revision of it, `{..., path: "rev:<rev>"}`), with Download and Close; Left/Right step
// through the files of the open folder.
//
// Security: nothing a user stored is ever rendered as a document of this origin.
// - Names go through ui.nameNode (textContent in <bdi>).
// - Text, code, Markdown and HTML are shown as text in a <pre> (textContent).
// - SVG is decoded as an <img> (script inert) from a blob, drawn on a canvas and shown as a
//   PNG: no blob: URL of the SVG outlives the decoding, so "open image in new tab" cannot
//   run the SVG with this origin.
// - Media and PDF use the server's temporary links (/temp/…), served with the type of the
//   file's extension. PDF goes in an <iframe> for the browser's own viewer. No `sandbox`
//   attribute: Chromium refuses to show a PDF in an <iframe sandbox> (any flags), while a
//   `Content-Security-Policy: sandbox` response header does not stop its viewer (checked
//   with Chromium 148), so the isolation belongs in the server's header. "Open PDF"
//   (rel=noopener) opens the same link in a tab, for browsers without a viewer.

import * as api from "./api.js";
import * as ui from "./ui.js";

const { el, nameNode, state } = ui;

const KINDS = {
  image: "jpg jpeg png gif webp bmp",
  svg: "svg",
  video: "mp4 webm mov m4v ogv",
  audio: "mp3 m4a ogg oga opus wav flac aac",
  pdf: "pdf",
  text:
    "txt md markdown log csv tsv json js mjs cjs ts tsx jsx py rb rs go c h cc cpp hpp java kt " +
    "swift sh bash zsh fish ps1 bat yml yaml toml ini cfg conf env xml html htm css scss less sql " +
    "php pl lua r m tex srt vtt diff patch gitignore dockerfile makefile lock properties gradle",
};
const KIND_OF = new Map();
for (const [k, exts] of Object.entries(KINDS)) for (const x of exts.split(" ")) KIND_OF.set(x, k);

/** What kind of preview a file name gets: image, svg, video, audio, pdf, text or other. */
export function kindOf(name) {
  const lower = String(name).toLowerCase();
  const dot = lower.lastIndexOf(".");
  const ext = dot >= 0 ? lower.slice(dot + 1) : lower;
  return KIND_OF.get(ext) || "other";
}

const TEXT_LIMIT = 1024 * 1024;

/** The path a preview reads: a revision's "rev:…", else the live file's path. */
const readPath = (e) => e.path || e.path_lower || e.path_display;
const downloadUrl = (e) => api.contentUrl("files/download", { path: readPath(e) });

/** The display order of the shell (folders first, then state.sort), files only. */
function folderFiles() {
  const { key, dir } = state.sort || { key: "name", dir: 1 };
  const val = (e) => (key === "size" ? e.size || 0 : key === "modified" ? e.server_modified || "" : "");
  return state.entries
    .filter((e) => e[".tag"] === "file")
    .sort((a, b) => {
      const va = val(a);
      const vb = val(b);
      const c = va < vb ? -1 : va > vb ? 1 : 0;
      return (c || ui.collator.compare(a.name, b.name)) * dir;
    });
}

/** A temporary link as a same-origin path when it points at this server's /temp/. */
async function temporaryLink(entry) {
  const r = await api.rpc("files/get_temporary_link", { path: readPath(entry) });
  const u = new URL(r.link, location.href);
  return u.pathname.startsWith("/temp/") ? u.pathname + u.search : r.link;
}

function info(entry, note) {
  const rows = [["Name", nameNode(entry.name)]];
  if (entry.size !== undefined) rows.push(["Size", ui.formatSize(entry.size)]);
  if (entry.server_modified) rows.push(["Modified", ui.formatDate(entry.server_modified)]);
  return el("div", { class: "preview-info" },
    el("p", { class: "preview-note" }, note || "No preview for this kind of file."),
    el("dl", {}, rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    el("a", { class: "btn primary", href: downloadUrl(entry), download: entry.name }, "Download"),
  );
}

// ---------------------------------------------------------------------------------------
// Renderers: each fills `stage` for `entry`; `signal` aborts when the preview moves on.

async function showImage(entry, stage, tools) {
  const path = readPath(entry);
  const thumb = api.contentUrl("files/get_thumbnail_v2", {
    resource: { ".tag": "path", path },
    size: "w1024h768",
    format: "jpeg",
    mode: "bestfit",
  });
  const img = el("img", { class: "preview-img", alt: entry.name, src: thumb });
  const full = el("button", { type: "button", class: "btn" }, "Full size");
  const original = () => {
    full.disabled = true;
    full.textContent = "Loading full size…";
    img.src = downloadUrl(entry);
    img.addEventListener("load", () => {
      full.textContent = "Full size";
      full.hidden = true;
      img.classList.add("full");
    }, { once: true });
  };
  full.addEventListener("click", original);
  img.addEventListener("error", () => {
    if (!img.src.includes("files/download")) original();
    else stage.replaceChildren(info(entry, "This image cannot be shown."));
  });
  tools.prepend(full);
  stage.replaceChildren(img);
}

async function showSvg(entry, stage, tools, signal) {
  const resp = await fetch(downloadUrl(entry), { signal, credentials: "same-origin" });
  if (!resp.ok) throw new Error("download failed");
  const bytes = await resp.arrayBuffer();
  const svgUrl = URL.createObjectURL(new Blob([bytes], { type: "image/svg+xml" }));
  const decoded = new Image();
  try {
    decoded.src = svgUrl;
    await decoded.decode();
  } catch {
    stage.replaceChildren(info(entry, "This SVG picture cannot be shown."));
    return;
  } finally {
    URL.revokeObjectURL(svgUrl);
  }
  const w = decoded.naturalWidth || 1024;
  const h = decoded.naturalHeight || 768;
  const scale = Math.min(4, 2048 / Math.max(w, h));
  const canvas = el("canvas", { class: "preview-img", role: "img", "aria-label": entry.name });
  canvas.width = Math.max(1, Math.round(w * scale));
  canvas.height = Math.max(1, Math.round(h * scale));
  canvas.getContext("2d").drawImage(decoded, 0, 0, canvas.width, canvas.height);
  stage.replaceChildren(canvas);
  const source = el("button", { type: "button", class: "btn" }, "Source");
  source.addEventListener("click", () => {
    const text = new TextDecoder().decode(bytes.slice(0, TEXT_LIMIT));
    stage.replaceChildren(el("pre", { class: "preview-text", tabindex: "0" }, text));
    source.remove();
  });
  tools.prepend(source);
}

async function showMedia(kind, entry, stage) {
  const src = await temporaryLink(entry);
  const media = el(kind, { class: "preview-" + kind, controls: true, preload: "metadata", src });
  media.addEventListener("error", () => {
    stage.replaceChildren(info(entry, "Your browser cannot play this file."));
  });
  stage.replaceChildren(media);
}

async function showText(entry, stage, tools, signal) {
  const resp = await fetch(downloadUrl(entry), {
    headers: { Range: "bytes=0-" + (TEXT_LIMIT - 1) },
    credentials: "same-origin",
    signal,
  });
  if (!resp.ok) throw new Error("download failed (" + resp.status + ")");
  let bytes = new Uint8Array(await resp.arrayBuffer());
  const range = resp.headers.get("Content-Range");
  const total = range ? Number(range.split("/")[1]) : entry.size || bytes.length;
  const truncated = bytes.length > TEXT_LIMIT || total > Math.min(bytes.length, TEXT_LIMIT);
  if (bytes.length > TEXT_LIMIT) bytes = bytes.subarray(0, TEXT_LIMIT);
  if (bytes.subarray(0, 8192).includes(0)) {
    stage.replaceChildren(info(entry, "This file looks binary, so it is not shown as text."));
    return;
  }
  const text = new TextDecoder("utf-8").decode(bytes);
  const parts = [];
  if (truncated) {
    parts.push(el("p", { class: "preview-truncated", role: "note" },
      `Showing the first ${ui.formatSize(bytes.length)} of ${ui.formatSize(total)}. Download the file to see all of it.`));
  }
  parts.push(el("pre", { class: "preview-text", tabindex: "0", "aria-label": "Contents of " + entry.name }, text));
  stage.replaceChildren(...parts);
}

async function showPdf(entry, stage, tools) {
  const src = await temporaryLink(entry);
  tools.prepend(el("a", { class: "btn", href: src, target: "_blank", rel: "noopener noreferrer" }, "Open PDF"));
  stage.replaceChildren(el("iframe", { class: "preview-pdf", src, title: entry.name }));
}

// ---------------------------------------------------------------------------------------
// The overlay.

let current = null;

/**
 * Opens the preview of `entry` (file metadata, or a revision as {name, rev, path:"rev:…"}).
 * Resolves when it closes.
 */
export function openPreview(entry) {
  if (current) current.close();
  const opener = document.activeElement;
  const inFolder = !entry.path && state.entries.some((e) => e.path_lower === entry.path_lower);
  let shown = entry;
  let abort = null;

  const title = el("h2", { class: "preview-title", id: "preview-title" });
  const meta = el("p", { class: "preview-meta" });
  const tools = el("div", { class: "preview-tools" });
  const stage = el("div", { class: "preview-stage", "aria-busy": "true" });
  const prev = el("button", { type: "button", class: "btn icon", "aria-label": "Previous file", title: "Previous (←)", onclick: () => step(-1) }, "‹");
  const next = el("button", { type: "button", class: "btn icon", "aria-label": "Next file", title: "Next (→)", onclick: () => step(1) }, "›");
  const dl = el("a", { class: "btn" }, "Download");
  const close = el("button", { type: "button", class: "btn primary", onclick: () => d.close() }, "Close");
  const d = el("dialog", { class: "preview", "aria-labelledby": "preview-title" },
    el("header", { class: "preview-bar" },
      el("div", { class: "preview-heading" }, title, meta),
      el("div", { class: "preview-buttons" }, tools, inFolder ? prev : null, inFolder ? next : null, dl, close),
    ),
    stage,
  );

  function render(e) {
    shown = e;
    if (abort) abort.abort();
    abort = new AbortController();
    const signal = abort.signal;
    title.replaceChildren(nameNode(e.name));
    const bits = [];
    if (e.path && e.path.startsWith("rev:")) bits.push("Version of " + ui.formatDate(e.server_modified));
    else if (e.server_modified) bits.push(ui.formatDate(e.server_modified));
    if (e.size !== undefined) bits.push(ui.formatSize(e.size));
    meta.textContent = bits.join(" · ");
    dl.href = downloadUrl(e);
    dl.download = e.name;
    tools.replaceChildren();
    stage.setAttribute("aria-busy", "true");
    stage.replaceChildren(el("p", { class: "preview-loading" }, "Loading…"));
    const kind = kindOf(e.name);
    stage.dataset.kind = kind;
    const job =
      kind === "image" ? showImage(e, stage, tools)
      : kind === "svg" ? showSvg(e, stage, tools, signal)
      : kind === "video" || kind === "audio" ? showMedia(kind, e, stage)
      : kind === "text" ? showText(e, stage, tools, signal)
      : kind === "pdf" ? showPdf(e, stage, tools)
      : Promise.resolve(stage.replaceChildren(info(e)));
    job
      .catch((err) => {
        if (signal.aborted) return;
        console.error(err);
        stage.replaceChildren(info(e, err instanceof api.ApiError ? api.describe(err) : "The preview could not be loaded."));
      })
      .finally(() => signal.aborted || stage.setAttribute("aria-busy", "false"));
    if (inFolder) {
      const files = folderFiles();
      const i = files.findIndex((f) => f.path_lower === e.path_lower);
      prev.disabled = i <= 0;
      next.disabled = i < 0 || i >= files.length - 1;
    }
  }

  function step(delta) {
    const files = folderFiles();
    const i = files.findIndex((f) => f.path_lower === shown.path_lower);
    const target = files[i + delta];
    if (i >= 0 && target) {
      render(target);
      ui.announce(target.name);
    }
  }

  // On the document: a button that disables itself sends focus to <body>, outside the dialog.
  const onKey = (ev) => {
    if (!inFolder || ev.altKey || ev.ctrlKey || ev.metaKey || ev.defaultPrevented) return;
    if (!d.open || document.querySelector("dialog[open]:not(.preview)") && !d.contains(ev.target)) return;
    if (ev.target.closest && ev.target.closest("video,audio,input,textarea,select")) return;
    if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
      ev.preventDefault();
      step(ev.key === "ArrowLeft" ? -1 : 1);
    }
  };
  document.addEventListener("keydown", onKey);

  return new Promise((resolve) => {
    d.addEventListener("close", () => {
      if (abort) abort.abort();
      document.removeEventListener("keydown", onKey);
      for (const m of d.querySelectorAll("video,audio")) m.pause();
      d.remove();
      if (current === handle) current = null;
      // Focus returns to the row of the file last shown, else to what opened the preview.
      const rowOf = inFolder && document.querySelector(`[role="row"][data-path="${CSS.escape(shown.path_lower)}"]`);
      if (rowOf) rowOf.focus();
      else if (opener && opener.isConnected && opener.focus) opener.focus();
      resolve();
    });
    const handle = { close: () => d.close() };
    current = handle;
    document.body.append(d);
    d.showModal();
    render(entry);
    close.focus();
  });
}
