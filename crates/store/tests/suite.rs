//! The store's test suite, run against every back-end combination: SQLite with local disk
//! always, and PostgreSQL with S3 when `CUBBY_TEST_PG_URL` and `CUBBY_TEST_S3_URL` are set
//! (`scripts/test` sets them in its scale-out phase).

use cubby_store::meta::{Commit, WriteMode};
use cubby_store::{Store, StoreConfig};

/// Two independent store instances over the same back-ends, as two servers would have.
async fn two_stores(dir: &std::path::Path) -> Vec<(String, Store, Store)> {
    let mut out = Vec::new();
    let embedded = StoreConfig::embedded(dir);
    out.push((
        "sqlite+disk".to_owned(),
        Store::open_with(&embedded).await.unwrap(),
        Store::open_with(&embedded).await.unwrap(),
    ));
    let pg = std::env::var("CUBBY_TEST_PG_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let s3 = std::env::var("CUBBY_TEST_S3_URL")
        .ok()
        .filter(|v| !v.is_empty());
    if let (Some(pg), Some(s3)) = (pg, s3) {
        use sqlx::Executor;
        let tag = cubby_core::hash::hex(&cubby_store::random_bytes::<6>());
        let admin = sqlx::PgPool::connect(&pg).await.unwrap();
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE cubby_s_{tag}"
            )))
            .await
            .unwrap();
        admin.close().await;
        let (loc, query) = s3.split_once('?').unwrap();
        let config = StoreConfig {
            data_dir: dir.join("unused"),
            metadata_url: Some(format!("{}/cubby_s_{tag}", pg.rsplit_once('/').unwrap().0)),
            blocks_url: Some(format!("{loc}/s-{tag}?{query}")),
        };
        out.push((
            "postgres+s3".to_owned(),
            Store::open_with(&config).await.unwrap(),
            Store::open_with(&config).await.unwrap(),
        ));
    }
    out
}

#[tokio::test]
async fn journal_sequences_are_gapless_under_concurrent_writers_on_two_stores() {
    let dir = tempfile::tempdir().unwrap();
    for (name, a, b) in two_stores(dir.path()).await {
        let user = a
            .add_user("writer", "w@example.com", "password")
            .await
            .unwrap();
        let ns = user.ns;
        let block = a
            .blocks
            .put(bytes::Bytes::from_static(b"shared block"))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for w in 0..8 {
            let store = if w % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    store
                        .commit_file(
                            ns,
                            Commit {
                                path: format!("/w{w}/f{i}"),
                                mode: WriteMode::Add,
                                autorename: false,
                                strict_conflict: false,
                                client_modified: None,
                                size: 12,
                                blocks: vec![block],
                            },
                        )
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let head = a.head(ns).await.unwrap();
        let rows = b.changes(ns, 0, 0, 10_000).await.unwrap();
        let mut seqs: Vec<u64> = rows.iter().filter(|r| r.idx == 0).map(|r| r.seq).collect();
        seqs.dedup();
        // One sequence per operation (an implicit parent folder shares its upload's), no gap,
        // no duplicate.
        assert_eq!(seqs, (1..=head).collect::<Vec<_>>(), "{name}");
        assert_eq!(head, 200, "{name}");
        assert_eq!(rows.len(), 208, "{name}: 200 files and 8 folders journaled");
        let listed = a.list(ns, "", true, false, "", 1_000).await.unwrap();
        assert_eq!(listed.len(), 208, "{name}");
    }
}

#[tokio::test]
async fn update_races_across_stores_have_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    for (name, a, b) in two_stores(dir.path()).await {
        let ns = a
            .add_user("racer", "r@example.com", "password")
            .await
            .unwrap()
            .ns;
        let base_block = a
            .blocks
            .put(bytes::Bytes::from_static(b"base"))
            .await
            .unwrap();
        let commit = |mode, content: &'static [u8], block| Commit {
            path: "/contended.txt".into(),
            mode,
            autorename: false,
            strict_conflict: false,
            client_modified: None,
            size: content.len() as u64,
            blocks: vec![block],
        };
        let base = a
            .commit_file(ns, commit(WriteMode::Add, b"base", base_block))
            .await
            .unwrap();
        let rev = base.rev.unwrap();
        let mut tasks = Vec::new();
        for w in 0..6u8 {
            let store = if w % 2 == 0 { a.clone() } else { b.clone() };
            let content: &'static [u8] = Box::leak(vec![b'a' + w; 8].into_boxed_slice());
            let block = store
                .blocks
                .put(bytes::Bytes::from_static(content))
                .await
                .unwrap();
            let c = commit(WriteMode::Update(rev.clone()), content, block);
            tasks.push(tokio::spawn(async move { store.commit_file(ns, c).await }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => wins += 1,
                Err(cubby_store::OpError::Conflict(_)) => {}
                Err(e) => panic!("{name}: {e}"),
            }
        }
        assert_eq!(wins, 1, "{name}");
    }
}

#[tokio::test]
async fn retention_keeps_everything_by_default_and_prunes_when_set() {
    let dir = tempfile::tempdir().unwrap();
    for (name, a, _) in two_stores(dir.path()).await {
        let ns = a
            .add_user("keeper", "k@example.com", "password")
            .await
            .unwrap()
            .ns;
        let commit = |mode, data: &'static [u8], block| Commit {
            path: "/kept.txt".into(),
            mode,
            autorename: false,
            strict_conflict: false,
            client_modified: None,
            size: data.len() as u64,
            blocks: vec![block],
        };
        let b1 = a
            .blocks
            .put(bytes::Bytes::from_static(b"first"))
            .await
            .unwrap();
        let b2 = a
            .blocks
            .put(bytes::Bytes::from_static(b"second"))
            .await
            .unwrap();
        a.commit_file(ns, commit(WriteMode::Add, b"first", b1))
            .await
            .unwrap();
        let current = a
            .commit_file(ns, commit(WriteMode::Overwrite, b"second", b2))
            .await
            .unwrap();
        a.create_folder(ns, "/gone", false).await.unwrap();
        a.delete(ns, "/gone", None).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        assert_eq!(
            a.prune(None).await.unwrap().revisions,
            0,
            "{name}: default keeps all"
        );
        assert_eq!(a.revision_count(ns).await.unwrap(), 2, "{name}");
        let pruned = a.prune(Some(0)).await.unwrap();
        assert_eq!((pruned.revisions, pruned.tombstones), (1, 1), "{name}");
        assert_eq!(a.revision_count(ns).await.unwrap(), 1, "{name}");
        let e = a.entry(ns, "/kept.txt").await.unwrap().unwrap();
        assert_eq!(e.rev, current.rev, "{name}: the current version stays");
        assert!(a.entry(ns, "/gone").await.unwrap().is_none(), "{name}");
    }
}

/// A small deterministic generator (splitmix64), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The bytes of content number `k`: a small pool, so uploads share blocks across files.
fn content(k: u64) -> bytes::Bytes {
    bytes::Bytes::from(format!("content number {k} ").repeat(1 + k as usize % 7))
}

/// Commits refused because they met a block the GC had claimed or deleted.
static REFUSED_COMMITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Stores `data` as one block and commits it at `path`, retrying as a client does when the
/// commit meets a block the GC has claimed (the retry writes the block again).
async fn upload(store: &Store, ns: u64, path: &str, data: &bytes::Bytes) -> cubby_store::Entry {
    for _ in 0..5 {
        let h = store.blocks.put(data.clone()).await.unwrap();
        store.blocks.sync(&[h]).await.unwrap();
        let commit = Commit {
            path: path.to_owned(),
            mode: WriteMode::Overwrite,
            autorename: false,
            strict_conflict: false,
            client_modified: None,
            size: data.len() as u64,
            blocks: vec![h],
        };
        match store.commit_file(ns, commit).await {
            Ok(e) => return e,
            Err(cubby_store::OpError::TooManyWrites) => {
                REFUSED_COMMITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => panic!("commit of {path}: {e}"),
        }
    }
    panic!("commit of {path} kept being refused");
}

/// The bytes of the live file at `path_lower`, read back through its block list.
async fn read_back(store: &Store, ns: u64, path_lower: &str) -> Vec<u8> {
    let e = store
        .entry(ns, path_lower)
        .await
        .unwrap()
        .expect("live entry");
    let mut out = Vec::new();
    for h in store.revision_blocks(e.revision.unwrap()).await.unwrap() {
        out.extend_from_slice(&store.read_block_all(h).await.unwrap());
    }
    out
}

/// Every stored block has a positive count (nothing dead outlived a collection past the
/// grace period), and fsck finds the counts and blocks sound.
async fn assert_only_live_blocks_remain(store: &Store, context: &str) {
    use futures_util::StreamExt;
    let refs: std::collections::HashMap<_, _> =
        store.block_refs().await.unwrap().into_iter().collect();
    let mut listing = store.blocks.list_aged();
    while let Some(s) = listing.next().await {
        let s = s.unwrap();
        let n = refs.get(&s.hash).copied().unwrap_or(0);
        assert!(
            n > 0,
            "{context}: block {} (refs {n}) outlived a collection past the grace period",
            cubby_core::hash::hex(&s.hash)
        );
    }
}

#[tokio::test]
async fn gc_interleaved_with_writes_never_deletes_a_live_block() {
    use cubby_store::gc::BLOCK_GRACE_SECS;
    let seeds: Vec<u64> = std::env::var("CUBBY_GC_SEEDS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 3]);
    let dir = tempfile::tempdir().unwrap();
    for (name, store, other) in two_stores(dir.path()).await {
        let mut collected = 0;
        for &seed in &seeds {
            let ctx = format!("{name}, seed {seed} (replay with CUBBY_GC_SEEDS={seed})");
            let mut rng = Rng(seed);
            let user = store
                .add_user(&format!("gc{seed}"), "gc@example.com", "password")
                .await
                .unwrap();
            let ns = user.ns;
            // The model: what each live path must hold.
            let mut live: std::collections::BTreeMap<String, bytes::Bytes> = Default::default();
            for step in 0..150 {
                // Both stores write, as two servers would.
                let s = if rng.below(2) == 0 { &store } else { &other };
                let paths: Vec<String> = live.keys().cloned().collect();
                let pick = |rng: &mut Rng| paths[rng.below(paths.len() as u64) as usize].clone();
                match rng.below(10) {
                    0..=2 => {
                        let data = content(rng.below(12));
                        let path = format!("/d{}/f{}", rng.below(3), rng.below(20));
                        upload(s, ns, &path, &data).await;
                        live.insert(path.to_lowercase(), data);
                    }
                    3 if !paths.is_empty() => {
                        let from = pick(&mut rng);
                        let to = format!("/copies/c{step}");
                        s.relocate(ns, &from, &to, true, false).await.unwrap();
                        let data = live[&from].clone();
                        live.insert(to.to_lowercase(), data);
                    }
                    4 if !paths.is_empty() => {
                        let from = pick(&mut rng);
                        let e = s.entry(ns, &from).await.unwrap().unwrap();
                        let (reference, _) = s.mint_copy_ref(ns, user.id, &e).await.unwrap();
                        let to = format!("/refs/r{step}");
                        s.save_copy_ref(&reference, ns, &to).await.unwrap();
                        let data = live[&from].clone();
                        live.insert(to.to_lowercase(), data);
                    }
                    5 if !paths.is_empty() => {
                        let p = pick(&mut rng);
                        if rng.below(2) == 0 {
                            s.delete(ns, &p, None).await.unwrap();
                        } else {
                            s.permanently_delete(ns, &p).await.unwrap();
                        }
                        live.remove(&p);
                    }
                    6 => {
                        // An upload that stored its block and never committed.
                        s.blocks.put(content(100 + step)).await.unwrap();
                    }
                    7 => {
                        // A session: finished, or left open with its blocks.
                        let data = content(rng.below(12));
                        let started = if rng.below(2) == 0 {
                            // Its bytes written as a small block with the session.
                            s.start_inline(user.id, data.clone()).await
                        } else {
                            let h = s.blocks.put(data.clone()).await.unwrap();
                            s.start_with_data(
                                user.id,
                                &[h],
                                Default::default(),
                                data.len() as u64,
                                true,
                            )
                            .await
                        };
                        let Ok(id) = started else {
                            continue; // Refused on a claimed block: the client retries.
                        };
                        if rng.below(2) == 0 {
                            continue;
                        }
                        let path = format!("/sessions/s{step}");
                        let finish = cubby_store::sessions::Finish {
                            session_id: id,
                            offset: data.len() as u64,
                            commit: Commit {
                                path: path.clone(),
                                mode: WriteMode::Add,
                                autorename: false,
                                strict_conflict: false,
                                client_modified: None,
                                size: 0,
                                blocks: Vec::new(),
                            },
                        };
                        let r = s.finish_sessions(ns, user.id, vec![finish], false).await;
                        if let Ok(mut results) = r
                            && let Some(Ok(_)) = results.pop()
                        {
                            live.insert(path.to_lowercase(), data);
                        }
                    }
                    8 => {
                        s.prune(Some(0)).await.unwrap();
                    }
                    _ => {
                        // A collection now (only old states can go) or past the grace period.
                        let late = rng.below(2) == 0;
                        let at = cubby_store::now() + if late { BLOCK_GRACE_SECS + 1 } else { 0 };
                        let report = s.gc(at).await.unwrap().expect("no other collection");
                        collected += report.deleted;
                        let fsck = s.fsck(false, true).await.unwrap();
                        assert!(
                            fsck.is_clean(),
                            "{ctx}, step {step}: {fsck:?} after {report:?}"
                        );
                        if late {
                            assert_only_live_blocks_remain(s, &format!("{ctx}, step {step}")).await;
                        }
                        for (p, data) in &live {
                            assert_eq!(
                                &read_back(s, ns, p).await[..],
                                &data[..],
                                "{ctx}, step {step}: {p} lost bytes"
                            );
                        }
                    }
                }
            }
            store.prune(Some(0)).await.unwrap();
            let at = cubby_store::now() + BLOCK_GRACE_SECS + 1;
            store.gc(at).await.unwrap().unwrap();
            let fsck = store.fsck(false, true).await.unwrap();
            assert!(fsck.is_clean(), "{ctx}, end: {fsck:?}");
            assert_eq!(fsck.miscounted, 0, "{ctx}");
            assert_only_live_blocks_remain(&store, &ctx).await;
            for (p, data) in &live {
                assert_eq!(&read_back(&store, ns, p).await[..], &data[..], "{ctx}: {p}");
            }
        }
        // The seeds must have exercised collection and the refused-then-retried commit.
        assert!(collected > 0, "{name}: no collection deleted anything");
        assert!(
            REFUSED_COMMITS.load(std::sync::atomic::Ordering::Relaxed) > 0,
            "{name}: no commit met a collected block"
        );
    }
}

#[tokio::test]
async fn a_commit_racing_the_gc_onto_a_deleted_block_is_refused_then_succeeds() {
    use cubby_store::gc::BLOCK_GRACE_SECS;
    let dir = tempfile::tempdir().unwrap();
    for (name, store, _) in two_stores(dir.path()).await {
        let user = store
            .add_user("racer", "r@example.com", "password")
            .await
            .unwrap();
        let data = content(7);
        upload(&store, user.ns, "/a", &data).await;
        store.permanently_delete(user.ns, "/a").await.unwrap();
        // A second upload of the same bytes finds the block stored and skips writing it...
        let h = store.blocks.put(data.clone()).await.unwrap();
        // ...then the GC, a day later, deletes the unreferenced block under it.
        let r = store
            .gc(cubby_store::now() + BLOCK_GRACE_SECS + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.deleted, 1, "{name}");
        assert!(!store.blocks.contains(&h).await.unwrap(), "{name}");
        let commit = Commit {
            path: "/b".into(),
            mode: WriteMode::Add,
            autorename: false,
            strict_conflict: false,
            client_modified: None,
            size: data.len() as u64,
            blocks: vec![h],
        };
        // The commit must not count a reference to a deleted block.
        let refused = store.commit_file(user.ns, commit.clone()).await;
        assert!(
            matches!(refused, Err(cubby_store::OpError::TooManyWrites)),
            "{name}: {refused:?}"
        );
        assert!(
            store.entry(user.ns, "/b").await.unwrap().is_none(),
            "{name}"
        );
        // The client's retry writes the block again and commits.
        upload(&store, user.ns, "/b", &data).await;
        assert_eq!(
            &read_back(&store, user.ns, "/b").await[..],
            &data[..],
            "{name}"
        );
        let fsck = store.fsck(false, true).await.unwrap();
        assert!(fsck.is_clean(), "{name}: {fsck:?}");
        assert_eq!(store.block_refs().await.unwrap(), vec![(h, 1)], "{name}");
    }
}

#[tokio::test]
async fn gc_keeps_young_and_referenced_blocks_and_session_blocks() {
    use cubby_store::gc::BLOCK_GRACE_SECS;
    let dir = tempfile::tempdir().unwrap();
    for (name, store, other) in two_stores(dir.path()).await {
        let user = store
            .add_user("keeper", "k@example.com", "password")
            .await
            .unwrap();
        let kept = content(1);
        upload(&store, user.ns, "/kept", &kept).await;
        let orphan = store.blocks.put(content(2)).await.unwrap();
        let session_data = content(3);
        let in_session = store.blocks.put(session_data.clone()).await.unwrap();
        store
            .start_with_data(
                user.id,
                &[in_session],
                Default::default(),
                session_data.len() as u64,
                false,
            )
            .await
            .unwrap();
        // Now: the orphan is young, so nothing goes.
        let r = store.gc(cubby_store::now()).await.unwrap().unwrap();
        assert_eq!((r.deleted, r.waiting), (0, 1), "{name}: {r:?}");
        // One collection at a time: two servers racing for the lease never both run (a
        // collection that lost its lease would fail), and the orphan is deleted once.
        let mut reports = Vec::new();
        for _ in 0..5 {
            let at = cubby_store::now() + BLOCK_GRACE_SECS + 1;
            let (a, b) = tokio::join!(store.gc(at), other.gc(at));
            reports.extend([a.unwrap(), b.unwrap()].into_iter().flatten());
        }
        assert!(!reports.is_empty(), "{name}");
        assert_eq!(
            reports.iter().map(|r| r.deleted).sum::<u64>(),
            1,
            "{name}: {reports:?}"
        );
        assert!(!store.blocks.contains(&orphan).await.unwrap(), "{name}");
        assert!(store.blocks.contains(&in_session).await.unwrap(), "{name}");
        assert_eq!(
            &read_back(&store, user.ns, "/kept").await[..],
            &kept[..],
            "{name}"
        );
        assert!(store.fsck(false, true).await.unwrap().is_clean(), "{name}");
    }
}

fn finish_at(id: &str, len: usize, path: &str) -> cubby_store::sessions::Finish {
    cubby_store::sessions::Finish {
        session_id: id.to_owned(),
        offset: len as u64,
        commit: Commit {
            path: path.to_owned(),
            mode: WriteMode::Add,
            autorename: false,
            strict_conflict: false,
            client_modified: None,
            size: 0,
            blocks: Vec::new(),
        },
    }
}

#[tokio::test]
async fn inline_sessions_write_small_blocks_kept_while_unfinished_and_collected_like_objects() {
    use cubby_store::gc::{BLOCK_GRACE_SECS, SMALL_GRACE_SECS};
    use cubby_store::sessions::SESSION_TTL_SECS;
    let dir = tempfile::tempdir().unwrap();
    for (name, a, b) in two_stores(dir.path()).await {
        let user = a
            .add_user("batcher", "b@example.com", "password")
            .await
            .unwrap();
        let other = a
            .add_user("other", "o@example.com", "password")
            .await
            .unwrap();
        let before = a.blocks.count().await.unwrap();
        // Three sessions, two with the same bytes; started on one server.
        let datas = [content(1), content(2), content(1)];
        let mut ids = Vec::new();
        for d in &datas {
            ids.push(a.start_inline(user.id, d.clone()).await.unwrap());
        }
        let s = b.session(&ids[0], user.id).await.unwrap();
        assert!(
            s.closed && s.inline.is_some() && s.tail.is_none(),
            "{name}: {s:?}"
        );
        assert_eq!(s.length, datas[0].len() as u64, "{name}");
        // No object is written and none referenced: the bytes are small blocks already,
        // which fsck checks, and which a collection keeps while their sessions may still be
        // finished (an object unreferenced this long would be collected).
        let h1 = cubby_core::hash::block_hash(&datas[0]);
        let h2 = cubby_core::hash::block_hash(&datas[1]);
        assert_eq!(a.blocks.count().await.unwrap(), before, "{name}");
        let fsck = a.fsck(false, true).await.unwrap();
        assert!(
            fsck.is_clean() && fsck.blocks_checked == 2,
            "{name}: {fsck:?}"
        );
        let r = b
            .gc(cubby_store::now() + SESSION_TTL_SECS - 60)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.deleted, 0, "{name}: {r:?}");
        for h in [h1, h2] {
            assert!(a.block_present(&h).await.unwrap(), "{name}");
        }
        // Another account cannot finish them (nor make their blocks appear).
        let r = b
            .finish_sessions(
                other.ns,
                other.id,
                vec![finish_at(&ids[0], datas[0].len(), "/x")],
                true,
            )
            .await
            .unwrap();
        assert!(
            matches!(
                r[0],
                Err(cubby_store::OpError::Session(
                    cubby_store::sessions::SessionError::NotFound
                ))
            ),
            "{name}: {r:?}"
        );
        assert_eq!(a.blocks.count().await.unwrap(), before, "{name}");
        // The other server (a restarted one alike) finishes the batch.
        let entries = ids
            .iter()
            .zip(&datas)
            .enumerate()
            .map(|(i, (id, d))| finish_at(id, d.len(), &format!("/batch/f{i}")))
            .collect();
        let r = b
            .finish_sessions(user.ns, user.id, entries, true)
            .await
            .unwrap();
        assert!(r.iter().all(Result::is_ok), "{name}: {r:?}");
        for (i, d) in datas.iter().enumerate() {
            assert_eq!(
                &read_back(&a, user.ns, &format!("/batch/f{i}")).await[..],
                &d[..],
                "{name}"
            );
        }
        // Kept in the database: no object was written, both blocks are present.
        assert_eq!(a.blocks.count().await.unwrap(), before, "{name}");
        for h in [h1, h2] {
            assert!(b.block_present(&h).await.unwrap(), "{name}");
        }
        // A piece of one reads back, and so does the piece of an object.
        assert_eq!(
            &b.read_block(h2, 3, 10).await.unwrap()[..],
            &datas[1][3..13],
            "{name}"
        );
        let object = upload(&a, user.ns, "/object", &content(3)).await;
        let oh = a.revision_blocks(object.revision.unwrap()).await.unwrap()[0];
        assert_eq!(
            &b.read_block(oh, 3, 10).await.unwrap()[..],
            &content(3)[3..13],
            "{name}"
        );
        let refs: std::collections::HashMap<_, _> =
            a.block_refs().await.unwrap().into_iter().collect();
        assert_eq!(refs.get(&h1), Some(&2), "{name}: one reference per file");
        let fsck = a.fsck(false, true).await.unwrap();
        assert!(fsck.is_clean() && fsck.miscounted == 0, "{name}: {fsck:?}");
        // Spent: a second finish finds nothing, and pruning them keeps the counts exact.
        let r = a
            .finish_sessions(
                user.ns,
                user.id,
                vec![finish_at(&ids[1], datas[1].len(), "/again")],
                true,
            )
            .await
            .unwrap();
        assert!(r[0].is_err(), "{name}");
        a.prune(None).await.unwrap();
        let fsck = a.fsck(false, true).await.unwrap();
        assert!(fsck.is_clean() && fsck.miscounted == 0, "{name}: {fsck:?}");
        // Unreferenced, a small block is collected once past its grace period (a session's
        // lifetime longer than an object's); a referenced one stays.
        for p in ["/batch/f0", "/batch/f2"] {
            a.permanently_delete(user.ns, p).await.unwrap();
        }
        let r = a
            .gc(cubby_store::now() + BLOCK_GRACE_SECS + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.deleted, 0, "{name}: {r:?}");
        let r = a
            .gc(cubby_store::now() + SMALL_GRACE_SECS + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.deleted, 1, "{name}: {r:?}");
        assert!(!b.block_present(&h1).await.unwrap(), "{name}");
        assert!(b.block_present(&h2).await.unwrap(), "{name}");
        assert_eq!(
            &read_back(&b, user.ns, "/batch/f1").await[..],
            &datas[1][..],
            "{name}"
        );
        let fsck = a.fsck(false, true).await.unwrap();
        assert!(fsck.is_clean() && fsck.miscounted == 0, "{name}: {fsck:?}");
        // A session never finished keeps its small block until it expires; then the block
        // is collected like any unreferenced one.
        let left = content(5);
        let hl = cubby_core::hash::block_hash(&left);
        a.start_inline(user.id, left).await.unwrap();
        let r = b
            .gc(cubby_store::now() + BLOCK_GRACE_SECS + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.deleted, 0, "{name}: {r:?}");
        assert!(a.block_present(&hl).await.unwrap(), "{name}");
        let r = b
            .gc(cubby_store::now() + SMALL_GRACE_SECS + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.deleted, 1, "{name}: {r:?}");
        assert!(!a.block_present(&hl).await.unwrap(), "{name}");
        assert!(b.block_present(&h2).await.unwrap(), "{name}");
    }
}

#[tokio::test]
async fn an_inline_finish_onto_a_collected_block_is_refused_then_succeeds() {
    use cubby_store::gc::BLOCK_GRACE_SECS;
    let dir = tempfile::tempdir().unwrap();
    for (name, store, _) in two_stores(dir.path()).await {
        let user = store
            .add_user("racer", "r@example.com", "password")
            .await
            .unwrap();
        let data = content(9);
        upload(&store, user.ns, "/a", &data).await;
        store.permanently_delete(user.ns, "/a").await.unwrap();
        let id = store.start_inline(user.id, data.clone()).await.unwrap();
        // The unreferenced block goes while the session waits to be finished.
        let r = store
            .gc(cubby_store::now() + BLOCK_GRACE_SECS + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.deleted, 1, "{name}");
        let h = cubby_core::hash::block_hash(&data);
        // The object goes, but not the session's small block of the same bytes; the
        // block's deleted row refuses the finish's reference...
        let refused = store
            .finish_sessions(
                user.ns,
                user.id,
                vec![finish_at(&id, data.len(), "/b")],
                true,
            )
            .await;
        assert!(
            matches!(refused, Err(cubby_store::OpError::TooManyWrites)),
            "{name}: {refused:?}"
        );
        // ...and the retry commits: the small block is still there, and its row revived.
        let r = store
            .finish_sessions(
                user.ns,
                user.id,
                vec![finish_at(&id, data.len(), "/b")],
                true,
            )
            .await
            .unwrap();
        assert!(r[0].is_ok(), "{name}: {r:?}");
        assert_eq!(
            &read_back(&store, user.ns, "/b").await[..],
            &data[..],
            "{name}"
        );
        let fsck = store.fsck(false, true).await.unwrap();
        assert!(fsck.is_clean(), "{name}: {fsck:?}");
        assert_eq!(store.block_refs().await.unwrap(), vec![(h, 1)], "{name}");
    }
}

/// A token one store looked up (and caches) stops working there as soon as it is revoked
/// or its user disabled: at once through the same store, when the notification arrives
/// through another PostgreSQL-backed store, and within `AUTH_CACHE_SECS` for a change no
/// notification announces (a second process on the same SQLite file, as `cubby admin`).
#[tokio::test]
async fn cached_tokens_follow_revocations_through_this_and_other_stores() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    for (name, a, b) in two_stores(dir.path()).await {
        a.add_user("alice", "alice@example.com", "password")
            .await
            .unwrap();
        // Through the same store.
        let (token, info) = a.mint_token("alice", None, &[]).await.unwrap();
        assert!(a.authenticate(&token).await.unwrap().is_some(), "{name}");
        a.revoke_token(info.token_id).await.unwrap();
        assert!(a.authenticate(&token).await.unwrap().is_none(), "{name}");
        let (token, _) = a.mint_token("alice", None, &[]).await.unwrap();
        assert!(a.authenticate(&token).await.unwrap().is_some(), "{name}");
        a.set_disabled("alice", true).await.unwrap();
        assert!(a.authenticate(&token).await.unwrap().is_none(), "{name}");
        a.set_disabled("alice", false).await.unwrap();
        assert!(a.authenticate(&token).await.unwrap().is_some(), "{name}");

        // Through the other store.
        let (token, info) = a.mint_token("alice", None, &[]).await.unwrap();
        assert!(a.authenticate(&token).await.unwrap().is_some(), "{name}");
        let start = Instant::now();
        b.revoke_token(info.token_id).await.unwrap();
        let bound = if name == "postgres+s3" {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(cubby_store::tokens::AUTH_CACHE_SECS + 1)
        };
        while a.authenticate(&token).await.unwrap().is_some() {
            assert!(
                start.elapsed() < bound,
                "{name}: still accepted after {bound:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
