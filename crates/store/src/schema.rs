//! The schema of both back-ends and their migrations, applied in order at open.
//!
//! Each migration runs once, recorded in `schema_migrations`. Never edit a released
//! migration; add a new one, to both lists. The two lists describe the same tables; they
//! differ only in dialect (types, `WITHOUT ROWID`, the "C" collation PostgreSQL needs so that
//! path ranges compare bytewise as they do in SQLite).

use sqlx::{PgPool, SqlitePool};

use crate::StoreError;

/// Rebuilds `blocks` from the references (SQLite): the 32-byte hashes of every revision's
/// block list, every upload session block and every session tail. A macro so that the
/// migration (a literal) and [`recount_refs`] share the text.
macro_rules! sqlite_recount_refs {
    () => {
        r#"
WITH RECURSIVE parts(id, i, n) AS (
    SELECT id, 0, length(blocks) / 32 FROM revisions WHERE length(blocks) >= 32
    UNION ALL SELECT id, i + 1, n FROM parts WHERE i + 1 < n
), refs(hash) AS (
    SELECT substr(r.blocks, p.i * 32 + 1, 32) FROM parts p JOIN revisions r ON r.id = p.id
    UNION ALL SELECT hash FROM upload_session_blocks
    UNION ALL SELECT tail FROM upload_sessions WHERE tail IS NOT NULL
)
INSERT INTO blocks (hash, refs) SELECT hash, COUNT(*) FROM refs GROUP BY hash;
"#
    };
}

/// [`sqlite_recount_refs`] for PostgreSQL.
macro_rules! postgres_recount_refs {
    () => {
        r#"
INSERT INTO blocks (hash, refs)
SELECT hash, COUNT(*) FROM (
    SELECT substring(r.blocks FROM i * 32 + 1 FOR 32) AS hash
        FROM revisions r, generate_series(0, length(r.blocks) / 32 - 1) AS i
    UNION ALL SELECT hash FROM upload_session_blocks
    UNION ALL SELECT tail FROM upload_sessions WHERE tail IS NOT NULL
) refs GROUP BY hash;
"#
    };
}

/// Fills an empty `blocks` table from the references (after `admin migrate` copied the
/// revisions; the sessions are not copied, so they add nothing there).
pub(crate) async fn recount_refs(db: &crate::db::Db) -> Result<(), StoreError> {
    match db {
        crate::db::Db::Sqlite { writer, .. } => {
            sqlx::raw_sql(sqlite_recount_refs!())
                .execute(writer)
                .await?;
        }
        crate::db::Db::Postgres { pool } => {
            sqlx::raw_sql(postgres_recount_refs!())
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

const SQLITE_MIGRATIONS: &[&str] = &[
    // 1: accounts, apps and tokens (designed for the OAuth issue), the namespace tree,
    // revisions and the change journal.
    r#"
CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);

-- One namespace per home folder; `seq` is the last journal sequence assigned in it.
CREATE TABLE namespaces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
);

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email TEXT NOT NULL,
    password_hash TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    ns INTEGER NOT NULL REFERENCES namespaces(id),
    created INTEGER NOT NULL
);

-- access_type: 'full' or 'app_folder'; scopes: space-separated; redirect_uris: JSON array.
CREATE TABLE apps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_key TEXT NOT NULL UNIQUE,
    secret_hash TEXT,
    name TEXT NOT NULL,
    access_type TEXT NOT NULL CHECK (access_type IN ('full', 'app_folder')),
    scopes TEXT NOT NULL,
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    public_client INTEGER NOT NULL DEFAULT 0,
    owner INTEGER REFERENCES accounts(id),
    created INTEGER NOT NULL
);

-- Tokens are stored as SHA-256 of the token; kind 'access' or 'refresh'. An access token
-- minted from a refresh token names it in `parent`, so revoking one revokes the family.
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    account INTEGER NOT NULL REFERENCES accounts(id),
    app INTEGER NOT NULL REFERENCES apps(id),
    scopes TEXT NOT NULL,
    parent INTEGER REFERENCES tokens(id),
    expires INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
);

-- The live tree plus tombstones (kind 2) for include_deleted. kind: 0 file, 1 folder, 2 deleted.
CREATE TABLE entries (
    ns INTEGER NOT NULL,
    path_lower TEXT NOT NULL,
    parent_lower TEXT NOT NULL,
    path_display TEXT NOT NULL,
    kind INTEGER NOT NULL,
    file_id TEXT,
    rev TEXT,
    revision INTEGER,
    size INTEGER NOT NULL DEFAULT 0,
    content_hash TEXT,
    client_modified INTEGER,
    server_modified INTEGER,
    PRIMARY KEY (ns, path_lower)
) WITHOUT ROWID;
CREATE INDEX entries_parent ON entries (ns, parent_lower, path_lower);
CREATE UNIQUE INDEX entries_file_id ON entries (file_id);

-- Every file version ever committed; `blocks` is the concatenation of 32-byte block hashes.
CREATE TABLE revisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ns INTEGER NOT NULL,
    rev TEXT NOT NULL,
    file_id TEXT NOT NULL,
    path_lower TEXT NOT NULL,
    path_display TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    client_modified INTEGER NOT NULL,
    server_modified INTEGER NOT NULL,
    blocks BLOB NOT NULL
);
CREATE UNIQUE INDEX revisions_rev ON revisions (ns, rev);
CREATE INDEX revisions_file ON revisions (file_id, id);

-- One operation takes one sequence number; it may touch several paths (idx 0, 1, ...).
CREATE TABLE journal (
    ns INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    path_lower TEXT NOT NULL,
    parent_lower TEXT NOT NULL,
    PRIMARY KEY (ns, seq, idx)
) WITHOUT ROWID;

-- The built-in full-access app used by `cubby admin token` without --app.
INSERT INTO apps (app_key, name, access_type, scopes, created)
VALUES ('cubby', 'Cubby', 'full',
        'account_info.read account_info.write files.metadata.read files.metadata.write files.content.read files.content.write files.permanent_delete sharing.read sharing.write',
        0);
"#,
    // 2: upload sessions. Sequential sessions keep full 4 MiB blocks plus a partial tail
    // block; concurrent ones keep blocks by index. Expired sessions answer not_found.
    r#"
CREATE TABLE upload_sessions (
    id TEXT PRIMARY KEY,
    account INTEGER NOT NULL REFERENCES accounts(id),
    concurrent INTEGER NOT NULL,
    length INTEGER NOT NULL DEFAULT 0,
    closed INTEGER NOT NULL DEFAULT 0,
    tail BLOB,
    tail_len INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE upload_session_blocks (
    session TEXT NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (session, idx)
) WITHOUT ROWID;
"#,
    // 3: async jobs (batches), so any server can answer a check.
    r#"
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    account INTEGER NOT NULL REFERENCES accounts(id),
    status TEXT NOT NULL,
    result TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
"#,
    // 4: one-time upload links (get_temporary_upload_link).
    r#"
CREATE TABLE upload_links (
    id TEXT PRIMARY KEY,
    ns INTEGER NOT NULL,
    commit_json TEXT NOT NULL,
    expires INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
"#,
    // 5: OAuth 2: authorization codes, per-user grants, web sign-in sessions, and whether a
    // refresh token came from a PKCE exchange (then it refreshes without a secret).
    r#"
ALTER TABLE tokens ADD COLUMN pkce INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tokens_parent ON tokens (parent);
CREATE TABLE oauth_codes (
    code_hash BLOB PRIMARY KEY,
    app INTEGER NOT NULL REFERENCES apps(id),
    account INTEGER NOT NULL REFERENCES accounts(id),
    scopes TEXT NOT NULL,
    redirect_uri TEXT,
    challenge TEXT,
    challenge_method TEXT,
    access_type TEXT NOT NULL,
    expires INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    token INTEGER
);
CREATE TABLE grants (
    account INTEGER NOT NULL REFERENCES accounts(id),
    app INTEGER NOT NULL REFERENCES apps(id),
    scopes TEXT NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (account, app)
);
CREATE TABLE web_sessions (
    id_hash BLOB PRIMARY KEY,
    account INTEGER NOT NULL REFERENCES accounts(id),
    csrf TEXT NOT NULL,
    expires INTEGER NOT NULL
);
"#,
    // 6: copy references (copy_reference/get and save): the digest of the reference, the
    // namespace and file id of its source, and the revision a file reference is bound to.
    r#"
CREATE TABLE copy_refs (
    ref_hash BLOB PRIMARY KEY,
    ns INTEGER NOT NULL,
    account INTEGER NOT NULL REFERENCES accounts(id),
    file_id TEXT NOT NULL,
    revision INTEGER,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
);
"#,
    // 7: quotas. `namespaces.used` is the logical size of the live files, kept by every
    // write in its own transaction; `accounts.quota` is the operator's limit (NULL: none).
    r#"
ALTER TABLE namespaces ADD COLUMN used INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN quota INTEGER;
CREATE INDEX accounts_ns ON accounts (ns);
UPDATE namespaces SET used = (SELECT COALESCE(SUM(size), 0) FROM entries WHERE entries.ns = namespaces.id AND entries.kind = 0);
"#,
    // 8: shared links. A link names a file id of a namespace (so it follows moves); its token
    // is derived from `nonce` with the installation's link key and stored as a digest for
    // lookup; a password is an Argon2id hash. One link per account and item.
    r#"
CREATE TABLE shared_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB NOT NULL UNIQUE,
    nonce BLOB NOT NULL,
    ns INTEGER NOT NULL,
    account INTEGER NOT NULL REFERENCES accounts(id),
    file_id TEXT NOT NULL,
    audience TEXT NOT NULL CHECK (audience IN ('public', 'no_one')),
    password_hash TEXT,
    expires INTEGER,
    allow_download INTEGER NOT NULL DEFAULT 1,
    created INTEGER NOT NULL
);
CREATE UNIQUE INDEX shared_links_item ON shared_links (account, file_id);
CREATE INDEX shared_links_file ON shared_links (ns, file_id);
"#,
    // 9: block reference counts. `refs` counts the references to a block from revisions'
    // block lists and from upload sessions (their blocks and tail); it is kept by every write
    // in the transaction that adds or drops a reference. Negative values are the GC's states:
    // -1 claimed for deletion, -2 deleted (see gc.rs). `zero_since` is when refs last became 0
    // (or, for -1 and -2, when the state was entered). Backfilled from the existing rows.
    concat!(
        r#"
CREATE TABLE blocks (
    hash BLOB PRIMARY KEY,
    refs INTEGER NOT NULL,
    zero_since INTEGER
) WITHOUT ROWID;
CREATE INDEX blocks_unreferenced ON blocks (refs, zero_since) WHERE refs <= 0;
"#,
        sqlite_recount_refs!()
    ),
    // 10: the built-in app of the `cubby` command line: a public client (PKCE, no secret)
    // with full access, whose loopback redirect takes any port (RFC 8252).
    r#"
INSERT INTO apps (app_key, name, access_type, scopes, redirect_uris, public_client, created)
VALUES ('cubby-cli', 'Cubby command line', 'full',
        'account_info.read account_info.write files.metadata.read files.metadata.write files.content.read files.content.write files.permanent_delete sharing.read sharing.write',
        '["http://127.0.0.1/callback"]', 1, 0);
"#,
    // 11: a session started closed with a few bytes keeps them in its row (`data`, with
    // their block hash in `data_hash`) until it is finished; such bytes are no block, so
    // they count no reference.
    r#"
ALTER TABLE upload_sessions ADD COLUMN data BLOB;
ALTER TABLE upload_sessions ADD COLUMN data_hash BLOB;
"#,
    // 12: small blocks kept in the database (`small.rs`): the bytes of files committed from
    // sessions started closed; `created` plays the part of an object's modification time.
    r#"
CREATE TABLE small_blocks (
    hash    BLOB PRIMARY KEY,
    created INTEGER NOT NULL,
    data    BLOB NOT NULL
);
"#,
    // 13: a session started closed with a few bytes writes them as a small block at once,
    // and keeps only their hash (`data_hash`); bytes still held in rows move to small
    // blocks, made young as a start makes them (so the GC keeps them while the session may
    // be finished, `gc.rs`).
    r#"
INSERT INTO small_blocks (hash, created, data)
SELECT data_hash, CAST(strftime('%s', 'now') AS INTEGER), data FROM upload_sessions
WHERE data IS NOT NULL AND finished = 0
ON CONFLICT (hash) DO UPDATE SET created = excluded.created;
ALTER TABLE upload_sessions DROP COLUMN data;
"#,
    // 14: derived data of images (`thumbs.rs`), keyed by content hash: thumbnails (each an
    // ordinary block, whose reference the row counts) and what a photo's header says. `source`
    // is the first block of the content; the rows go when the GC claims it.
    r#"
CREATE TABLE thumbnails (
    content_hash TEXT NOT NULL,
    spec         TEXT NOT NULL,
    source       BLOB NOT NULL,
    hash         BLOB NOT NULL,
    created      INTEGER NOT NULL,
    PRIMARY KEY (content_hash, spec)
);
CREATE INDEX thumbnails_source ON thumbnails (source);
CREATE TABLE media_info (
    content_hash TEXT PRIMARY KEY,
    source       BLOB NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    taken        INTEGER,
    lat_e6       INTEGER,
    lon_e6       INTEGER
);
CREATE INDEX media_info_source ON media_info (source);
"#,
    // 15: operators: an account that sees the web app's admin page (`cubby admin user add
    // --operator`, `cubby admin user operator`).
    r#"
ALTER TABLE accounts ADD COLUMN operator INTEGER NOT NULL DEFAULT 0;
"#,
    // 16: path keys in Unicode NFC (see `cubby_core::path::lower`). The work is Rust's:
    // `rekey_nfc!` runs in this migration's transaction.
    "SELECT 1;",
    // 17: a sequential session keeps the bytes past its full blocks in its row, replaced by
    // each append, instead of as a partial block each append re-cut (see sessions.rs).
    r#"
ALTER TABLE upload_sessions ADD COLUMN tail_data BLOB;
"#,
    // 18: shared folders (see folders.rs). A shared folder is a namespace of its own, named
    // on the wire by its id; each member's row says how they may use it and, once mounted,
    // where it sits in their home (a folder entry there, the mount point).
    r#"
CREATE TABLE shared_folders (
    ns INTEGER PRIMARY KEY REFERENCES namespaces(id),
    owner INTEGER NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    member_policy TEXT NOT NULL DEFAULT 'anyone',
    acl_update_policy TEXT NOT NULL DEFAULT 'owner',
    shared_link_policy TEXT NOT NULL DEFAULT 'anyone',
    created INTEGER NOT NULL
);
CREATE TABLE folder_members (
    ns INTEGER NOT NULL REFERENCES shared_folders(ns),
    account INTEGER NOT NULL REFERENCES accounts(id),
    access TEXT NOT NULL CHECK (access IN ('owner', 'editor', 'viewer')),
    mount_lower TEXT,
    invited INTEGER NOT NULL,
    PRIMARY KEY (ns, account)
);
CREATE INDEX folder_members_account ON folder_members (account);
"#,
    // 19: WebDAV (see dav.rs): app passwords (a device's own revocable password, kept as a
    // digest, optionally limited to one folder or to reading), dead properties kept by the
    // entry's id (so they follow a move), locks kept here so every server honours them, and
    // Nextcloud's chunked uploads (each an upload session, with the chunks' names and sizes)
    // and sign-ins through its Login Flow v2 (tokens as digests; no password is kept: the app
    // password is made when the client collects it).
    r#"
CREATE TABLE app_passwords (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account INTEGER NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    folder TEXT NOT NULL DEFAULT '',
    read_only INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    last_used INTEGER
);
CREATE INDEX app_passwords_account ON app_passwords (account);
CREATE TABLE dav_props (
    entry_id TEXT NOT NULL,
    name TEXT NOT NULL,
    xml BLOB NOT NULL,
    PRIMARY KEY (entry_id, name)
);
CREATE TABLE dav_locks (
    token TEXT PRIMARY KEY,
    account INTEGER NOT NULL REFERENCES accounts(id),
    path TEXT NOT NULL,
    principal TEXT,
    owner TEXT,
    shared INTEGER NOT NULL,
    deep INTEGER NOT NULL,
    expires INTEGER
);
CREATE INDEX dav_locks_account ON dav_locks (account);
CREATE TABLE dav_uploads (
    account INTEGER NOT NULL REFERENCES accounts(id),
    transfer TEXT NOT NULL,
    session TEXT NOT NULL,
    chunks TEXT NOT NULL DEFAULT '[]',
    created INTEGER NOT NULL,
    PRIMARY KEY (account, transfer)
);
CREATE TABLE login_flows (
    poll_hash BLOB PRIMARY KEY,
    login_hash BLOB NOT NULL UNIQUE,
    client TEXT NOT NULL,
    account INTEGER REFERENCES accounts(id),
    created INTEGER NOT NULL
);
"#,
];

const POSTGRES_MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE settings (key TEXT PRIMARY KEY, value BYTEA NOT NULL);

CREATE TABLE namespaces (
    id BIGSERIAL PRIMARY KEY,
    seq BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL
);

CREATE TABLE accounts (
    id BIGSERIAL PRIMARY KEY,
    account_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    password_hash TEXT,
    disabled BIGINT NOT NULL DEFAULT 0,
    ns BIGINT NOT NULL REFERENCES namespaces(id),
    created BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_name ON accounts (lower(name));

CREATE TABLE apps (
    id BIGSERIAL PRIMARY KEY,
    app_key TEXT NOT NULL UNIQUE,
    secret_hash TEXT,
    name TEXT NOT NULL,
    access_type TEXT NOT NULL CHECK (access_type IN ('full', 'app_folder')),
    scopes TEXT NOT NULL,
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    public_client BIGINT NOT NULL DEFAULT 0,
    owner BIGINT REFERENCES accounts(id),
    created BIGINT NOT NULL
);

CREATE TABLE tokens (
    id BIGSERIAL PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    account BIGINT NOT NULL REFERENCES accounts(id),
    app BIGINT NOT NULL REFERENCES apps(id),
    scopes TEXT NOT NULL,
    parent BIGINT REFERENCES tokens(id),
    expires BIGINT,
    revoked BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL
);

CREATE TABLE entries (
    ns BIGINT NOT NULL,
    path_lower TEXT COLLATE "C" NOT NULL,
    parent_lower TEXT COLLATE "C" NOT NULL,
    path_display TEXT NOT NULL,
    kind BIGINT NOT NULL,
    file_id TEXT,
    rev TEXT,
    revision BIGINT,
    size BIGINT NOT NULL DEFAULT 0,
    content_hash TEXT,
    client_modified BIGINT,
    server_modified BIGINT,
    PRIMARY KEY (ns, path_lower)
);
CREATE INDEX entries_parent ON entries (ns, parent_lower, path_lower);
CREATE UNIQUE INDEX entries_file_id ON entries (file_id);

CREATE TABLE revisions (
    id BIGSERIAL PRIMARY KEY,
    ns BIGINT NOT NULL,
    rev TEXT NOT NULL,
    file_id TEXT NOT NULL,
    path_lower TEXT COLLATE "C" NOT NULL,
    path_display TEXT NOT NULL,
    size BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    client_modified BIGINT NOT NULL,
    server_modified BIGINT NOT NULL,
    blocks BYTEA NOT NULL
);
CREATE UNIQUE INDEX revisions_rev ON revisions (ns, rev);
CREATE INDEX revisions_file ON revisions (file_id, id);

CREATE TABLE journal (
    ns BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    path_lower TEXT COLLATE "C" NOT NULL,
    parent_lower TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (ns, seq, idx)
);

INSERT INTO apps (app_key, name, access_type, scopes, created)
VALUES ('cubby', 'Cubby', 'full',
        'account_info.read account_info.write files.metadata.read files.metadata.write files.content.read files.content.write files.permanent_delete sharing.read sharing.write',
        0);
"#,
    r#"
CREATE TABLE upload_sessions (
    id TEXT PRIMARY KEY,
    account BIGINT NOT NULL REFERENCES accounts(id),
    concurrent BIGINT NOT NULL,
    length BIGINT NOT NULL DEFAULT 0,
    closed BIGINT NOT NULL DEFAULT 0,
    tail BYTEA,
    tail_len BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    finished BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE upload_session_blocks (
    session TEXT NOT NULL,
    idx BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (session, idx)
);
"#,
    r#"
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    account BIGINT NOT NULL REFERENCES accounts(id),
    status TEXT NOT NULL,
    result TEXT,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
"#,
    r#"
CREATE TABLE upload_links (
    id TEXT PRIMARY KEY,
    ns BIGINT NOT NULL,
    commit_json TEXT NOT NULL,
    expires BIGINT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0
);
"#,
    // 5: OAuth 2: authorization codes, per-user grants, web sign-in sessions, and whether a
    // refresh token came from a PKCE exchange (then it refreshes without a secret).
    r#"
ALTER TABLE tokens ADD COLUMN pkce BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tokens_parent ON tokens (parent);
CREATE TABLE oauth_codes (
    code_hash BYTEA PRIMARY KEY,
    app BIGINT NOT NULL REFERENCES apps(id),
    account BIGINT NOT NULL REFERENCES accounts(id),
    scopes TEXT NOT NULL,
    redirect_uri TEXT,
    challenge TEXT,
    challenge_method TEXT,
    access_type TEXT NOT NULL,
    expires BIGINT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    token BIGINT
);
CREATE TABLE grants (
    account BIGINT NOT NULL REFERENCES accounts(id),
    app BIGINT NOT NULL REFERENCES apps(id),
    scopes TEXT NOT NULL,
    updated BIGINT NOT NULL,
    PRIMARY KEY (account, app)
);
CREATE TABLE web_sessions (
    id_hash BYTEA PRIMARY KEY,
    account BIGINT NOT NULL REFERENCES accounts(id),
    csrf TEXT NOT NULL,
    expires BIGINT NOT NULL
);
"#,
    // 6: copy references (copy_reference/get and save): the digest of the reference, the
    // namespace and file id of its source, and the revision a file reference is bound to.
    r#"
CREATE TABLE copy_refs (
    ref_hash BYTEA PRIMARY KEY,
    ns BIGINT NOT NULL,
    account BIGINT NOT NULL REFERENCES accounts(id),
    file_id TEXT NOT NULL,
    revision BIGINT,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
"#,
    // 7: quotas. `namespaces.used` is the logical size of the live files, kept by every
    // write in its own transaction; `accounts.quota` is the operator's limit (NULL: none).
    r#"
ALTER TABLE namespaces ADD COLUMN used BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN quota BIGINT;
CREATE INDEX accounts_ns ON accounts (ns);
UPDATE namespaces SET used = (SELECT COALESCE(SUM(size), 0) FROM entries WHERE entries.ns = namespaces.id AND entries.kind = 0);
"#,
    // 8: shared links. A link names a file id of a namespace (so it follows moves); its token
    // is derived from `nonce` with the installation's link key and stored as a digest for
    // lookup; a password is an Argon2id hash. One link per account and item.
    r#"
CREATE TABLE shared_links (
    id BIGSERIAL PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    nonce BYTEA NOT NULL,
    ns BIGINT NOT NULL,
    account BIGINT NOT NULL REFERENCES accounts(id),
    file_id TEXT NOT NULL,
    audience TEXT NOT NULL CHECK (audience IN ('public', 'no_one')),
    password_hash TEXT,
    expires BIGINT,
    allow_download BIGINT NOT NULL DEFAULT 1,
    created BIGINT NOT NULL
);
CREATE UNIQUE INDEX shared_links_item ON shared_links (account, file_id);
CREATE INDEX shared_links_file ON shared_links (ns, file_id);
"#,
    // 9: block reference counts (see the SQLite migration 9).
    concat!(
        r#"
CREATE TABLE blocks (
    hash BYTEA PRIMARY KEY,
    refs BIGINT NOT NULL,
    zero_since BIGINT
);
CREATE INDEX blocks_unreferenced ON blocks (refs, zero_since) WHERE refs <= 0;
"#,
        postgres_recount_refs!()
    ),
    // 10: the built-in command-line app (see the SQLite migration 10).
    r#"
INSERT INTO apps (app_key, name, access_type, scopes, redirect_uris, public_client, created)
VALUES ('cubby-cli', 'Cubby command line', 'full',
        'account_info.read account_info.write files.metadata.read files.metadata.write files.content.read files.content.write files.permanent_delete sharing.read sharing.write',
        '["http://127.0.0.1/callback"]', 1, 0);
"#,
    // 11: inline session bytes (see the SQLite migration 11).
    r#"
ALTER TABLE upload_sessions ADD COLUMN data BYTEA;
ALTER TABLE upload_sessions ADD COLUMN data_hash BYTEA;
"#,
    // 12: small blocks (see the SQLite migration 12).
    r#"
CREATE TABLE small_blocks (
    hash    BYTEA PRIMARY KEY,
    created BIGINT NOT NULL,
    data    BYTEA NOT NULL
);
"#,
    // 13: inline session bytes become small blocks at the start (see the SQLite migration 13).
    r#"
INSERT INTO small_blocks (hash, created, data)
SELECT data_hash, CAST(EXTRACT(EPOCH FROM now()) AS BIGINT), data FROM upload_sessions
WHERE data IS NOT NULL AND finished = 0
ON CONFLICT (hash) DO UPDATE SET created = excluded.created;
ALTER TABLE upload_sessions DROP COLUMN data;
"#,
    // 14: derived data of images (see the SQLite migration 14).
    r#"
CREATE TABLE thumbnails (
    content_hash TEXT COLLATE "C" NOT NULL,
    spec         TEXT COLLATE "C" NOT NULL,
    source       BYTEA NOT NULL,
    hash         BYTEA NOT NULL,
    created      BIGINT NOT NULL,
    PRIMARY KEY (content_hash, spec)
);
CREATE INDEX thumbnails_source ON thumbnails (source);
CREATE TABLE media_info (
    content_hash TEXT COLLATE "C" PRIMARY KEY,
    source       BYTEA NOT NULL,
    width        BIGINT NOT NULL,
    height       BIGINT NOT NULL,
    taken        BIGINT,
    lat_e6       BIGINT,
    lon_e6       BIGINT
);
CREATE INDEX media_info_source ON media_info (source);
"#,
    // 15: operators (see the SQLite migration 15).
    r#"
ALTER TABLE accounts ADD COLUMN operator BIGINT NOT NULL DEFAULT 0;
"#,
    // 16: path keys in Unicode NFC (see the SQLite migration 16).
    "SELECT 1;",
    // 17: a session's rest in its row (see the SQLite migration 17).
    r#"
ALTER TABLE upload_sessions ADD COLUMN tail_data BYTEA;
"#,
    // 18: shared folders (see the SQLite migration 18).
    r#"
CREATE TABLE shared_folders (
    ns BIGINT PRIMARY KEY REFERENCES namespaces(id),
    owner BIGINT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    member_policy TEXT NOT NULL DEFAULT 'anyone',
    acl_update_policy TEXT NOT NULL DEFAULT 'owner',
    shared_link_policy TEXT NOT NULL DEFAULT 'anyone',
    created BIGINT NOT NULL
);
CREATE TABLE folder_members (
    ns BIGINT NOT NULL REFERENCES shared_folders(ns),
    account BIGINT NOT NULL REFERENCES accounts(id),
    access TEXT NOT NULL CHECK (access IN ('owner', 'editor', 'viewer')),
    mount_lower TEXT COLLATE "C",
    invited BIGINT NOT NULL,
    PRIMARY KEY (ns, account)
);
CREATE INDEX folder_members_account ON folder_members (account);
"#,
    // 19: WebDAV (see the SQLite migration 19).
    r#"
CREATE TABLE app_passwords (
    id BIGSERIAL PRIMARY KEY,
    account BIGINT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    digest BYTEA NOT NULL UNIQUE,
    folder TEXT NOT NULL DEFAULT '',
    read_only BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL,
    last_used BIGINT
);
CREATE INDEX app_passwords_account ON app_passwords (account);
CREATE TABLE dav_props (
    entry_id TEXT NOT NULL,
    name TEXT NOT NULL,
    xml BYTEA NOT NULL,
    PRIMARY KEY (entry_id, name)
);
CREATE TABLE dav_locks (
    token TEXT PRIMARY KEY,
    account BIGINT NOT NULL REFERENCES accounts(id),
    path TEXT COLLATE "C" NOT NULL,
    principal TEXT,
    owner TEXT,
    shared BIGINT NOT NULL,
    deep BIGINT NOT NULL,
    expires BIGINT
);
CREATE INDEX dav_locks_account ON dav_locks (account);
CREATE TABLE dav_uploads (
    account BIGINT NOT NULL REFERENCES accounts(id),
    transfer TEXT NOT NULL,
    session TEXT NOT NULL,
    chunks TEXT NOT NULL DEFAULT '[]',
    created BIGINT NOT NULL,
    PRIMARY KEY (account, transfer)
);
CREATE TABLE login_flows (
    poll_hash BYTEA PRIMARY KEY,
    login_hash BYTEA NOT NULL UNIQUE,
    client TEXT NOT NULL,
    account BIGINT REFERENCES accounts(id),
    created BIGINT NOT NULL
);
"#,
];

/// The migration whose transaction also runs [`rekey_nfc!`].
const NFC_KEYS: i64 = 16;

/// Rows re-keyed per page by [`rekey_nfc!`].
const REKEY_PAGE: i64 = 1000;

/// Migration 16's data step, on the migration's transaction `$c` (either back-end): every
/// stored path key (`entries`, `revisions`, `journal`) becomes `cubby_core::path::lower` of
/// itself, which puts the keys of names written in decomposed Unicode (macOS's NFD) in NFC.
/// Keys are paged through in their own order, so a tree of any size is never held in memory.
/// Were a name stored in both forms in one folder, the decomposed one and everything under it
/// keep their old keys (listed, and reachable by id, so a rename sorts it out) and a warning
/// names it; nothing is dropped. Evaluates to the number of re-keyed entries.
macro_rules! rekey_nfc {
    ($c:expr) => {{
        use cubby_core::path::lower;
        let c = $c;
        // (ns, key) of decomposed entries left as they were, with their subtrees.
        let mut kept: Vec<(i64, String)> = Vec::new();
        let under_kept = |kept: &[(i64, String)], ns: i64, key: &str| {
            kept.iter().any(|(n, k)| {
                *n == ns && key.len() > k.len() && key.starts_with(k.as_str()) && key.as_bytes()[k.len()] == b'/'
            })
        };
        let mut rekeyed = 0u64;
        let (mut ns, mut key) = (i64::MIN, String::new());
        loop {
            let page: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT ns, path_lower, parent_lower FROM entries WHERE (ns, path_lower) > ($1, $2) \
                 ORDER BY ns, path_lower LIMIT $3",
            )
            .bind(ns)
            .bind(&key)
            .bind(REKEY_PAGE)
            .fetch_all(&mut *c)
            .await?;
            let Some(last) = page.last() else { break };
            (ns, key) = (last.0, last.1.clone());
            for (n, old, parent) in page {
                let new = lower(&old);
                if new == old {
                    continue;
                }
                let taken: Option<i64> =
                    sqlx::query_scalar(
                        "SELECT CAST(1 AS BIGINT) FROM entries WHERE ns = $1 AND path_lower = $2",
                    )
                        .bind(n)
                        .bind(&new)
                        .fetch_optional(&mut *c)
                        .await?;
                if taken.is_some() || under_kept(&kept, n, &old) {
                    if taken.is_some() {
                        tracing::warn!(
                            ns = n,
                            path = %old,
                            "two names differ only in Unicode normalization; the decomposed one keeps its old key (rename it)"
                        );
                        kept.push((n, old));
                    }
                    continue;
                }
                sqlx::query(
                    "UPDATE entries SET path_lower = $1, parent_lower = $2 WHERE ns = $3 AND path_lower = $4",
                )
                .bind(&new)
                .bind(lower(&parent))
                .bind(n)
                .bind(&old)
                .execute(&mut *c)
                .await?;
                rekeyed += 1;
            }
        }
        let mut id = i64::MIN;
        loop {
            let page: Vec<(i64, i64, String)> = sqlx::query_as(
                "SELECT id, ns, path_lower FROM revisions WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(id)
            .bind(REKEY_PAGE)
            .fetch_all(&mut *c)
            .await?;
            let Some(last) = page.last() else { break };
            id = last.0;
            for (rid, n, old) in page {
                let new = lower(&old);
                let is_kept = kept.iter().any(|(kn, k)| *kn == n && *k == old);
                if new != old && !is_kept && !under_kept(&kept, n, &old) {
                    sqlx::query("UPDATE revisions SET path_lower = $1 WHERE id = $2")
                        .bind(&new)
                        .bind(rid)
                        .execute(&mut *c)
                        .await?;
                }
            }
        }
        let (mut ns, mut seq, mut idx) = (i64::MIN, i64::MIN, i64::MIN);
        loop {
            let page: Vec<(i64, i64, i64, String, String)> = sqlx::query_as(
                "SELECT ns, seq, idx, path_lower, parent_lower FROM journal \
                 WHERE (ns, seq, idx) > ($1, $2, $3) ORDER BY ns, seq, idx LIMIT $4",
            )
            .bind(ns)
            .bind(seq)
            .bind(idx)
            .bind(REKEY_PAGE)
            .fetch_all(&mut *c)
            .await?;
            let Some(last) = page.last() else { break };
            (ns, seq, idx) = (last.0, last.1, last.2);
            for (n, sq, ix, old, parent) in page {
                let new = lower(&old);
                let is_kept = kept.iter().any(|(kn, k)| *kn == n && *k == old);
                if new != old && !is_kept && !under_kept(&kept, n, &old) {
                    sqlx::query(
                        "UPDATE journal SET path_lower = $1, parent_lower = $2 \
                         WHERE ns = $3 AND seq = $4 AND idx = $5",
                    )
                    .bind(&new)
                    .bind(lower(&parent))
                    .bind(n)
                    .bind(sq)
                    .bind(ix)
                    .execute(&mut *c)
                    .await?;
                }
            }
        }
        rekeyed
    }};
}

/// Key of the advisory lock that lets one of several starting servers migrate at a time.
const PG_MIGRATION_LOCK: i64 = 0x6375_6262_7900;

pub(crate) async fn migrate_postgres(pool: &PgPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(PG_MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = async {
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
            .execute(&mut *conn)
            .await?;
        let done: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                .fetch_one(&mut *conn)
                .await?;
        for (i, sql) in POSTGRES_MIGRATIONS.iter().enumerate() {
            let version = i as i64 + 1;
            if version <= done {
                continue;
            }
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
            if version == NFC_KEYS {
                rekey_nfc!(&mut *tx);
            }
            sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
                .bind(version)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok::<_, sqlx::Error>(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(PG_MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(result?)
}

pub(crate) async fn migrate_sqlite(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        .execute(pool)
        .await?;
    let done: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        .fetch_one(pool)
        .await?;
    for (i, sql) in SQLITE_MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= done {
            continue;
        }
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        if version == NFC_KEYS {
            rekey_nfc!(&mut *tx);
        }
        sqlx::query("INSERT INTO schema_migrations (version) VALUES (?)")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with the SQLite migrations before `n` applied, and one account (id 1, in
    /// namespace 1).
    async fn migrated_before(n: usize) -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = SqlitePool::connect(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("m.sqlite").display()
        ))
        .await
        .unwrap();
        for sql in &SQLITE_MIGRATIONS[..n] {
            sqlx::raw_sql(*sql).execute(&pool).await.unwrap();
        }
        sqlx::raw_sql(
            "INSERT INTO namespaces (id, created) VALUES (1, 0); \
             INSERT INTO accounts (id, account_id, name, email, ns, created) VALUES (1, 'dbid:u', 'u', 'u@e', 1, 0);",
        )
        .execute(&pool)
        .await
        .unwrap();
        (dir, pool)
    }

    /// Migration 16 re-keys paths written in decomposed Unicode to NFC in entries, revisions
    /// and the journal, keeps display names, and leaves a name that would collide (and its
    /// subtree) as it was rather than drop anything.
    #[tokio::test]
    async fn the_nfc_migration_rekeys_decomposed_paths() -> Result<(), sqlx::Error> {
        let (_dir, pool) = migrated_before(NFC_KEYS as usize - 1).await;
        let nfd = "/cafe\u{301}";
        let nfc = "/caf\u{e9}";
        let rows = [
            // (path_lower, parent_lower, path_display)
            (nfd.to_owned(), String::new(), "/Cafe\u{301}".to_owned()),
            (
                format!("{nfd}/x.txt"),
                nfd.to_owned(),
                "/Cafe\u{301}/x.txt".to_owned(),
            ),
            ("/plain".to_owned(), String::new(), "/Plain".to_owned()),
            // A folder holding one name in both forms.
            ("/both".to_owned(), String::new(), "/both".to_owned()),
            (
                format!("/both{nfc}"),
                "/both".to_owned(),
                format!("/both{nfc}"),
            ),
            (
                format!("/both{nfd}"),
                "/both".to_owned(),
                format!("/both{nfd}"),
            ),
            (
                format!("/both{nfd}/in"),
                format!("/both{nfd}"),
                format!("/both{nfd}/in"),
            ),
        ];
        for (i, (key, parent, display)) in rows.iter().enumerate() {
            sqlx::query(
                "INSERT INTO entries (ns, path_lower, parent_lower, path_display, kind, file_id) \
                 VALUES (1, ?, ?, ?, 1, ?)",
            )
            .bind(key)
            .bind(parent)
            .bind(display)
            .bind(format!("id:{i}"))
            .execute(&pool)
            .await?;
            sqlx::query(
                "INSERT INTO journal (ns, seq, idx, path_lower, parent_lower) VALUES (1, ?, 0, ?, ?)",
            )
            .bind(i as i64 + 1)
            .bind(key)
            .bind(parent)
            .execute(&pool)
            .await?;
        }
        sqlx::query(
            "INSERT INTO revisions (ns, rev, file_id, path_lower, path_display, size, \
             content_hash, client_modified, server_modified, blocks) \
             VALUES (1, 'r1', 'id:1', ?, ?, 0, '', 0, 0, x'')",
        )
        .bind(format!("{nfd}/x.txt"))
        .bind("/Cafe\u{301}/x.txt")
        .execute(&pool)
        .await?;
        let mut tx = pool.begin().await?;
        let rekeyed = rekey_nfc!(&mut *tx);
        tx.commit().await?;
        assert_eq!(rekeyed, 2);

        let entries: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT path_lower, parent_lower, path_display FROM entries ORDER BY file_id",
        )
        .fetch_all(&pool)
        .await?;
        let want = |k: &str, p: &str, d: &str| (k.to_owned(), p.to_owned(), d.to_owned());
        assert_eq!(
            entries,
            vec![
                want(nfc, "", "/Cafe\u{301}"),
                want(&format!("{nfc}/x.txt"), nfc, "/Cafe\u{301}/x.txt"),
                want("/plain", "", "/Plain"),
                want("/both", "", "/both"),
                want(&format!("/both{nfc}"), "/both", &format!("/both{nfc}")),
                want(&format!("/both{nfd}"), "/both", &format!("/both{nfd}")),
                want(
                    &format!("/both{nfd}/in"),
                    &format!("/both{nfd}"),
                    &format!("/both{nfd}/in")
                ),
            ]
        );
        let journal: Vec<(String, String)> =
            sqlx::query_as("SELECT path_lower, parent_lower FROM journal ORDER BY seq")
                .fetch_all(&pool)
                .await?;
        let keys: Vec<(String, String)> = entries.into_iter().map(|(k, p, _)| (k, p)).collect();
        assert_eq!(journal, keys);
        let revision: String = sqlx::query_scalar("SELECT path_lower FROM revisions")
            .fetch_one(&pool)
            .await?;
        assert_eq!(revision, format!("{nfc}/x.txt"));
        Ok(())
    }

    /// An installation from before reference counts gets them from its revisions and
    /// upload sessions when the migration runs.
    #[tokio::test]
    async fn the_refcount_migration_counts_existing_references() {
        let refcounts = SQLITE_MIGRATIONS
            .iter()
            .position(|m| m.contains("CREATE TABLE blocks"))
            .unwrap();
        let (_dir, pool) = migrated_before(refcounts).await;
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let revision = |blocks: Vec<[u8; 32]>, rev: &'static str| {
            sqlx::query(
                "INSERT INTO revisions (ns, rev, file_id, path_lower, path_display, size, \
                 content_hash, client_modified, server_modified, blocks) \
                 VALUES (1, ?, 'id:x', '/f', '/f', 0, '', 0, 0, ?)",
            )
            .bind(rev)
            .bind(blocks.concat())
        };
        revision(vec![a, b, a], "r1").execute(&pool).await.unwrap();
        revision(vec![b], "r2").execute(&pool).await.unwrap();
        revision(vec![], "r3").execute(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO upload_sessions (id, account, concurrent, length, closed, tail, tail_len, created, expires) \
             VALUES ('s', 1, 0, 5, 0, ?, 5, 0, 0)",
        )
        .bind(c.to_vec())
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO upload_session_blocks (session, idx, hash, size) VALUES ('s', 0, ?, 4)",
        )
        .bind(a.to_vec())
        .execute(&pool)
        .await
        .unwrap();
        sqlx::raw_sql(SQLITE_MIGRATIONS[refcounts])
            .execute(&pool)
            .await
            .unwrap();
        let counts: Vec<(Vec<u8>, i64)> =
            sqlx::query_as("SELECT hash, refs FROM blocks ORDER BY hash")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(
            counts,
            vec![(a.to_vec(), 3), (b.to_vec(), 2), (c.to_vec(), 1)]
        );
    }

    /// Sessions started before small blocks were written at the start keep working: their
    /// bytes move from the row to a small block, which the GC's rules then protect.
    #[tokio::test]
    async fn inline_bytes_move_to_small_blocks() {
        let last = SQLITE_MIGRATIONS
            .iter()
            .position(|m| m.contains("INSERT INTO small_blocks"))
            .unwrap();
        let (_dir, pool) = migrated_before(last).await;
        let (h, spent) = ([4u8; 32], [5u8; 32]);
        for (id, hash, finished) in [("open", h, 0), ("twin", h, 0), ("spent", spent, 1)] {
            sqlx::query(
                "INSERT INTO upload_sessions (id, account, concurrent, length, closed, data, data_hash, \
                 created, expires, finished) VALUES (?, 1, 0, 3, 1, x'616263', ?, 7, 9, ?)",
            )
            .bind(id)
            .bind(hash.to_vec())
            .bind(finished)
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::raw_sql(SQLITE_MIGRATIONS[last])
            .execute(&pool)
            .await
            .unwrap();
        let small: Vec<(Vec<u8>, i64, Vec<u8>)> =
            sqlx::query_as("SELECT hash, created, data FROM small_blocks")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(small.len(), 1);
        assert_eq!((&small[0].0, &small[0].2), (&h.to_vec(), &b"abc".to_vec()));
        assert!(small[0].1 >= crate::now() - 60, "young: {}", small[0].1);
        let kept: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT id, data_hash FROM upload_sessions ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[0], ("open".to_owned(), h.to_vec()));
        assert!(
            sqlx::query("SELECT data FROM upload_sessions")
                .fetch_all(&pool)
                .await
                .is_err(),
            "the column is gone"
        );
    }
}
