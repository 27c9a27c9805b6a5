//! The two things a thumbnail needs from a photo's EXIF block: its orientation and when it
//! was taken. The block is untrusted bytes: every offset is checked, and a walk reads at
//! most [`MAX_ENTRIES`] entries.

/// Entries read from one directory at most (real photos have a few dozen).
const MAX_ENTRIES: usize = 512;

const ORIENTATION: u16 = 0x0112;
const DATE_TIME: u16 = 0x0132;
const EXIF_IFD: u16 = 0x8769;
const DATE_TIME_ORIGINAL: u16 = 0x9003;
const GPS_IFD: u16 = 0x8825;
const GPS_LATITUDE_REF: u16 = 1;
const GPS_LATITUDE: u16 = 2;
const GPS_LONGITUDE_REF: u16 = 3;
const GPS_LONGITUDE: u16 = 4;

/// What the block says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exif {
    /// 1 to 8 as EXIF numbers them (1: as stored), if the block says.
    pub orientation: Option<u8>,
    /// When the photo was taken, as a Unix time (EXIF gives local time without a zone; it
    /// is read as UTC, as Dropbox shows it).
    pub taken: Option<i64>,
    /// Where, as (latitude, longitude) in millionths of a degree, north and east positive.
    pub location: Option<(i64, i64)>,
}

/// Reads a TIFF-structured EXIF block, with or without the `Exif\0\0` header of JPEG's APP1.
pub fn parse(data: &[u8]) -> Exif {
    let data = data.strip_prefix(b"Exif\0\0").unwrap_or(data);
    let Some(t) = Tiff::new(data) else {
        return Exif::default();
    };
    let mut out = Exif::default();
    let Some(ifd0) = t.u32(4) else { return out };
    let mut date = None;
    let mut sub = None;
    let mut gps = None;
    t.walk(ifd0 as usize, |tag, typ, count, at| match tag {
        ORIENTATION if typ == 3 => {
            out.orientation = t
                .u16(at)
                .and_then(|v| u8::try_from(v).ok())
                .filter(|v| (1..=8).contains(v));
        }
        DATE_TIME => date = t.ascii(typ, count, at),
        EXIF_IFD if typ == 4 || typ == 13 => sub = t.u32(at),
        GPS_IFD if typ == 4 || typ == 13 => gps = t.u32(at),
        _ => {}
    });
    if let Some(sub) = sub {
        t.walk(sub as usize, |tag, typ, count, at| {
            if tag == DATE_TIME_ORIGINAL
                && let Some(d) = t.ascii(typ, count, at)
            {
                date = Some(d);
            }
        });
    }
    out.taken = date.and_then(parse_date);
    if let Some(gps) = gps {
        let (mut lat, mut lon, mut lat_ref, mut lon_ref) = (None, None, None, None);
        t.walk(gps as usize, |tag, typ, count, at| match tag {
            GPS_LATITUDE_REF => lat_ref = t.ascii(typ, count, at).and_then(|r| r.first().copied()),
            GPS_LONGITUDE_REF => lon_ref = t.ascii(typ, count, at).and_then(|r| r.first().copied()),
            GPS_LATITUDE => lat = t.degrees(typ, count, at),
            GPS_LONGITUDE => lon = t.degrees(typ, count, at),
            _ => {}
        });
        let signed = |v: Option<i64>, r: Option<u8>, neg: u8, max: i64| {
            let v = if r == Some(neg) { -v? } else { v? };
            (v.abs() <= max * 1_000_000).then_some(v)
        };
        if let (Some(la), Some(lo)) = (
            signed(lat, lat_ref, b'S', 90),
            signed(lon, lon_ref, b'W', 180),
        ) {
            out.location = Some((la, lo));
        }
    }
    out
}

/// `YYYY:MM:DD HH:MM:SS` as a Unix time.
fn parse_date(s: &[u8]) -> Option<i64> {
    if s.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[r];
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 || y < 1900
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Tiff<'a> {
    data: &'a [u8],
    little: bool,
}

impl<'a> Tiff<'a> {
    fn new(data: &'a [u8]) -> Option<Self> {
        let little = match data.get(..4)? {
            b"II*\0" => true,
            b"MM\0*" => false,
            _ => return None,
        };
        Some(Tiff { data, little })
    }

    fn u16(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.data.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    /// Calls `f(tag, type, count, value_offset)` for each entry of the directory at `at`;
    /// `value_offset` is where the entry's value field is (inline values live there).
    fn walk(&self, at: usize, mut f: impl FnMut(u16, u16, u32, usize)) {
        let Some(n) = self.u16(at) else { return };
        for i in 0..usize::from(n).min(MAX_ENTRIES) {
            let e = at + 2 + i * 12;
            let (Some(tag), Some(typ), Some(count)) =
                (self.u16(e), self.u16(e + 2), self.u32(e + 4))
            else {
                return;
            };
            f(tag, typ, count, e + 8);
        }
    }

    /// Three RATIONALs (type 5: degrees, minutes, seconds) as millionths of a degree.
    fn degrees(&self, typ: u16, count: u32, at: usize) -> Option<i64> {
        if typ != 5 || count != 3 {
            return None;
        }
        let start = self.u32(at)? as usize;
        let mut total = 0f64;
        for (i, scale) in [1.0, 60.0, 3600.0].into_iter().enumerate() {
            let p = start.checked_add(i * 8)?;
            let (num, den) = (self.u32(p)?, self.u32(p + 4)?);
            if den == 0 {
                return None;
            }
            total += f64::from(num) / f64::from(den) / scale;
        }
        Some((total * 1_000_000.0).round() as i64)
    }

    /// An ASCII value (type 2) of `count` bytes, inline or at its offset.
    fn ascii(&self, typ: u16, count: u32, at: usize) -> Option<&'a [u8]> {
        if typ != 2 {
            return None;
        }
        let count = count as usize;
        let start = if count <= 4 {
            at
        } else {
            self.u32(at)? as usize
        };
        self.data.get(start..start.checked_add(count)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little- or big-endian block: IFD0 with an orientation and a pointer to an EXIF
    /// directory holding DateTimeOriginal.
    fn block(little: bool, orientation: u16, date: &str) -> Vec<u8> {
        let w16 = |v: u16| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let w32 = |v: u32| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let mut b = Vec::new();
        b.extend_from_slice(if little { b"II*\0" } else { b"MM\0*" });
        b.extend_from_slice(&w32(8));
        // IFD0 at 8: two entries.
        b.extend_from_slice(&w16(2));
        b.extend_from_slice(&w16(ORIENTATION));
        b.extend_from_slice(&w16(3));
        b.extend_from_slice(&w32(1));
        b.extend_from_slice(&w16(orientation));
        b.extend_from_slice(&[0, 0]);
        let sub_at = 8 + 2 + 2 * 12 + 4;
        b.extend_from_slice(&w16(EXIF_IFD));
        b.extend_from_slice(&w16(4));
        b.extend_from_slice(&w32(1));
        b.extend_from_slice(&w32(sub_at as u32));
        b.extend_from_slice(&w32(0));
        // EXIF IFD: one entry, the date after it.
        let date_at = sub_at + 2 + 12 + 4;
        b.extend_from_slice(&w16(1));
        b.extend_from_slice(&w16(DATE_TIME_ORIGINAL));
        b.extend_from_slice(&w16(2));
        b.extend_from_slice(&w32(date.len() as u32 + 1));
        b.extend_from_slice(&w32(date_at as u32));
        b.extend_from_slice(&w32(0));
        b.extend_from_slice(date.as_bytes());
        b.push(0);
        b
    }

    #[test]
    fn reads_orientation_and_date_in_both_byte_orders() {
        for little in [true, false] {
            let e = parse(&block(little, 6, "2014:07:12 18:30:05"));
            assert_eq!(e.orientation, Some(6));
            // 2014-07-12T18:30:05Z
            assert_eq!(e.taken, Some(1_405_189_805));
        }
        let mut with_header = b"Exif\0\0".to_vec();
        with_header.extend(block(true, 3, "2000:01:01 00:00:00"));
        assert_eq!(
            parse(&with_header),
            Exif {
                orientation: Some(3),
                taken: Some(946_684_800),
                location: None
            }
        );
    }

    #[test]
    fn reads_the_location() {
        // IFD0 with one entry: the GPS directory, which holds S 33° 51' 54" and E 151° 12' 36".
        let mut b = b"II*\0\x08\0\0\0".to_vec();
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&GPS_IFD.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&26u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(b.len(), 26);
        let rationals_at = 26 + 2 + 4 * 12 + 4;
        b.extend_from_slice(&4u16.to_le_bytes());
        let entry = |b: &mut Vec<u8>, tag: u16, typ: u16, count: u32, value: u32| {
            b.extend_from_slice(&tag.to_le_bytes());
            b.extend_from_slice(&typ.to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&value.to_le_bytes());
        };
        entry(&mut b, GPS_LATITUDE_REF, 2, 2, u32::from(b'S'));
        entry(&mut b, GPS_LATITUDE, 5, 3, rationals_at as u32);
        entry(&mut b, GPS_LONGITUDE_REF, 2, 2, u32::from(b'E'));
        entry(&mut b, GPS_LONGITUDE, 5, 3, rationals_at as u32 + 24);
        b.extend_from_slice(&0u32.to_le_bytes());
        for (num, den) in [
            (33, 1),
            (51, 1),
            (54, 1),
            (151, 1),
            (1260, 100),
            (3600, 100),
        ] {
            b.extend_from_slice(&(num as u32).to_le_bytes());
            b.extend_from_slice(&(den as u32).to_le_bytes());
        }
        assert_eq!(parse(&b).location, Some((-33_865_000, 151_220_000)));
    }

    #[test]
    fn nonsense_reads_as_nothing() {
        assert_eq!(parse(b""), Exif::default());
        assert_eq!(parse(b"II*\0\xff\xff\xff\xff"), Exif::default());
        assert_eq!(
            parse(&block(true, 9, "2014:13:12 18:30:05")),
            Exif::default()
        );
        assert_eq!(parse(&block(true, 1, "    :  :     :  :  ")).taken, None);
        // Every truncation of a valid block parses without panicking.
        let b = block(false, 8, "2019:02:28 23:59:59");
        for n in 0..b.len() {
            let _ = parse(&b[..n]);
        }
    }
}
