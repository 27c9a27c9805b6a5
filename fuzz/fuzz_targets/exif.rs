//! `cubby_core::exif`: a photo's EXIF block, untrusted bytes from any uploaded file.
//!
//! Checks, on any input: nothing panics, and what is read is within its range (orientation
//! 1 to 8, a location on the globe, a time after 1900).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let e = cubby_core::exif::parse(data);
    if let Some(o) = e.orientation {
        assert!((1..=8).contains(&o), "orientation {o}");
    }
    if let Some((lat, lon)) = e.location {
        assert!(lat.abs() <= 90_000_000 && lon.abs() <= 180_000_000, "{lat} {lon}");
    }
    if let Some(t) = e.taken {
        assert!(t >= -2_208_988_800, "taken {t}");
    }
});
