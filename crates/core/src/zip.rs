//! The bytes of a stored (uncompressed) ZIP archive, written front to back: what
//! `files/download_zip` streams.
//!
//! [`Writer`] hands out each entry's local header and data descriptor and, at the end, the
//! central directory and end records; the caller sends the entry's bytes in between, with their
//! [`Crc32`]. Names are UTF-8 (flag bit 11), times are MS-DOS local times taken as UTC. ZIP64
//! records are used only when an offset, the directory or the entry count outgrows the 32-bit
//! fields; an entry itself must stay under 4 GiB ([`MAX_SIZE`]), which keeps its descriptor
//! 32-bit.

/// The largest entry, in bytes: sizes are 32-bit fields (0xFFFF_FFFF would mean ZIP64).
pub const MAX_SIZE: u64 = 0xFFFF_FFFE;

/// The longest name, in bytes (a folder's trailing `/` included): lengths are 16-bit fields.
pub const MAX_NAME: usize = 0xFFFF;

/// The central directory goes out in pieces of about this many bytes.
const CHUNK: usize = 1 << 20;

/// Why an entry cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("name of {0} bytes in a ZIP archive (at most {MAX_NAME})")]
    NameTooLong(usize),
    #[error("entry of {0} bytes in a ZIP archive (at most {MAX_SIZE})")]
    TooLarge(u64),
}

/// An entry already written, as the central directory describes it.
struct Record {
    name: Vec<u8>,
    crc: u32,
    size: u64,
    offset: u64,
    dir: bool,
    time: u16,
    date: u16,
}

/// A ZIP archive being written: call [`Writer::file`], send the file's bytes, call
/// [`Writer::end_file`]; [`Writer::folder`] for a folder; then send every piece of
/// [`Writer::finish`]. Each call returns the bytes to send next.
#[derive(Default)]
pub struct Writer {
    offset: u64,
    records: Vec<Record>,
    /// The file whose header is out and whose descriptor is not, and its header's length.
    open: Option<(Record, u64)>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes handed out so far (header, content and descriptor of every entry ended).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Starts a file entry named `name` (a path inside the archive, `/`-separated), last
    /// modified at `modified` (Unix seconds): its local header. Its bytes follow.
    ///
    /// Panics if a file is open (its [`Writer::end_file`] not called).
    pub fn file(&mut self, name: &str, modified: i64) -> Result<Vec<u8>, Error> {
        assert!(self.open.is_none(), "zip: a file is still open");
        let (header, record) = self.header(name.as_bytes().to_vec(), false, modified)?;
        self.open = Some((record, header.len() as u64));
        Ok(header)
    }

    /// Ends the open file, of `size` bytes with CRC-32 `crc`: its data descriptor.
    ///
    /// Panics if no file is open.
    pub fn end_file(&mut self, crc: u32, size: u64) -> Result<Vec<u8>, Error> {
        if size > MAX_SIZE {
            return Err(Error::TooLarge(size));
        }
        let (mut record, header_len) = self.open.take().expect("zip: no file is open");
        record.crc = crc;
        record.size = size;
        Ok(self.end(record, header_len))
    }

    /// A folder entry (`name/`, no content): its local header and data descriptor.
    ///
    /// Panics if a file is open.
    pub fn folder(&mut self, name: &str) -> Result<Vec<u8>, Error> {
        assert!(self.open.is_none(), "zip: a file is still open");
        let mut name = name.as_bytes().to_vec();
        name.push(b'/');
        let (mut out, record) = self.header(name, true, 0)?;
        let header_len = out.len() as u64;
        out.extend(self.end(record, header_len));
        Ok(out)
    }

    /// The local header of an entry starting at the current offset, and its record.
    fn header(&self, name: Vec<u8>, dir: bool, modified: i64) -> Result<(Vec<u8>, Record), Error> {
        if name.len() > MAX_NAME {
            return Err(Error::NameTooLong(name.len()));
        }
        let (time, date) = dos_datetime(modified);
        let mut h = Vec::with_capacity(30 + name.len());
        put32(&mut h, 0x0403_4b50);
        put16(&mut h, 20);
        put16(&mut h, 0x0808); // data descriptor follows; names are UTF-8
        put16(&mut h, 0); // stored
        put16(&mut h, time);
        put16(&mut h, date);
        put32(&mut h, 0);
        put32(&mut h, 0);
        put32(&mut h, 0);
        put16(&mut h, name.len() as u16);
        put16(&mut h, 0);
        h.extend_from_slice(&name);
        let record = Record {
            name,
            crc: 0,
            size: 0,
            offset: self.offset,
            dir,
            time,
            date,
        };
        Ok((h, record))
    }

    /// The data descriptor of an entry whose header and content are out.
    fn end(&mut self, record: Record, header_len: u64) -> Vec<u8> {
        let mut d = Vec::with_capacity(16);
        put32(&mut d, 0x0807_4b50);
        put32(&mut d, record.crc);
        put32(&mut d, record.size as u32);
        put32(&mut d, record.size as u32);
        self.offset += header_len + record.size + d.len() as u64;
        self.records.push(record);
        d
    }

    /// The central directory and end records, in pieces of about a MiB.
    ///
    /// Panics if a file is open.
    pub fn finish(self) -> Trailer {
        assert!(self.open.is_none(), "zip: a file is still open");
        Trailer {
            count: self.records.len() as u64,
            records: self.records.into_iter(),
            cd_start: self.offset,
            offset: self.offset,
            done: false,
        }
    }
}

/// The pieces of an archive's central directory and end records ([`Writer::finish`]).
pub struct Trailer {
    records: std::vec::IntoIter<Record>,
    count: u64,
    cd_start: u64,
    offset: u64,
    done: bool,
}

impl Iterator for Trailer {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let mut cd = Vec::new();
        for w in self.records.by_ref() {
            central_record(&mut cd, &w);
            if cd.len() >= CHUNK {
                self.offset += cd.len() as u64;
                return Some(cd);
            }
        }
        self.done = true;
        self.offset += cd.len() as u64;
        let (cd_start, cd_size, n) = (self.cd_start, self.offset - self.cd_start, self.count);
        if cd_start >= 0xFFFF_FFFF || cd_size >= 0xFFFF_FFFF || n >= 0xFFFF {
            let eocd64 = self.offset;
            put32(&mut cd, 0x0606_4b50);
            put64(&mut cd, 44);
            put16(&mut cd, 0x031e);
            put16(&mut cd, 45);
            put32(&mut cd, 0);
            put32(&mut cd, 0);
            put64(&mut cd, n);
            put64(&mut cd, n);
            put64(&mut cd, cd_size);
            put64(&mut cd, cd_start);
            put32(&mut cd, 0x0706_4b50);
            put32(&mut cd, 0);
            put64(&mut cd, eocd64);
            put32(&mut cd, 1);
        }
        put32(&mut cd, 0x0605_4b50);
        put16(&mut cd, 0);
        put16(&mut cd, 0);
        put16(&mut cd, n.min(0xFFFF) as u16);
        put16(&mut cd, n.min(0xFFFF) as u16);
        put32(&mut cd, cd_size.min(0xFFFF_FFFF) as u32);
        put32(&mut cd, cd_start.min(0xFFFF_FFFF) as u32);
        put16(&mut cd, 0);
        Some(cd)
    }
}

/// An entry's central directory record; a ZIP64 extra holds an offset past 4 GiB.
fn central_record(cd: &mut Vec<u8>, w: &Record) {
    let zip64 = w.offset >= 0xFFFF_FFFF;
    put32(cd, 0x0201_4b50);
    put16(cd, 0x031e); // made by: Unix, 3.0
    put16(cd, if zip64 { 45 } else { 20 });
    put16(cd, 0x0808);
    put16(cd, 0);
    put16(cd, w.time);
    put16(cd, w.date);
    put32(cd, w.crc);
    put32(cd, w.size as u32);
    put32(cd, w.size as u32);
    put16(cd, w.name.len() as u16);
    put16(cd, if zip64 { 12 } else { 0 });
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0);
    put32(
        cd,
        if w.dir {
            0o40755 << 16 | 0x10
        } else {
            0o100644 << 16
        },
    );
    put32(cd, if zip64 { 0xFFFF_FFFF } else { w.offset as u32 });
    cd.extend_from_slice(&w.name);
    if zip64 {
        put16(cd, 0x0001);
        put16(cd, 8);
        put64(cd, w.offset);
    }
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// The name inside the archive of the entry at `path_display`, when the archive holds the
/// folder at `folder_display` (names start at the folder itself: `/a/b/c` in `/a/b` is `b/c`).
pub fn entry_name<'a>(path_display: &'a str, folder_display: &str) -> &'a str {
    let skip = crate::path::parent_of(folder_display).chars().count() + 1;
    match path_display.char_indices().nth(skip) {
        Some((i, _)) => &path_display[i..],
        None => "",
    }
}

/// `name` as an archive holds it: a backslash, which a Dropbox name may contain, becomes `_`.
/// Extractors on Windows take `\` for a separator, so a file named `..\..\x.bat` would
/// otherwise be written outside the folder the archive is extracted into; ZIP's own
/// separator is `/` (APPNOTE 4.4.17), which no name contains.
pub fn portable_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains('\\') {
        std::borrow::Cow::Owned(name.replace('\\', "_"))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// The earliest and latest times a DOS date holds: 1980-01-01 00:00:00 and
/// 2107-12-31 23:59:58 (UTC).
const DOS_FIRST: i64 = 315_532_800;
const DOS_LAST: i64 = 4_354_819_198;

/// MS-DOS time and date of a Unix time (UTC), as ZIP headers hold them; times outside the
/// DOS range (1980 to 2107) are clamped to it.
pub fn dos_datetime(secs: i64) -> (u16, u16) {
    let t = crate::time::format(secs.clamp(DOS_FIRST, DOS_LAST));
    let n = |r: std::ops::Range<usize>| t[r].parse::<u16>().unwrap_or(0);
    let (y, mo, d, h, mi, s) = (n(0..4), n(5..7), n(8..10), n(11..13), n(14..16), n(17..19));
    (
        (h << 11) | (mi << 5) | (s / 2),
        ((y - 1980) << 9) | (mo << 5) | d,
    )
}

/// CRC-32 (IEEE), table-driven.
#[derive(Debug, Clone)]
pub struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    pub fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }

    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        for b in data {
            c = CRC_TABLE[((c ^ *b as u32) & 0xFF) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    pub fn finish(&self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
    }

    #[test]
    fn dos_time() {
        // 2015-05-12T15:50:38Z
        let (t, d) = dos_datetime(1_431_445_838);
        assert_eq!((t >> 11, (t >> 5) & 63, (t & 31) * 2), (15, 50, 38));
        assert_eq!(((d >> 9) + 1980, (d >> 5) & 15, d & 31), (2015, 5, 12));
    }

    #[test]
    fn dos_time_is_clamped_to_1980_through_2107() {
        let first = (0, (1 << 5) | 1);
        assert_eq!(dos_datetime(0), first);
        assert_eq!(dos_datetime(i64::MIN), first);
        let last = ((23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31);
        assert_eq!(dos_datetime(DOS_LAST), last);
        // 2108 and later used to wrap the 7-bit year (2108 read as 1980), and past year 9999
        // the formatted time no longer parsed (a panic with overflow checks).
        assert_eq!(dos_datetime(DOS_LAST + 2), last);
        assert_eq!(dos_datetime(253_402_300_800), last); // 10000-01-01
        assert_eq!(dos_datetime(i64::MAX), last);
    }

    #[test]
    fn backslashes_never_reach_an_archive() {
        assert_eq!(portable_name("a/..\\..\\x.bat"), "a/.._.._x.bat");
        assert!(matches!(
            portable_name("Été/x"),
            std::borrow::Cow::Borrowed("Été/x")
        ));
    }

    #[test]
    fn entry_names_start_at_the_folder() {
        assert_eq!(entry_name("/Album", "/Album"), "Album");
        assert_eq!(
            entry_name("/Album/Disc 2/Thé", "/Album"),
            "Album/Disc 2/Thé"
        );
        assert_eq!(entry_name("/a/Été/x", "/a/Été"), "Été/x");
        assert_eq!(entry_name("/a", "/a/b"), "");
    }

    #[test]
    fn a_small_archive_byte_for_byte() {
        let mut w = Writer::new();
        let mut out = w.folder("d").unwrap();
        out.extend(w.file("d/é", 1_431_445_838).unwrap());
        out.extend(b"hi");
        let mut c = Crc32::new();
        c.update(b"hi");
        out.extend(w.end_file(c.finish(), 2).unwrap());
        assert_eq!(w.offset(), out.len() as u64);
        let pieces: Vec<_> = w.finish().collect();
        assert_eq!(pieces.len(), 1);
        out.extend(&pieces[0]);
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, GOLDEN);
    }

    /// What the server wrote before the writer moved here, for the archive above.
    const GOLDEN: &str = concat!(
        "504b03041400080800000000210000000000000000000000000002000000642f504b07080000000000000000",
        "00000000504b0304140008080000537eac4600000000000000000000000004000000642fc3a96869504b0708",
        "ac2a93d80200000002000000504b01021e031400080800000000210000000000000000000000000002000000",
        "0000000000001000ed4100000000642f504b01021e03140008080000537eac46ac2a93d80200000002000000",
        "040000000000000000000000a48130000000642fc3a9504b0506000000000200020062000000640000000000",
    );

    #[test]
    fn limits() {
        let mut w = Writer::new();
        let long = "x".repeat(MAX_NAME);
        assert_eq!(w.folder(&long), Err(Error::NameTooLong(MAX_NAME + 1)));
        assert_eq!(w.file(&long, 0).map(|h| h.len()), Ok(30 + MAX_NAME));
        assert_eq!(
            w.end_file(0, MAX_SIZE + 1),
            Err(Error::TooLarge(MAX_SIZE + 1))
        );
    }
}
