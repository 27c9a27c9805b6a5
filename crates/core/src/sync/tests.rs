//! Hand-written scenarios for the sync planner, one or more per rule of issue #7.
//!
//! Each test states the three trees as paths, then asserts the exact ops of the first pass, the
//! end state after syncing to convergence with the model engine, or both.

use crate::sync::model::World;
use crate::sync::plan::{Op, UploadMode, plan};
use crate::sync::tree::{Kind, Node, NodeId, Tree};

type Entries<'a> = &'a [(&'a str, &'a str, Option<&'a str>)];

fn tree(entries: Entries<'_>) -> Tree {
    Tree::from_paths(entries).expect("a well-formed fixture")
}

/// A remote tree: every file gets the rev `r-<id>` unless `revs` names another.
fn remote_tree(entries: Entries<'_>, revs: &[(&str, &str)]) -> Tree {
    let mut tree = tree(entries);
    let ids: Vec<NodeId> = tree.iter().map(|(id, _)| id.clone()).collect();
    for id in ids {
        if tree.get(&id).is_some_and(|node| !node.kind.is_folder()) {
            let rev = revs
                .iter()
                .find(|(named, _)| *named == id.as_str())
                .map_or_else(|| format!("r-{id}"), |(_, rev)| (*rev).to_owned());
            tree.set_rev(&id, Some(rev)).expect("listed");
        }
    }
    tree
}

/// The ops of one pass over the trees.
fn ops(remote: &Tree, local: &Tree, synced: &Tree) -> Vec<Op> {
    plan(remote, local, synced).ops
}

/// Syncs to convergence and returns the converged world; both sides must list the same paths.
fn synced_world(remote: Tree, local: Tree, synced: Tree) -> World {
    let mut world = World::new(remote, local, synced);
    if let Err(error) = world.sync() {
        panic!("{error}");
    }
    assert_eq!(world.remote.by_path(), world.local.by_path());
    world
}

/// A tree's content as `path` for folders and `path=hash` for files, in path order.
fn listing(tree: &Tree) -> Vec<String> {
    tree.by_path()
        .into_iter()
        .map(|(display, kind)| match kind {
            Kind::Folder => display,
            Kind::File { content_hash } => format!("{display}={content_hash}"),
        })
        .collect()
}

fn id(text: &str) -> NodeId {
    NodeId::new(text)
}

fn s(text: &str) -> String {
    text.to_owned()
}

/// The Synced tree is the remote tree as it was: the same nodes with their revs.
const BASE: Entries<'static> = &[
    ("id:d", "/docs", None),
    ("id:f", "/docs/f.txt", Some("h1")),
    ("id:g", "/g.txt", Some("g1")),
];

#[test]
fn unchanged_trees_plan_nothing() {
    let base = remote_tree(BASE, &[]);
    assert_eq!(ops(&base, &tree(BASE), &base), vec![]);
}

#[test]
fn remote_edit_downloads_then_commits() {
    let synced = remote_tree(BASE, &[]);
    let remote = remote_tree(
        &[
            ("id:d", "/docs", None),
            ("id:f", "/docs/f.txt", Some("h2")),
            ("id:g", "/g.txt", Some("g1")),
        ],
        &[("id:f", "r2")],
    );
    let local = tree(BASE);
    assert_eq!(
        ops(&remote, &local, &synced),
        vec![Op::Download {
            id: id("id:f"),
            path: s("/docs/f.txt"),
            content_hash: s("h2"),
            rev: Some(s("r2")),
        }]
    );
    let mut world = World::new(remote, local, synced);
    for op in ops(&world.remote, &world.local, &world.synced) {
        world.apply(&op).unwrap();
    }
    let node = world.remote.get(&id("id:f")).unwrap().clone();
    assert_eq!(
        ops(&world.remote, &world.local, &world.synced),
        vec![Op::CommitSynced {
            id: id("id:f"),
            node
        }]
    );
}

#[test]
fn local_edit_uploads_against_the_synced_rev() {
    let synced = remote_tree(BASE, &[]);
    let local = tree(&[
        ("id:d", "/docs", None),
        ("id:f", "/docs/f.txt", Some("h2")),
        ("id:g", "/g.txt", Some("g1")),
    ]);
    assert_eq!(
        ops(&synced.clone(), &local, &synced),
        vec![Op::Upload {
            id: id("id:f"),
            path: s("/docs/f.txt"),
            content_hash: s("h2"),
            mode: UploadMode::Update {
                rev: Some(s("r-id:f"))
            },
        }]
    );
}

#[test]
fn identical_changes_on_both_sides_are_only_recorded() {
    let synced = remote_tree(BASE, &[]);
    let changed: Entries<'_> = &[
        ("id:d", "/Documents", None),
        ("id:f", "/Documents/f.txt", Some("h2")),
        ("id:g", "/g.txt", Some("g1")),
    ];
    let remote = remote_tree(changed, &[]);
    let found = ops(&remote, &tree(changed), &synced);
    assert_eq!(
        found,
        vec![
            Op::CommitSynced {
                id: id("id:d"),
                node: remote.get(&id("id:d")).unwrap().clone(),
            },
            Op::CommitSynced {
                id: id("id:f"),
                node: remote.get(&id("id:f")).unwrap().clone(),
            },
        ]
    );
}

#[test]
fn concurrent_edits_keep_both_versions() {
    let synced = remote_tree(BASE, &[]);
    let remote = remote_tree(
        &[
            ("id:d", "/docs", None),
            ("id:f", "/docs/f.txt", Some("remote-edit")),
            ("id:g", "/g.txt", Some("g1")),
        ],
        &[("id:f", "r2")],
    );
    let local = tree(&[
        ("id:d", "/docs", None),
        ("id:f", "/docs/f.txt", Some("local-edit")),
        ("id:g", "/g.txt", Some("g1")),
    ]);
    assert_eq!(
        ops(&remote, &local, &synced),
        vec![
            Op::KeepBoth {
                id: id("id:f"),
                from: s("/docs/f.txt"),
                to: s("/docs/f (conflicted copy).txt"),
            },
            Op::Download {
                id: id("id:f"),
                path: s("/docs/f.txt"),
                content_hash: s("remote-edit"),
                rev: Some(s("r2")),
            },
        ]
    );
    let world = synced_world(remote, local, synced);
    assert_eq!(
        listing(&world.remote),
        vec![
            "/docs",
            "/docs/f (conflicted copy).txt=local-edit",
            "/docs/f.txt=remote-edit",
            "/g.txt=g1",
        ]
    );
    assert!(world.deleted.is_empty());
}

#[test]
fn remote_edit_beats_local_delete() {
    let synced = remote_tree(BASE, &[]);
    let remote = remote_tree(
        &[
            ("id:d", "/docs", None),
            ("id:f", "/docs/f.txt", Some("h2")),
            ("id:g", "/g.txt", Some("g1")),
        ],
        &[],
    );
    // The local side deleted the whole folder.
    let local = tree(&[("id:g", "/g.txt", Some("g1"))]);
    assert_eq!(
        ops(&remote, &local, &synced),
        vec![
            Op::CreateLocalFolder {
                id: id("id:d"),
                path: s("/docs"),
            },
            Op::Download {
                id: id("id:f"),
                path: s("/docs/f.txt"),
                content_hash: s("h2"),
                rev: Some(s("r-id:f")),
            },
        ]
    );
    let world = synced_world(remote, local, synced);
    assert_eq!(
        listing(&world.local),
        vec!["/docs", "/docs/f.txt=h2", "/g.txt=g1"]
    );
}

#[test]
fn local_edit_beats_remote_delete() {
    let synced = remote_tree(BASE, &[]);
    let remote = remote_tree(&[("id:d", "/docs", None)], &[]);
    let local = tree(&[
        ("id:d", "/docs", None),
        ("id:f", "/docs/f.txt", Some("h2")),
        ("id:g", "/g.txt", Some("g1")),
    ]);
    assert_eq!(
        ops(&remote, &local, &synced),
        vec![
            Op::DeleteLocal {
                id: id("id:g"),
                path: s("/g.txt"),
                nodes: 1,
            },
            Op::Upload {
                id: id("id:f"),
                path: s("/docs/f.txt"),
                content_hash: s("h2"),
                mode: UploadMode::Add,
            },
        ]
    );
    let world = synced_world(remote, local, synced);
    assert_eq!(listing(&world.remote), vec!["/docs", "/docs/f.txt=h2"]);
}

#[test]
fn deletion_of_a_synced_folder_propagates_and_is_counted() {
    let synced = remote_tree(BASE, &[]);
    let local = tree(&[("id:g", "/g.txt", Some("g1"))]);
    let planned = plan(&synced, &local, &synced);
    assert_eq!(
        planned.ops,
        vec![Op::DeleteRemote {
            id: id("id:d"),
            path: s("/docs"),
            nodes: 2,
        }]
    );
    assert_eq!(planned.summary().remote_deletes, 2);
    assert_eq!(planned.summary().local_deletes, 0);
    let world = synced_world(synced.clone(), local, synced);
    assert_eq!(listing(&world.remote), vec!["/g.txt=g1"]);
    assert!(
        world.synced.get(&id("id:f")).is_none(),
        "forgotten once gone"
    );
}

#[test]
fn a_node_only_one_side_has_is_never_deleted() {
    // Synced is empty, so nothing was ever agreed: each side's files go to the other.
    let remote = remote_tree(&[("id:r", "/remote-only.txt", Some("r1"))], &[]);
    let local = tree(&[("local:1", "/local-only.txt", Some("l1"))]);
    assert_eq!(
        ops(&remote, &local, &Tree::new()),
        vec![
            Op::Download {
                id: id("id:r"),
                path: s("/remote-only.txt"),
                content_hash: s("r1"),
                rev: Some(s("r-id:r")),
            },
            Op::Upload {
                id: id("local:1"),
                path: s("/local-only.txt"),
                content_hash: s("l1"),
                mode: UploadMode::Add,
            },
        ]
    );
}

#[test]
fn a_remote_rename_is_a_local_move() {
    let synced = remote_tree(BASE, &[]);
    let remote = remote_tree(
        &[
            ("id:d", "/docs", None),
            ("id:f", "/docs/renamed.txt", Some("h1")),
            ("id:g", "/docs/g.txt", Some("g1")),
        ],
        &[],
    );
    assert_eq!(
        ops(&remote, &tree(BASE), &synced),
        vec![
            Op::MoveLocal {
                id: id("id:f"),
                from: s("/docs/f.txt"),
                to: s("/docs/renamed.txt"),
            },
            Op::MoveLocal {
                id: id("id:g"),
                from: s("/g.txt"),
                to: s("/docs/g.txt"),
            },
        ]
    );
}

#[test]
fn a_local_folder_rename_is_one_remote_move() {
    let synced = remote_tree(BASE, &[]);
    let local = tree(&[
        ("id:d", "/papers", None),
        ("id:f", "/papers/f.txt", Some("h1")),
        ("id:g", "/g.txt", Some("g1")),
    ]);
    assert_eq!(
        ops(&synced.clone(), &local, &synced),
        vec![Op::MoveRemote {
            id: id("id:d"),
            from: s("/docs"),
            to: s("/papers"),
        }]
    );
}

#[test]
fn a_case_only_rename_propagates() {
    let synced = remote_tree(BASE, &[]);
    let remote = remote_tree(
        &[
            ("id:d", "/Docs", None),
            ("id:f", "/Docs/F.txt", Some("h1")),
            ("id:g", "/g.txt", Some("g1")),
        ],
        &[],
    );
    assert_eq!(
        ops(&remote, &tree(BASE), &synced),
        vec![
            Op::MoveLocal {
                id: id("id:d"),
                from: s("/docs"),
                to: s("/Docs"),
            },
            Op::MoveLocal {
                id: id("id:f"),
                from: s("/Docs/f.txt"),
                to: s("/Docs/F.txt"),
            },
        ]
    );
    synced_world(remote, tree(BASE), synced);
}

#[test]
fn move_against_move_takes_the_remote_place() {
    let synced = remote_tree(BASE, &[]);
    let remote = remote_tree(
        &[
            ("id:d", "/docs", None),
            ("id:f", "/remote-place.txt", Some("h1")),
            ("id:g", "/g.txt", Some("g1")),
        ],
        &[],
    );
    let local = tree(&[
        ("id:d", "/docs", None),
        ("id:f", "/docs/local-place.txt", Some("h1")),
        ("id:g", "/g.txt", Some("g1")),
    ]);
    assert_eq!(
        ops(&remote, &local, &synced),
        vec![Op::MoveLocal {
            id: id("id:f"),
            from: s("/docs/local-place.txt"),
            to: s("/remote-place.txt"),
        }]
    );
}

#[test]
fn a_deleted_folder_is_kept_for_files_added_inside_it() {
    let synced = remote_tree(BASE, &[]);
    let remote = remote_tree(
        &[
            ("id:d", "/docs", None),
            ("id:f", "/docs/f.txt", Some("h1")),
            ("id:n", "/docs/new.txt", Some("n1")),
            ("id:g", "/g.txt", Some("g1")),
        ],
        &[],
    );
    let local = tree(&[("id:g", "/g.txt", Some("g1"))]);
    let world = synced_world(remote, local, synced);
    // The unchanged file goes, the folder stays for the new one.
    assert_eq!(
        listing(&world.local),
        vec!["/docs", "/docs/new.txt=n1", "/g.txt=g1"]
    );
}

#[test]
fn a_move_into_a_folder_deleted_on_the_other_side_keeps_both() {
    let synced = remote_tree(BASE, &[]);
    let remote = remote_tree(
        &[
            ("id:d", "/docs", None),
            ("id:f", "/docs/f.txt", Some("h1")),
            ("id:g", "/docs/g.txt", Some("g1")),
        ],
        &[],
    );
    let local = tree(&[("id:g", "/g.txt", Some("g1"))]);
    let world = synced_world(remote, local, synced);
    assert_eq!(listing(&world.local), vec!["/docs", "/docs/g.txt=g1"]);
}

#[test]
fn new_names_differing_only_in_case_keep_both() {
    let remote = remote_tree(&[("id:r", "/notes.txt", Some("r1"))], &[]);
    let local = tree(&[("local:1", "/Notes.txt", Some("l1"))]);
    assert_eq!(
        ops(&remote, &local, &Tree::new()),
        vec![
            Op::MoveLocal {
                id: id("local:1"),
                from: s("/Notes.txt"),
                to: s("/Notes (conflicted copy).txt"),
            },
            Op::Download {
                id: id("id:r"),
                path: s("/notes.txt"),
                content_hash: s("r1"),
                rev: Some(s("r-id:r")),
            },
            Op::Upload {
                id: id("local:1"),
                path: s("/Notes (conflicted copy).txt"),
                content_hash: s("l1"),
                mode: UploadMode::Add,
            },
        ]
    );
    let world = synced_world(remote, local, Tree::new());
    assert_eq!(
        listing(&world.remote),
        vec!["/Notes (conflicted copy).txt=l1", "/notes.txt=r1"]
    );
}

#[test]
fn case_duplicates_on_a_case_sensitive_disk_are_renamed() {
    let local = tree(&[
        ("local:1", "/a.txt", Some("one")),
        ("local:2", "/A.txt", Some("two")),
    ]);
    let world = synced_world(Tree::new(), local, Tree::new());
    assert_eq!(
        listing(&world.remote),
        vec!["/A (conflicted copy).txt=two", "/a.txt=one"]
    );
}

#[test]
fn renames_onto_each_others_names_on_both_sides_keep_both() {
    let synced = remote_tree(
        &[
            ("id:a", "/a.txt", Some("ha")),
            ("id:b", "/b.txt", Some("hb")),
        ],
        &[],
    );
    let remote = remote_tree(
        &[
            ("id:a", "/c.txt", Some("ha")),
            ("id:b", "/b.txt", Some("hb")),
        ],
        &[],
    );
    let local = tree(&[
        ("id:a", "/a.txt", Some("ha")),
        ("id:b", "/C.txt", Some("hb")),
    ]);
    let world = synced_world(remote, local, synced);
    assert_eq!(
        listing(&world.remote),
        vec!["/C (conflicted copy).txt=hb", "/c.txt=ha"]
    );
}

#[test]
fn a_name_swap_moves_through_an_aside_name() {
    let synced = remote_tree(
        &[
            ("id:a", "/a.txt", Some("ha")),
            ("id:b", "/b.txt", Some("hb")),
        ],
        &[],
    );
    let local = tree(&[
        ("id:a", "/b.txt", Some("ha")),
        ("id:b", "/a.txt", Some("hb")),
    ]);
    assert_eq!(
        ops(&synced.clone(), &local, &synced),
        vec![
            Op::MoveRemote {
                id: id("id:b"),
                from: s("/b.txt"),
                to: s("/.cubby-aside-1-b.txt"),
            },
            Op::MoveRemote {
                id: id("id:a"),
                from: s("/a.txt"),
                to: s("/b.txt"),
            },
            Op::MoveRemote {
                id: id("id:b"),
                from: s("/.cubby-aside-1-b.txt"),
                to: s("/a.txt"),
            },
        ]
    );
    let world = synced_world(synced.clone(), local, synced);
    assert_eq!(listing(&world.remote), vec!["/a.txt=hb", "/b.txt=ha"]);
}

#[test]
fn names_made_for_long_names_stay_valid() {
    // A 255-character name got aside names and conflicted copies longer than a path component
    // may be, which the server refuses (found by fuzz/planner).
    use crate::path::{self, MAX_COMPONENT_CHARS, Pattern};
    let a = format!("/{}a.txt", "l".repeat(249));
    let b = format!("/{}b.txt", "l".repeat(249));
    let synced = remote_tree(&[("id:a", &a, Some("ha")), ("id:b", &b, Some("hb"))], &[]);
    let local = tree(&[("id:a", &b, Some("ha")), ("id:b", &a, Some("hb"))]);
    let aside = crate::sync::plan::aside_name(&b[1..], 1);
    assert_eq!(aside.chars().count(), MAX_COMPONENT_CHARS);
    assert!(matches!(
        &ops(&synced.clone(), &local, &synced)[0],
        Op::MoveRemote { to, .. } if *to == format!("/{aside}")
    ));
    let world = synced_world(synced.clone(), local, synced);
    assert_eq!(world.remote.by_path().len(), 2);

    // Both sides edit the file: the local version's conflicted copy fits too.
    let synced = remote_tree(&[("id:a", &a, Some("ha"))], &[]);
    let remote = remote_tree(&[("id:a", &a, Some("hr"))], &[("id:a", "r2")]);
    let local = tree(&[("id:a", &a, Some("hl"))]);
    let world = synced_world(remote, local, synced);
    assert_eq!(world.remote.by_path().len(), 2);
    for p in world.remote.by_path().keys() {
        assert!(path::parse(p, Pattern::WritePath).is_ok(), "{p}");
    }
}

#[test]
fn crossed_folder_moves_do_not_make_a_cycle() {
    let synced = remote_tree(
        &[
            ("id:a", "/a", None),
            ("id:x", "/a/x.txt", Some("hx")),
            ("id:b", "/b", None),
            ("id:y", "/b/y.txt", Some("hy")),
        ],
        &[],
    );
    // The remote moved a into b; the local side moved b into a.
    let remote = remote_tree(
        &[
            ("id:b", "/b", None),
            ("id:y", "/b/y.txt", Some("hy")),
            ("id:a", "/b/a", None),
            ("id:x", "/b/a/x.txt", Some("hx")),
        ],
        &[],
    );
    let local = tree(&[
        ("id:a", "/a", None),
        ("id:x", "/a/x.txt", Some("hx")),
        ("id:b", "/a/b", None),
        ("id:y", "/a/b/y.txt", Some("hy")),
    ]);
    assert_eq!(
        ops(&remote, &local, &synced),
        vec![
            Op::MoveLocal {
                id: id("id:b"),
                from: s("/a/b"),
                to: s("/b"),
            },
            Op::MoveLocal {
                id: id("id:a"),
                from: s("/a"),
                to: s("/b/a"),
            },
        ]
    );
    let world = synced_world(remote, local, synced);
    assert_eq!(
        listing(&world.local),
        vec!["/b", "/b/a", "/b/a/x.txt=hx", "/b/y.txt=hy"]
    );
}

#[test]
fn a_first_sync_of_equal_trees_only_links() {
    let remote = remote_tree(BASE, &[]);
    // The same tree on disk, with provisional ids and a different case in one name.
    let local = tree(&[
        ("local:1", "/docs", None),
        ("local:2", "/docs/f.txt", Some("h1")),
        ("local:3", "/g.txt", Some("g1")),
    ]);
    let found = ops(&remote, &local, &Tree::new());
    assert_eq!(
        found[..3],
        [
            Op::Link {
                local: id("local:1"),
                remote: id("id:d"),
            },
            Op::Link {
                local: id("local:3"),
                remote: id("id:g"),
            },
            Op::Link {
                local: id("local:2"),
                remote: id("id:f"),
            },
        ]
    );
    assert!(
        found[3..]
            .iter()
            .all(|op| matches!(op, Op::CommitSynced { .. })),
        "{found:#?}"
    );
    assert_eq!(found.len(), 6);
    let world = synced_world(remote, local, Tree::new());
    assert_eq!(listing(&world.remote), listing(&tree(BASE)));
    assert_eq!(world.synced.len(), 3);
}

#[test]
fn a_first_sync_with_different_content_keeps_both() {
    let remote = remote_tree(&[("id:f", "/f.txt", Some("server"))], &[]);
    let local = tree(&[("local:1", "/f.txt", Some("disk"))]);
    let world = synced_world(remote, local, Tree::new());
    assert_eq!(
        listing(&world.local),
        vec!["/f (conflicted copy).txt=disk", "/f.txt=server"]
    );
}

#[test]
fn a_commit_records_the_remote_rev() {
    let remote = remote_tree(&[("id:f", "/f.txt", Some("h"))], &[("id:f", "r9")]);
    let local = tree(&[("id:f", "/f.txt", Some("h"))]);
    let mut node = Node::file(NodeId::root(), "f.txt", "h");
    node.rev = Some(s("r9"));
    assert_eq!(
        ops(&remote, &local, &Tree::new()),
        vec![Op::CommitSynced {
            id: id("id:f"),
            node
        }]
    );
}
