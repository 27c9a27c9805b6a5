//! `cubby_core::zip`: the ZIP archives of `files/download_zip`, read back by another reader.
//!
//! Input: a list of entries (files with small contents, folders, and "big" files whose size is
//! only claimed, up to 4 GiB each, so that offsets pass the 32-bit fields and ZIP64 records
//! are written without the bytes existing), names of any Unicode text, empty or up to 256 KiB
//! long, and modification times anywhere in `i64`. The archive is written to a sparse buffer
//! whose claimed contents read as zeros. Once per process, too slow for every input, an
//! archive of 65,536 entries (a ZIP64 entry count) is checked the same way.
//!
//! Checks: `entry_name` gives a suffix of the path; the writer refuses exactly the names longer than 65,535 bytes and the sizes past
//! `MAX_SIZE`; the `zip` crate opens the archive, finds the local headers consistent with the
//! central directory, and reads every entry back in order with its name, kind, size, offset,
//! CRC-32, DOS time (clamped to 1980 to 2107) and, for real files, its bytes.
#![no_main]

use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Once;

use arbitrary::Arbitrary;
use cubby_core::zip::{self, Crc32, Error, MAX_NAME, MAX_SIZE, Writer};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    entries: Vec<Item>,
    /// An entry's path and the archived folder's path, for `entry_name`.
    paths: (String, String),
}

#[derive(Arbitrary, Debug)]
enum Item {
    Folder {
        name: Name,
    },
    File {
        name: Name,
        modified: i64,
        content: Vec<u8>,
    },
    /// A file of `size` zero bytes that exist only as a claim (`u32::MAX` is one too many).
    Big {
        name: Name,
        modified: i64,
        size: u32,
    },
}

#[derive(Arbitrary, Debug)]
enum Name {
    Text(String),
    /// `c` repeated: up to 65,535 characters, so up to 262,140 bytes.
    Long(char, u16),
}

impl Name {
    fn text(&self) -> String {
        match self {
            Name::Text(s) => s.clone(),
            Name::Long(c, n) => std::iter::repeat_n(*c, *n as usize).collect(),
        }
    }
}

/// A big file up to this size is read to its end, so it needs its true CRC.
const SMALL: u64 = 4096;

/// What an entry should read back as.
struct Expect {
    name: String,
    dir: bool,
    offset: u64,
    size: u64,
    crc: u32,
    modified: i64,
    /// The bytes, for real files.
    content: Option<Vec<u8>>,
}

fuzz_target!(|input: Input| {
    // Too slow to run on every input (seconds): once per process.
    static MANY: Once = Once::new();
    MANY.call_once(|| {
        let mut items: Vec<Item> = (0..65_535u32)
            .map(|i| Item::Folder {
                name: Name::Text(format!("{i}")),
            })
            .collect();
        items.push(Item::File {
            name: Name::Text("last".into()),
            modified: 1_431_445_838,
            content: b"the 65,536th".to_vec(),
        });
        archive_of(&items);
    });
    let (path, folder) = &input.paths;
    assert!(path.ends_with(zip::entry_name(path, folder)));
    archive_of(&input.entries);
});

/// Writes the archive of `items` and reads it back.
fn archive_of(items: &[Item]) {
    let mut w = Writer::new();
    let mut archive = Sparse::default();
    let mut expect: Vec<Expect> = Vec::new();
    let mut seen = HashSet::new();
    for item in items {
        let (name, dir) = match item {
            Item::Folder { name } => (name.text(), true),
            Item::File { name, .. } | Item::Big { name, .. } => (name.text(), false),
        };
        let stored = if dir {
            format!("{name}/")
        } else {
            name.clone()
        };
        // The server's names are distinct and its files' names never end in `/` (a folder's
        // mark), nor are empty; other names are not the writer's to refuse.
        if (!dir && (name.is_empty() || name.ends_with('/'))) || !seen.insert(stored.clone()) {
            continue;
        }
        let offset = archive.len();
        assert_eq!(w.offset(), offset);
        if stored.len() > MAX_NAME {
            let refused = match item {
                Item::Folder { .. } => w.folder(&name),
                Item::File { modified, .. } | Item::Big { modified, .. } => {
                    w.file(&name, *modified)
                }
            };
            assert_eq!(refused, Err(Error::NameTooLong(stored.len())));
            continue;
        }
        match item {
            Item::Folder { .. } => {
                archive.real(&w.folder(&name).unwrap());
                expect.push(Expect {
                    name: stored,
                    dir,
                    offset,
                    size: 0,
                    crc: 0,
                    modified: 0,
                    content: None,
                });
            }
            Item::File {
                modified, content, ..
            } => {
                archive.real(&w.file(&name, *modified).unwrap());
                archive.real(content);
                let mut crc = Crc32::new();
                crc.update(content);
                let crc = crc.finish();
                archive.real(&w.end_file(crc, content.len() as u64).unwrap());
                expect.push(Expect {
                    name: stored,
                    dir,
                    offset,
                    size: content.len() as u64,
                    crc,
                    modified: *modified,
                    content: Some(content.clone()),
                });
            }
            Item::Big { modified, size, .. } => {
                archive.real(&w.file(&name, *modified).unwrap());
                let size = *size as u64;
                // Any CRC will do for zeros never read to their end (see `check`).
                let crc = if size <= SMALL {
                    let mut crc = Crc32::new();
                    crc.update(&vec![0; size as usize]);
                    crc.finish()
                } else {
                    (size as u32).wrapping_mul(0x9E37_79B9)
                };
                if size > MAX_SIZE {
                    assert_eq!(w.end_file(crc, size), Err(Error::TooLarge(size)));
                    return;
                }
                archive.zeros(size);
                archive.real(&w.end_file(crc, size).unwrap());
                expect.push(Expect {
                    name: stored,
                    dir,
                    offset,
                    size,
                    crc,
                    modified: *modified,
                    content: None,
                });
            }
        }
    }
    let cd_start = archive.len();
    for piece in w.finish() {
        archive.real(&piece);
    }
    check(archive, &expect, cd_start);
}

fn check(archive: Sparse, expect: &[Expect], cd_start: u64) {
    let mut z = ::zip::ZipArchive::new(archive).expect("the archive opens");
    assert_eq!(z.len(), expect.len());
    assert_eq!(z.central_directory_start(), cd_start);
    z.validate_header_consistency()
        .expect("local headers match the central directory");
    for (i, e) in expect.iter().enumerate() {
        let mut f = z.by_index(i).expect("the entry opens");
        assert_eq!(f.name_raw(), e.name.as_bytes());
        assert_eq!(f.name().unwrap(), e.name);
        // The `zip` crate also takes a name ending in `\` for a folder's (Windows' separator);
        // Dropbox names may hold backslashes, and the writer keeps names as they are.
        assert_eq!(f.is_dir(), e.dir || e.name.ends_with('\\'), "{:?}", e.name);
        assert_eq!(f.compression(), ::zip::CompressionMethod::Stored);
        assert_eq!((f.size(), f.compressed_size()), (e.size, e.size));
        assert_eq!(f.crc32(), e.crc);
        assert_eq!(f.header_start(), e.offset);
        let t = f.last_modified().expect("a DOS time");
        let got = (
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
        );
        assert_eq!(got, dos_parts(e.modified), "time {}", e.modified);
        match &e.content {
            Some(content) => {
                let mut back = Vec::new();
                f.read_to_end(&mut back)
                    .expect("the content reads, CRC checked");
                assert_eq!(&back, content);
            }
            None => {
                // Folders are empty; a big file is zeros, read to its end (so its CRC checked)
                // only if small.
                let mut head = Vec::new();
                (&mut f).take(SMALL + 1).read_to_end(&mut head).unwrap();
                assert_eq!(head.len() as u64, e.size.min(SMALL + 1));
                assert!(head.iter().all(|b| *b == 0));
            }
        }
    }
}

/// Year, month, day, hour, minute and second (even) of a Unix time in a DOS time field:
/// 1980-01-01 00:00:00 before it, 2107-12-31 23:59:58 after.
fn dos_parts(secs: i64) -> (u16, u8, u8, u8, u8, u8) {
    if secs < 315_532_800 {
        return (1980, 1, 1, 0, 0, 0);
    }
    if secs > 4_354_819_198 {
        return (2107, 12, 31, 23, 59, 58);
    }
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Walk from 1970: slow but plainly right.
    let mut year = 1970;
    let mut days = days;
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let lengths = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= lengths[month] {
        days -= lengths[month];
        month += 1;
    }
    (
        year as u16,
        month as u8 + 1,
        days as u8 + 1,
        (rem / 3600) as u8,
        (rem % 3600 / 60) as u8,
        (rem % 60 / 2 * 2) as u8,
    )
}

/// An archive whose claimed contents are runs of zeros that take no memory.
#[derive(Default)]
struct Sparse {
    /// (start, part), in order.
    parts: Vec<(u64, Part)>,
    len: u64,
    pos: u64,
}

enum Part {
    Real(Vec<u8>),
    Zeros(u64),
}

impl Sparse {
    fn len(&self) -> u64 {
        self.len
    }

    fn real(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        if let Some((_, Part::Real(last))) = self.parts.last_mut() {
            last.extend_from_slice(b);
        } else {
            self.parts.push((self.len, Part::Real(b.to_vec())));
        }
        self.len += b.len() as u64;
    }

    fn zeros(&mut self, n: u64) {
        if n > 0 {
            self.parts.push((self.len, Part::Zeros(n)));
            self.len += n;
        }
    }
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let i = self.parts.partition_point(|(start, _)| *start <= self.pos) - 1;
        let (start, part) = &self.parts[i];
        let at = self.pos - start;
        let n = match part {
            Part::Real(b) => {
                let n = buf.len().min(b.len() - at as usize);
                buf[..n].copy_from_slice(&b[at as usize..at as usize + n]);
                n
            }
            Part::Zeros(len) => {
                let n = (buf.len() as u64).min(len - at) as usize;
                buf[..n].fill(0);
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "before 0"))?;
        Ok(self.pos)
    }
}
