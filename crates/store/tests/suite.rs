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
