// Drives a running Cubby server with the official Dropbox JavaScript SDK (npm `dropbox`).
// Started by conformance/test_js_sdk.py; prints one JSON line per call, {"name", "ok", ...},
// then {"summary": true, ...}, and exits 1 if any call failed.
//
//   node sdk_calls.mjs api     the API routes, as the user of CUBBY_TOKEN
//   node sdk_calls.mjs oauth   DropboxAuth's PKCE code flow and refresh for the public app
//                              CUBBY_APP_KEY: prints {"authorize_url"} and then reads one JSON
//                              line {"code", "state"} from stdin (the test answers the consent page)
//
// Environment: CUBBY_API_HOST (host:port of RPC and longpoll calls), CUBBY_CONTENT_HOST
// (host:port of upload and download calls; the same host except in scale-out mode),
// CUBBY_TOKEN, CUBBY_ACCOUNT_ID, CUBBY_EMAIL, CUBBY_OTHER_TOKEN (a second user, for
// copy_reference/save), CUBBY_APP_KEY and CUBBY_REDIRECT_URI (oauth mode), and
// NODE_EXTRA_CA_CERTS (Cubby's local CA) so that Node's fetch trusts the server.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import zlib from 'node:zlib';

import {
  Dropbox, DropboxAuth, DropboxResponseError, bytesUpload, downloadFile, uploadFile,
} from 'dropbox';

const env = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback !== undefined) return fallback;
    throw new Error(`${name} is not set`);
  }
  return v;
};

const API_HOST = env('CUBBY_API_HOST');
const CONTENT_HOST = env('CUBBY_CONTENT_HOST', API_HOST);

// ---------------------------------------------------------------------------------------
// fetch: the host mapping a user needs for OAuth, and a recorder for failure reports

// With a custom `domain` the SDK builds its OAuth URLs as https://meta-DOMAIN/oauth2/authorize
// and https://api-DOMAIN/oauth2/token (src/utils.js). Map those hosts back to the server.
function cubbyFetch(url, init) {
  const u = new URL(url);
  for (const prefix of ['api-', 'meta-']) {
    if (u.host === prefix + API_HOST) u.host = API_HOST;
  }
  return globalThis.fetch(u, init);
}

// The requests of the current step, for the failure report (request and response), and
// how many requests went to each host (in the summary: the content host gets its share).
let trail = [];
const hostCounts = {};

function headersOf(h) {
  const out = {};
  if (!h) return out;
  const entries = typeof h.entries === 'function' ? h.entries() : Object.entries(h);
  for (const [k, v] of entries) {
    out[k] = k.toLowerCase() === 'authorization' ? `${String(v).slice(0, 12)}…` : v;
  }
  return out;
}

async function recordingFetch(url, init = {}) {
  const entry = {
    method: init.method || 'GET',
    url: String(url),
    headers: headersOf(init.headers),
  };
  if (typeof init.body === 'string') entry.body = init.body.slice(0, 2000);
  else if (init.body && init.body.byteLength !== undefined) entry.body_bytes = init.body.byteLength;
  trail.push(entry);
  const host = new URL(url).host;
  hostCounts[host] = (hostCounts[host] || 0) + 1;
  let res;
  try {
    res = await cubbyFetch(url, init);
  } catch (e) {
    entry.fetch_error = `${e.message}${e.cause ? ` (${e.cause.code || e.cause.message})` : ''}`;
    throw e;
  }
  entry.status = res.status;
  const result = res.headers.get('dropbox-api-result');
  if (result) entry.api_result = result.slice(0, 2000);
  if (!res.ok) {
    entry.response_headers = headersOf(res.headers);
    entry.response = (await res.clone().text()).slice(0, 2000);
  }
  return res;
}

// ---------------------------------------------------------------------------------------
// Steps and checks

let passed = 0;
let failed = 0;
let skipped = 0;

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

class CheckError extends Error {}

function check(cond, what, detail) {
  if (!cond) {
    throw new CheckError(detail === undefined ? what : `${what}: ${JSON.stringify(detail)}`);
  }
}

function eq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const b = JSON.stringify(expected);
  if (a !== b) throw new CheckError(`${what}: got ${a}, want ${b}`);
}

function describe(e) {
  if (e instanceof DropboxResponseError) {
    return { error: `DropboxResponseError ${e.status}`, error_body: e.error };
  }
  if (e instanceof CheckError) return { error: e.message };
  return { error: `${e.name}: ${e.message}`, stack: (e.stack || '').split('\n').slice(1, 4) };
}

// A scenario is a list of steps that depend on each other: after a failure the rest of
// the scenario is reported as skipped.
async function scenario(title, fn) {
  let broken = null;
  const step = async (name, body) => {
    if (broken) {
      skipped += 1;
      emit({ name, ok: false, skipped: `after ${broken} failed` });
      return undefined;
    }
    trail = [];
    const t0 = Date.now();
    try {
      const value = await body();
      passed += 1;
      emit({ name, ok: true, ms: Date.now() - t0 });
      return value;
    } catch (e) {
      failed += 1;
      broken = name;
      emit({ name, ok: false, ms: Date.now() - t0, ...describe(e), requests: trail.slice(-4) });
      return undefined;
    }
  };
  try {
    await fn(step);
  } catch (e) {
    failed += 1;
    emit({ name: `${title} (scenario)`, ok: false, ...describe(e) });
  }
}

// Expects fn to throw the SDK's DropboxResponseError with this status, and an
// error_summary starting with `summary` (API errors) or an OAuth `error` (token endpoint).
async function expectError(fn, status, summary) {
  let response;
  try {
    response = await fn();
  } catch (e) {
    check(e instanceof DropboxResponseError, 'not a DropboxResponseError', `${e.name}: ${e.message}`);
    eq(e.status, status, 'HTTP status');
    const body = e.error;
    check(body && typeof body === 'object', 'error body is not JSON', body);
    if (status === 400 && body.error_summary === undefined) {
      eq(body.error, summary, 'OAuth error');
    } else {
      check(typeof body.error_summary === 'string' && body.error_summary.startsWith(summary),
        `error_summary does not start with ${summary}`, body);
    }
    return body;
  }
  throw new CheckError(`expected a ${status} ${summary} error, got ${JSON.stringify(response && response.result)}`);
}

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

// Polls a batch/job check route until it is no longer in progress.
async function poll(fn, what) {
  for (let i = 0; i < 200; i += 1) {
    const r = (await fn()).result;
    if (r['.tag'] !== 'in_progress') return r;
    await sleep(50);
  }
  throw new CheckError(`${what} still in_progress after 10 s`);
}

// A job route answers either complete (with the result inline) or async_job_id; returns
// the complete result either way.
async function completion(first, checkFn, what) {
  const r = first.result;
  if (r['.tag'] === 'async_job_id') {
    return poll(() => checkFn({ async_job_id: r.async_job_id }), what);
  }
  return r;
}

// Dropbox's content_hash: SHA-256 over the SHA-256 of each 4 MiB block.
function contentHash(buf) {
  const blocks = [];
  for (let off = 0; off < buf.length; off += 4 << 20) {
    blocks.push(crypto.createHash('sha256').update(buf.subarray(off, off + (4 << 20))).digest());
  }
  return crypto.createHash('sha256').update(Buffer.concat(blocks)).digest('hex');
}

function randomBytes(n) {
  return crypto.randomBytes(n);
}

function assertFile(md, name, data) {
  check(md && typeof md === 'object', 'no metadata', md);
  eq(md.name, name, 'name');
  eq(md.size, data.length, 'size');
  eq(md.content_hash, contentHash(data), 'content_hash');
  check(typeof md.rev === 'string' && /^[0-9a-f]{9,}$/.test(md.rev), 'rev', md.rev);
  check(typeof md.id === 'string' && md.id.startsWith('id:'), 'id', md.id);
}

function sameBytes(got, want, what) {
  check(Buffer.isBuffer(got), `${what}: not a Buffer (fileBinary)`, typeof got);
  if (!got.equals(want)) {
    throw new CheckError(`${what}: ${got.length} bytes differ from the ${want.length} expected`);
  }
}

// The entries of a ZIP archive (name -> bytes), from its central directory.
function unzip(buf) {
  const out = new Map();
  let p = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  check(p >= 0, 'no end of central directory record in the ZIP');
  let count = buf.readUInt16LE(p + 10);
  let cd = buf.readUInt32LE(p + 16);
  if (cd === 0xffffffff || count === 0xffff) {
    const loc = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x06, 0x07]), p);
    const eocd64 = Number(buf.readBigUInt64LE(loc + 8));
    count = Number(buf.readBigUInt64LE(eocd64 + 32));
    cd = Number(buf.readBigUInt64LE(eocd64 + 48));
  }
  p = cd;
  for (let i = 0; i < count; i += 1) {
    eq(buf.readUInt32LE(p), 0x02014b50, 'central directory signature');
    const method = buf.readUInt16LE(p + 10);
    let csize = buf.readUInt32LE(p + 20);
    let usize = buf.readUInt32LE(p + 24);
    const nlen = buf.readUInt16LE(p + 28);
    const xlen = buf.readUInt16LE(p + 30);
    const clen = buf.readUInt16LE(p + 32);
    let local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nlen);
    // ZIP64 extra field: the 0xffffffff values, in order usize, csize, offset.
    for (let x = p + 46 + nlen; x < p + 46 + nlen + xlen;) {
      const id = buf.readUInt16LE(x);
      const len = buf.readUInt16LE(x + 2);
      if (id === 1) {
        let q = x + 4;
        if (usize === 0xffffffff) { usize = Number(buf.readBigUInt64LE(q)); q += 8; }
        if (csize === 0xffffffff) { csize = Number(buf.readBigUInt64LE(q)); q += 8; }
        if (local === 0xffffffff) { local = Number(buf.readBigUInt64LE(q)); q += 8; }
      }
      x += 4 + len;
    }
    eq(buf.readUInt32LE(local), 0x04034b50, `local header signature of ${name}`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(start, start + csize);
    let data;
    if (method === 0) data = raw;
    else if (method === 8) data = zlib.inflateRawSync(raw);
    else throw new CheckError(`${name}: unsupported compression method ${method}`);
    eq(data.length, usize, `uncompressed size of ${name}`);
    out.set(name, data);
    p += 46 + nlen + xlen + clen;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// API mode

async function apiMode() {
  const token = env('CUBBY_TOKEN');
  const accountId = env('CUBBY_ACCOUNT_ID');
  const email = env('CUBBY_EMAIL');
  const otherToken = env('CUBBY_OTHER_TOKEN');

  // The README's recipe, as is: no fetch option.
  const plain = new Dropbox({ accessToken: token, domain: API_HOST, domainDelimiter: '' });
  // The same, with requests recorded for failure reports; content-style calls (upload,
  // download) go through `content`, which differs from `dbx` in scale-out mode only.
  const dbx = new Dropbox({
    accessToken: token, domain: API_HOST, domainDelimiter: '', fetch: recordingFetch,
  });
  const content = new Dropbox({
    accessToken: token, domain: CONTENT_HOST, domainDelimiter: '', fetch: recordingFetch,
  });
  const other = new Dropbox({
    accessToken: otherToken, domain: API_HOST, domainDelimiter: '', fetch: recordingFetch,
  });
  const base = `/js-sdk-${crypto.randomBytes(5).toString('hex')}`;

  await scenario('account', async (step) => {
    await step('users/get_current_account', async () => {
      const r = await plain.usersGetCurrentAccount();
      eq(r.status, 200, 'status');
      eq(r.result.account_id, accountId, 'account_id');
      eq(r.result.email, email, 'email');
      check(typeof r.result.name.display_name === 'string', 'name.display_name', r.result.name);
      check(r.result.account_type && r.result.account_type['.tag'], 'account_type', r.result);
    });
    await step('users/get_space_usage', async () => {
      const r = (await dbx.usersGetSpaceUsage()).result;
      check(Number.isInteger(r.used) && r.used >= 0, 'used', r);
      check(['individual', 'team'].includes(r.allocation['.tag']), 'allocation', r);
    });
    await step('check/user', async () => {
      eq((await dbx.checkUser({ query: 'cubby-js' })).result, { result: 'cubby-js' }, 'echo');
    });
    await step('error: invalid access token -> 401 invalid_access_token', async () => {
      const bad = new Dropbox({
        accessToken: 'not-a-token', domain: API_HOST, domainDelimiter: '', fetch: recordingFetch,
      });
      const body = await expectError(() => bad.usersGetCurrentAccount(), 401, 'invalid_access_token');
      eq(body.error['.tag'], 'invalid_access_token', 'error tag');
    });
  });

  // Files that later scenarios use.
  const hello = Buffer.from('hello from the Dropbox JavaScript SDK \u{1F600}\n');
  const helloName = 'Grüße 😀.txt'; // non-ASCII: the SDK escapes Dropbox-API-Arg
  const helloPath = `${base}/${helloName}`;

  await scenario('files', async (step) => {
    const folder = await step('files/create_folder_v2', async () => {
      const r = (await dbx.filesCreateFolderV2({ path: base })).result;
      eq(r.metadata.name, base.slice(1), 'name');
      eq(r.metadata.path_display, base, 'path_display');
      check(r.metadata.id.startsWith('id:'), 'id', r.metadata);
      return r.metadata;
    });
    const up = await step('files/upload', async () => {
      const r = await content.filesUpload({ path: helloPath, contents: hello });
      assertFile(r.result, helloName, hello);
      eq(r.result.path_display, helloPath, 'path_display');
      eq(r.result.path_lower, helloPath.toLowerCase(), 'path_lower');
      return r.result;
    });
    await step('files/download', async () => {
      const r = await content.filesDownload({ path: helloPath });
      sameBytes(r.result.fileBinary, hello, 'content');
      eq(r.result.rev, up.rev, 'rev');
      eq(r.result.content_hash, up.content_hash, 'content_hash');
    });
    await step('files/download with a Range header (206)', async () => {
      const r = await content.filesDownload({ path: up.id }, { extraHeaders: { Range: 'bytes=6-9' } });
      eq(r.status, 206, 'status');
      sameBytes(r.result.fileBinary, hello.subarray(6, 10), 'range');
      eq(r.result.size, hello.length, 'size in the metadata');
    });
    await step('files/get_metadata', async () => {
      // Paths are case-insensitive (Unicode lower case; 'ß' has no single upper case).
      const r = (await dbx.filesGetMetadata({ path: `${base.toUpperCase()}/GRÜßE 😀.TXT` })).result;
      eq(r['.tag'], 'file', '.tag');
      assertFile(r, helloName, hello);
      eq(r.id, up.id, 'id');
      const f = (await dbx.filesGetMetadata({ path: folder.id })).result;
      eq([f['.tag'], f.path_display], ['folder', base], 'folder by id');
    });
    await step('error: files/get_metadata of a missing path -> 409 path/not_found', async () => {
      const body = await expectError(
        () => dbx.filesGetMetadata({ path: `${base}/missing.txt` }), 409, 'path/not_found',
      );
      eq(body.error, { '.tag': 'path', path: { '.tag': 'not_found' } }, 'error union');
    });
    await step('error: files/create_folder_v2 on a folder -> 409 path/conflict/folder', async () => {
      await expectError(() => dbx.filesCreateFolderV2({ path: base }), 409, 'path/conflict/folder');
    });
    await step('error: files/upload with a wrong content_hash -> 409 content_hash_mismatch', async () => {
      await expectError(() => content.filesUpload({
        path: `${base}/bad-hash.txt`, contents: hello, content_hash: '0'.repeat(64),
      }), 409, 'content_hash_mismatch');
    });
    await step('files/upload with content_hash, update mode', async () => {
      const next = Buffer.from('second version');
      const r = (await content.filesUpload({
        path: helloPath,
        contents: next,
        content_hash: contentHash(next),
        mode: { '.tag': 'update', update: up.rev },
      })).result;
      assertFile(r, helloName, next);
      check(r.rev !== up.rev, 'new rev', r.rev);
      await expectError(() => content.filesUpload({
        path: helloPath, contents: hello, mode: { '.tag': 'update', update: up.rev },
      }), 409, 'path/conflict/file');
      // Back to the first content for the scenarios below.
      const back = (await content.filesUpload({
        path: helloPath, contents: hello, mode: { '.tag': 'overwrite' },
      })).result;
      assertFile(back, helloName, hello);
    });
    const copy = await step('files/copy_v2', async () => {
      const r = (await dbx.filesCopyV2({ from_path: helloPath, to_path: `${base}/copy.txt` })).result;
      assertFile(r.metadata, 'copy.txt', hello);
      check(r.metadata.id !== up.id, 'a copy has its own id', r.metadata.id);
      return r.metadata;
    });
    await step('files/move_v2', async () => {
      const r = (await dbx.filesMoveV2({ from_path: `${base}/copy.txt`, to_path: `${base}/moved.txt` })).result;
      assertFile(r.metadata, 'moved.txt', hello);
      eq(r.metadata.id, copy.id, 'a move keeps the id');
      await expectError(() => dbx.filesGetMetadata({ path: `${base}/copy.txt` }), 409, 'path/not_found');
    });
    await step('files/delete_v2', async () => {
      const r = (await dbx.filesDeleteV2({ path: `${base}/moved.txt` })).result;
      eq(r.metadata['.tag'], 'file', '.tag');
      eq(r.metadata.name, 'moved.txt', 'name');
      const d = (await dbx.filesGetMetadata({ path: `${base}/moved.txt`, include_deleted: true })).result;
      eq(d['.tag'], 'deleted', 'include_deleted');
    });
  });

  await scenario('list_folder', async (step) => {
    const dir = `${base}/list`;
    const names = ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt'];
    await step('files/list_folder + list_folder/continue', async () => {
      for (const n of names) await content.filesUpload({ path: `${dir}/${n}`, contents: Buffer.from(n) });
      let r = (await dbx.filesListFolder({ path: dir, limit: 2 })).result;
      const seen = r.entries.map((e) => e.name);
      check(r.has_more === true, 'has_more with limit 2', r);
      let pages = 1;
      while (r.has_more) {
        r = (await dbx.filesListFolderContinue({ cursor: r.cursor })).result;
        seen.push(...r.entries.map((e) => e.name));
        pages += 1;
        check(pages < 10, 'too many pages');
      }
      eq(seen.sort(), names, 'names');
      check(typeof r.cursor === 'string' && r.cursor, 'cursor');
    });
    const cursor = await step('files/list_folder/get_latest_cursor', async () => {
      const r = (await dbx.filesListFolderGetLatestCursor({ path: dir, recursive: true })).result;
      check(typeof r.cursor === 'string' && r.cursor.length > 0, 'cursor', r);
      return r.cursor;
    });
    await step('files/list_folder/longpoll (woken by an upload)', async () => {
      const t0 = Date.now();
      const poll = dbx.filesListFolderLongpoll({ cursor, timeout: 30 });
      await sleep(300);
      await content.filesUpload({ path: `${dir}/new.txt`, contents: Buffer.from('new') });
      const r = (await poll).result;
      eq(r.changes, true, 'changes');
      check(Date.now() - t0 < 15000, 'longpoll took too long', Date.now() - t0);
    });
    await step('files/list_folder/continue after the longpoll', async () => {
      const r = (await dbx.filesListFolderContinue({ cursor })).result;
      eq(r.entries.map((e) => [e['.tag'], e.name]), [['file', 'new.txt']], 'changes');
    });
  });

  await scenario('revisions', async (step) => {
    const p = `${base}/revs.txt`;
    const v1 = Buffer.from('version one');
    const v2 = Buffer.from('version two, longer');
    let r1;
    let r2;
    await step('files/list_revisions', async () => {
      r1 = (await content.filesUpload({ path: p, contents: v1 })).result;
      // A void union member as a bare string, as Stone's JSON allows and JS users write.
      r2 = (await content.filesUpload({ path: p, contents: v2, mode: 'overwrite' })).result;
      const r = (await dbx.filesListRevisions({ path: p })).result;
      eq(r.is_deleted, false, 'is_deleted');
      eq(r.entries.map((e) => e.rev), [r2.rev, r1.rev], 'revs, newest first');
      eq(r.entries.map((e) => e.size), [v2.length, v1.length], 'sizes');
    });
    await step('files/restore', async () => {
      const r = (await dbx.filesRestore({ path: p, rev: r1.rev })).result;
      assertFile(r, 'revs.txt', v1);
      check(![r1.rev, r2.rev].includes(r.rev), 'restore makes a new revision', r.rev);
      sameBytes((await content.filesDownload({ path: p })).result.fileBinary, v1, 'restored content');
      const old = await content.filesDownload({ path: `rev:${r2.rev}` });
      sameBytes(old.result.fileBinary, v2, 'download by rev:');
    });
  });

  await scenario('search', async (step) => {
    const tag = `zebra${crypto.randomBytes(4).toString('hex')}`;
    const want = [`${tag}-1.txt`, `${tag}-2.txt`, `${tag}-3.txt`];
    await step('files/search_v2 + search/continue_v2', async () => {
      for (const n of want) await content.filesUpload({ path: `${base}/search/${n}`, contents: Buffer.from(n) });
      await content.filesUpload({ path: `${base}/search/other.txt`, contents: Buffer.from('x') });
      let r = (await dbx.filesSearchV2({ query: tag, options: { path: base, max_results: 2 } })).result;
      const got = r.matches.map((m) => m.metadata.metadata.name);
      check(r.matches.every((m) => m.metadata['.tag'] === 'metadata'), 'match tags', r.matches);
      eq(r.has_more, true, 'has_more');
      let pages = 1;
      while (r.has_more) {
        r = (await dbx.filesSearchContinueV2({ cursor: r.cursor })).result;
        got.push(...r.matches.map((m) => m.metadata.metadata.name));
        pages += 1;
        check(pages < 10, 'too many pages');
      }
      eq(got.sort(), want, 'names found');
    });
  });

  await scenario('upload_session', async (step) => {
    const part1 = randomBytes(300 * 1024);
    const part2 = randomBytes(123 * 1024);
    const whole = Buffer.concat([part1, part2]);
    const sid = await step('files/upload_session/start', async () => {
      const r = (await content.filesUploadSessionStart({ contents: part1 })).result;
      check(typeof r.session_id === 'string' && r.session_id, 'session_id', r);
      return r.session_id;
    });
    await step('files/upload_session/append_v2', async () => {
      const r = await content.filesUploadSessionAppendV2({
        cursor: { session_id: sid, offset: part1.length }, contents: part2,
      });
      eq(r.result, null, 'result');
    });
    await step('error: upload_session/append_v2 at a wrong offset -> 409 incorrect_offset', async () => {
      const body = await expectError(() => content.filesUploadSessionAppendV2({
        cursor: { session_id: sid, offset: 1 }, contents: part2,
      }), 409, 'incorrect_offset');
      eq(body.error.correct_offset, whole.length, 'correct_offset');
    });
    await step('files/upload_session/finish', async () => {
      const r = (await content.filesUploadSessionFinish({
        cursor: { session_id: sid, offset: whole.length },
        commit: { path: `${base}/session.bin` },
        contents: Buffer.alloc(0),
      })).result;
      assertFile(r, 'session.bin', whole);
    });

    const files = [randomBytes(1000), randomBytes(70000)];
    const ids = await step('files/upload_session/start_batch', async () => {
      const r = (await dbx.filesUploadSessionStartBatch({ num_sessions: 2 })).result;
      eq(r.session_ids.length, 2, 'session_ids');
      for (const [i, id] of r.session_ids.entries()) {
        await content.filesUploadSessionAppendV2({
          cursor: { session_id: id, offset: 0 }, close: true, contents: files[i],
        });
      }
      return r.session_ids;
    });
    await step('files/upload_session/finish_batch_v2', async () => {
      const r = (await dbx.filesUploadSessionFinishBatchV2({
        entries: ids.map((id, i) => ({
          cursor: { session_id: id, offset: files[i].length },
          commit: { path: `${base}/batch/v2-${i}.bin` },
        })),
      })).result;
      eq(r.entries.map((e) => e['.tag']), ['success', 'success'], 'entry tags');
      r.entries.forEach((e, i) => assertFile(e, `v2-${i}.bin`, files[i]));
    });
    await step('files/upload_session/finish_batch + finish_batch/check', async () => {
      const more = [randomBytes(5000), randomBytes(6000)];
      const started = (await dbx.filesUploadSessionStartBatch({ num_sessions: 2 })).result.session_ids;
      for (const [i, id] of started.entries()) {
        await content.filesUploadSessionAppendV2({
          cursor: { session_id: id, offset: 0 }, close: true, contents: more[i],
        });
      }
      const first = await dbx.filesUploadSessionFinishBatch({
        entries: started.map((id, i) => ({
          cursor: { session_id: id, offset: more[i].length },
          commit: { path: `${base}/batch/v1-${i}.bin` },
        })),
      });
      const r = await completion(first, (a) => dbx.filesUploadSessionFinishBatchCheck(a), 'finish_batch');
      eq(r['.tag'], 'complete', '.tag');
      eq(r.entries.map((e) => e['.tag']), ['success', 'success'], 'entry tags');
      r.entries.forEach((e, i) => assertFile(e, `v1-${i}.bin`, more[i]));
    });
  });

  // The SDK's own transfer helpers: a concurrent session in 4 MiB chunks, and ranged
  // parallel downloads checked against content_hash.
  const big = randomBytes(9 * 1024 * 1024 + 12345);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cubby-js-'));
  await scenario('transfer helpers', async (step) => {
    await step('uploadFile (concurrent upload session, 3 parallel chunks)', async () => {
      const r = await uploadFile(content, bytesUpload(big), { path: `${base}/big.bin` }, {
        parallelUploads: 3, chunkSize: 4 * 1024 * 1024, maxAttempts: 1,
      });
      assertFile(r.metadata, 'big.bin', big);
    });
    await step('downloadFile (3 parallel ranges)', async () => {
      const local = path.join(tmp, 'big.bin');
      const r = await downloadFile(content, `${base}/big.bin`, local, {
        parallelDownloads: 3, maxAttempts: 1,
      });
      eq(r.metadata.size, big.length, 'size');
      sameBytes(fs.readFileSync(local), big, 'downloaded file');
    });
  });
  fs.rmSync(tmp, { recursive: true, force: true });

  await scenario('batches', async (step) => {
    const b = `${base}/jobs`;
    await step('files/create_folder_batch + check', async () => {
      const first = await dbx.filesCreateFolderBatch({ paths: [`${b}/one`, `${b}/two`], force_async: true });
      eq(first.result['.tag'], 'async_job_id', 'force_async');
      const r = await completion(first, (a) => dbx.filesCreateFolderBatchCheck(a), 'create_folder_batch');
      eq(r['.tag'], 'complete', '.tag');
      eq(r.entries.map((e) => [e['.tag'], e.metadata.name]), [['success', 'one'], ['success', 'two']], 'entries');
      await content.filesUpload({ path: `${b}/one/x.txt`, contents: Buffer.from('x') });
      await content.filesUpload({ path: `${b}/two/y.txt`, contents: Buffer.from('yy') });
    });
    await step('files/copy_batch_v2 + copy_batch/check_v2', async () => {
      const first = await dbx.filesCopyBatchV2({
        entries: [
          { from_path: `${b}/one/x.txt`, to_path: `${b}/x-copy.txt` },
          { from_path: `${b}/two`, to_path: `${b}/two-copy` },
        ],
      });
      const r = await completion(first, (a) => dbx.filesCopyBatchCheckV2(a), 'copy_batch_v2');
      eq(r['.tag'], 'complete', '.tag');
      eq(r.entries.map((e) => [e['.tag'], e.success['.tag'], e.success.name]),
        [['success', 'file', 'x-copy.txt'], ['success', 'folder', 'two-copy']], 'entries');
      const y = (await dbx.filesGetMetadata({ path: `${b}/two-copy/y.txt` })).result;
      eq(y.size, 2, 'copied folder content');
    });
    await step('files/move_batch_v2 + move_batch/check_v2', async () => {
      const first = await dbx.filesMoveBatchV2({
        entries: [{ from_path: `${b}/x-copy.txt`, to_path: `${b}/one/x-moved.txt` }],
      });
      const r = await completion(first, (a) => dbx.filesMoveBatchCheckV2(a), 'move_batch_v2');
      eq(r['.tag'], 'complete', '.tag');
      eq(r.entries.map((e) => [e['.tag'], e.success.path_display]),
        [['success', `${b}/one/x-moved.txt`]], 'entries');
    });
    await step('files/delete_batch + delete_batch/check', async () => {
      const first = await dbx.filesDeleteBatch({
        entries: [{ path: `${b}/one/x-moved.txt` }, { path: `${b}/two-copy` }],
      });
      const r = await completion(first, (a) => dbx.filesDeleteBatchCheck(a), 'delete_batch');
      eq(r['.tag'], 'complete', '.tag');
      eq(r.entries.map((e) => [e['.tag'], e.metadata['.tag'], e.metadata.name]),
        [['success', 'file', 'x-moved.txt'], ['success', 'folder', 'two-copy']], 'entries');
      await expectError(() => dbx.filesGetMetadata({ path: `${b}/two-copy` }), 409, 'path/not_found');
    });
  });

  await scenario('shared links', async (step) => {
    const link = await step('sharing/create_shared_link_with_settings', async () => {
      const r = (await dbx.sharingCreateSharedLinkWithSettings({
        path: helloPath, settings: { requested_visibility: { '.tag': 'public' } },
      })).result;
      eq(r['.tag'], 'file', '.tag');
      eq(r.name, helloName, 'name');
      eq(r.size, hello.length, 'size');
      eq(r.path_lower, helloPath.toLowerCase(), 'path_lower');
      check(/^https:\/\/[^/]+\/s\/[A-Za-z0-9_-]{43}\/[^?]+$/.test(r.url), 'url', r.url);
      eq(r.link_permissions.resolved_visibility['.tag'], 'public', 'resolved_visibility');
      return r;
    });
    await step('error: second create -> 409 shared_link_already_exists', async () => {
      const body = await expectError(() => dbx.sharingCreateSharedLinkWithSettings({ path: helloPath }),
        409, 'shared_link_already_exists');
      eq(body.error.shared_link_already_exists.metadata.url, link.url, 'existing link');
    });
    await step('sharing/list_shared_links', async () => {
      const r = (await dbx.sharingListSharedLinks({ path: helloPath, direct_only: true })).result;
      eq(r.links.map((l) => l.url), [link.url], 'links');
    });
    await step('sharing/modify_shared_link_settings', async () => {
      const expires = new Date(Date.now() + 2 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
      const r = (await dbx.sharingModifySharedLinkSettings({ url: link.url, settings: { expires } })).result;
      eq(r.url, link.url, 'url');
      eq(r.expires, expires, 'expires');
    });
    await step('sharing/get_shared_link_metadata', async () => {
      const r = (await dbx.sharingGetSharedLinkMetadata({ url: link.url })).result;
      eq([r['.tag'], r.name, r.size, r.url], ['file', helloName, hello.length, link.url], 'metadata');
    });
    await step('sharing/get_shared_link_file', async () => {
      const r = await content.sharingGetSharedLinkFile({ url: link.url });
      sameBytes(r.result.fileBinary, hello, 'content');
      eq(r.result.name, helloName, 'name');
    });
    await step('fetch of the shared link URL (?dl=1, no auth)', async () => {
      const res = await fetch(`${link.url}?dl=1`);
      eq(res.status, 200, 'status');
      sameBytes(Buffer.from(await res.arrayBuffer()), hello, 'content');
    });
    await step('sharing/revoke_shared_link', async () => {
      const r = await dbx.sharingRevokeSharedLink({ url: link.url });
      eq(r.result, null, 'result');
      await expectError(() => dbx.sharingGetSharedLinkMetadata({ url: link.url }), 409, 'shared_link_not_found');
    });
  });

  await scenario('temporary links', async (step) => {
    await step('files/get_temporary_link + fetch', async () => {
      const r = (await dbx.filesGetTemporaryLink({ path: helloPath })).result;
      eq(r.metadata.name, helloName, 'metadata.name');
      const res = await fetch(r.link);
      eq(res.status, 200, 'status');
      sameBytes(Buffer.from(await res.arrayBuffer()), hello, 'content');
    });
    await step('files/get_temporary_upload_link + POST', async () => {
      const data = randomBytes(2048);
      const r = (await dbx.filesGetTemporaryUploadLink({
        commit_info: { path: `${base}/via-link.bin` }, duration: 600,
      })).result;
      const res = await fetch(r.link, {
        method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: data,
      });
      eq(res.status, 200, `status (${await res.clone().text()})`);
      assertFile((await dbx.filesGetMetadata({ path: `${base}/via-link.bin` })).result, 'via-link.bin', data);
    });
  });

  await scenario('download_zip', async (step) => {
    const z = `${base}/zipme`;
    const a = randomBytes(3000);
    const c = Buffer.from('compressible '.repeat(500));
    await step('files/download_zip', async () => {
      await content.filesUpload({ path: `${z}/a.bin`, contents: a });
      await content.filesUpload({ path: `${z}/sub/c.txt`, contents: c });
      const r = await content.filesDownloadZip({ path: z });
      eq(r.result.metadata.name, 'zipme', 'metadata.name');
      const entries = unzip(r.result.fileBinary);
      sameBytes(entries.get('zipme/a.bin'), a, 'zipme/a.bin');
      sameBytes(entries.get('zipme/sub/c.txt'), c, 'zipme/sub/c.txt');
    });
  });

  await scenario('copy_reference', async (step) => {
    const ref = await step('files/copy_reference/get', async () => {
      const r = (await dbx.filesCopyReferenceGet({ path: helloPath })).result;
      check(typeof r.copy_reference === 'string' && r.copy_reference.length >= 22, 'copy_reference', r);
      eq(r.metadata.name, helloName, 'metadata.name');
      return r.copy_reference;
    });
    await step('files/copy_reference/save (another account)', async () => {
      const dest = `/js-ref-${crypto.randomBytes(4).toString('hex')}.txt`;
      const r = (await other.filesCopyReferenceSave({ copy_reference: ref, path: dest })).result;
      eq(r.metadata['.tag'], 'file', '.tag');
      assertFile(r.metadata, dest.slice(1), hello);
      const otherContent = new Dropbox({
        accessToken: otherToken, domain: CONTENT_HOST, domainDelimiter: '', fetch: recordingFetch,
      });
      sameBytes((await otherContent.filesDownload({ path: dest })).result.fileBinary, hello, 'saved content');
    });
  });

  await scenario('save_url', async (step) => {
    const data = randomBytes(40000);
    const origin = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length });
      res.end(data);
    });
    await new Promise((resolve) => { origin.listen(0, '127.0.0.1', resolve); });
    try {
      await step('files/save_url + save_url/check_job_status', async () => {
        const url = `http://127.0.0.1:${origin.address().port}/data.bin`;
        const first = await dbx.filesSaveUrl({ path: `${base}/saved.bin`, url });
        const r = await completion(first, (a) => dbx.filesSaveUrlCheckJobStatus(a), 'save_url');
        eq(r['.tag'], 'complete', `.tag (${JSON.stringify(r)})`);
        assertFile(r, 'saved.bin', data);
      });
    } finally {
      origin.close();
    }
  });

  await scenario('cleanup', async (step) => {
    await step('files/delete_v2 (the test folder)', async () => {
      const r = (await dbx.filesDeleteV2({ path: base })).result;
      eq([r.metadata['.tag'], r.metadata.path_display], ['folder', base], 'metadata');
    });
  });
}

// ---------------------------------------------------------------------------------------
// OAuth mode: DropboxAuth's PKCE code flow, token exchange and refresh

async function readLine() {
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    rl.close();
    return line;
  }
  throw new Error('stdin closed before the code arrived');
}

async function oauthMode() {
  const appKey = env('CUBBY_APP_KEY');
  const redirectUri = env('CUBBY_REDIRECT_URI');
  const accountId = env('CUBBY_ACCOUNT_ID');
  const scopes = ['account_info.read', 'files.metadata.read', 'files.content.read', 'files.content.write'];
  const state = `js${crypto.randomBytes(8).toString('hex')}`;

  const auth = new DropboxAuth({
    clientId: appKey, domain: API_HOST, domainDelimiter: '', fetch: recordingFetch,
  });
  const dbx = new Dropbox({ auth });

  await scenario('oauth', async (step) => {
    await step('DropboxAuth.getAuthenticationUrl (PKCE, offline)', async () => {
      const url = await auth.getAuthenticationUrl(redirectUri, state, 'code', 'offline', scopes, 'none', true);
      check(url.startsWith(`https://meta-${API_HOST}/oauth2/authorize?`), 'authorize URL', url);
      const q = new URL(url).searchParams;
      eq([q.get('response_type'), q.get('client_id'), q.get('code_challenge_method')],
        ['code', appKey, 'S256'], 'parameters');
      check(/^[A-Za-z0-9_-]{43}$/.test(q.get('code_challenge')), 'code_challenge', q.get('code_challenge'));
      emit({ authorize_url: url });
    });
    const code = await step('consent answered (code from the redirect)', async () => {
      const answer = JSON.parse(await readLine());
      if (answer.error) throw new CheckError(`the test could not get a code: ${answer.error}`);
      eq(answer.state, state, 'state');
      check(typeof answer.code === 'string' && answer.code, 'code', answer);
      return answer.code;
    });
    const tok = await step('DropboxAuth.getAccessTokenFromCode (PKCE, no secret)', async () => {
      const r = await auth.getAccessTokenFromCode(redirectUri, code);
      const t = r.result;
      check(typeof t.access_token === 'string' && t.access_token, 'access_token', t);
      check(typeof t.refresh_token === 'string' && t.refresh_token, 'refresh_token', t);
      eq(String(t.token_type).toLowerCase(), 'bearer', 'token_type');
      eq(t.expires_in, 14400, 'expires_in');
      eq(t.account_id, accountId, 'account_id');
      check(t.uid, 'uid', t);
      eq(String(t.scope).split(' ').sort(), [...scopes].sort(), 'scope');
      auth.setAccessToken(t.access_token);
      auth.setRefreshToken(t.refresh_token);
      auth.setAccessTokenExpiresAt(new Date(Date.now() + t.expires_in * 1000));
      return t;
    });
    await step('call with the access token', async () => {
      eq((await dbx.usersGetCurrentAccount()).result.account_id, accountId, 'account_id');
      eq(auth.getAccessToken(), tok.access_token, 'no refresh yet');
    });
    await step('refresh before a call (checkAndRefreshAccessToken, expired token)', async () => {
      auth.setAccessTokenExpiresAt(new Date(Date.now() - 60 * 1000));
      const r = (await dbx.filesListFolder({ path: '' })).result;
      check(Array.isArray(r.entries), 'entries', r);
      check(auth.getAccessToken() && auth.getAccessToken() !== tok.access_token, 'a new access token');
      const left = auth.getAccessTokenExpiresAt().getTime() - Date.now();
      check(left > 14400 * 1000 - 120000 && left <= 14400 * 1000, 'new expiry', left);
    });
    await step('refreshAccessToken with a narrower scope', async () => {
      const before = auth.getAccessToken();
      await auth.refreshAccessToken(['files.metadata.read']);
      check(auth.getAccessToken() !== before, 'a new access token');
      check(Array.isArray((await dbx.filesListFolder({ path: '' })).result.entries), 'list_folder');
      const body = await expectError(() => dbx.usersGetCurrentAccount(), 401, 'missing_scope');
      eq(body.error, { '.tag': 'missing_scope', required_scope: 'account_info.read' }, 'error');
    });
    await step('refreshAccessToken (the whole grant again) and a call', async () => {
      await auth.refreshAccessToken();
      eq((await dbx.usersGetCurrentAccount()).result.account_id, accountId, 'account_id');
    });
    await step('auth/token/revoke, then the token and its refresh token are dead', async () => {
      eq((await dbx.authTokenRevoke()).result, null, 'result');
      await expectError(() => dbx.usersGetCurrentAccount(), 401, 'invalid_access_token');
      await expectError(() => auth.refreshAccessToken(), 400, 'invalid_grant');
    });
    await step('error: getAccessTokenFromCode with a used code -> 400 invalid_grant', async () => {
      await expectError(() => auth.getAccessTokenFromCode(redirectUri, code), 400, 'invalid_grant');
    });
  });
}

// ---------------------------------------------------------------------------------------

const mode = process.argv[2];
const t0 = Date.now();
if (mode === 'api') await apiMode();
else if (mode === 'oauth') await oauthMode();
else {
  process.stderr.write('usage: node sdk_calls.mjs api|oauth\n');
  process.exit(2);
}
emit({
  summary: true, mode, passed, failed, skipped, ms: Date.now() - t0, requests_by_host: hostCounts,
});
process.exitCode = failed || skipped ? 1 : 0;
