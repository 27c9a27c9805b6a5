use std::time::{Duration, Instant};

use super::*;
use image::{Rgb, RgbImage, Rgba, RgbaImage};

const JPEG: Want = Want {
    size: ThumbnailSize::W256h256,
    mode: ThumbnailMode::Strict,
    format: ThumbnailFormat::Jpeg,
};

/// A photo-like test image: gradients and noise.
fn photo(w: u32, h: u32) -> RgbImage {
    let mut s: u32 = 7;
    RgbImage::from_fn(w, h, |x, y| {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let n = (s >> 27) as u8;
        Rgb([
            (x * 255 / w) as u8 ^ n,
            (y * 255 / h) as u8,
            n.wrapping_mul(3),
        ])
    })
}

fn jpeg_of(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(img)
        .unwrap();
    out
}

fn dims_of(encoded: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(encoded).unwrap();
    (img.width(), img.height())
}

fn thumb(data: &[u8], want: &Want) -> Result<Vec<u8>, Refused> {
    let p = probe(data)?;
    render(data, &p, want, p.cost(want))
}

#[test]
fn fit_follows_each_mode() {
    use ThumbnailMode::*;
    use ThumbnailSize::*;
    assert_eq!(fit(4000, 3000, W256h256, Strict), (256, 192));
    assert_eq!(fit(3000, 4000, W480h320, Strict), (240, 320));
    // bestfit turns the box to the image's shape.
    assert_eq!(fit(3000, 4000, W480h320, Bestfit), (320, 427));
    assert_eq!(fit(4000, 3000, W480h320, Bestfit), (427, 320));
    // fitone_bestfit covers the (turned) box.
    assert_eq!(fit(4000, 3000, W256h256, FitoneBestfit), (341, 256));
    assert_eq!(fit(4000, 1000, W480h320, FitoneBestfit), (1280, 320));
    // original only converts.
    assert_eq!(fit(4000, 3000, W64h64, Original), (4000, 3000));
    // Never enlarged, never empty.
    assert_eq!(fit(100, 50, W1024h768, Strict), (100, 50));
    assert_eq!(fit(10_000, 1, W32h32, Strict), (32, 1));
}

#[test]
fn every_size_mode_and_format_of_a_jpeg() {
    let data = jpeg_of(&photo(1200, 900));
    let p = probe(&data).unwrap();
    assert_eq!((p.width, p.height), (1200, 900));
    for &size in ThumbnailSize::ALL {
        for &mode in ThumbnailMode::ALL {
            for &format in ThumbnailFormat::ALL {
                let want = Want { size, mode, format };
                let out = thumb(&data, &want).unwrap();
                let guessed = image::guess_format(&out).unwrap();
                assert_eq!(guessed.to_mime_type(), format.mime(), "{want:?}");
                assert_eq!(dims_of(&out), fit(1200, 900, size, mode), "{want:?}");
            }
        }
    }
}

/// A JPEG with an APP1 EXIF segment holding `orientation`.
fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0\x01\0".to_vec();
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(app1.len() as u16 + 2).to_be_bytes());
    out.extend(app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_is_honoured() {
    // Left half red, right half blue, 400 × 200 as stored.
    let img = RgbImage::from_fn(400, 200, |x, _| {
        if x < 200 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let data = with_orientation(&jpeg_of(&img), 6);
    let p = probe(&data).unwrap();
    assert_eq!(p.orientation, 6);
    assert_eq!(p.seen(), (200, 400));
    let out = image::load_from_memory(&thumb(&data, &JPEG).unwrap())
        .unwrap()
        .into_rgb8();
    // Shown turned a quarter clockwise: 128 × 256, the stored left (red) on top.
    assert_eq!(out.dimensions(), (128, 256));
    let top = out.get_pixel(64, 20);
    let bottom = out.get_pixel(64, 235);
    assert!(top[0] > 200 && top[2] < 60, "top {top:?}");
    assert!(bottom[2] > 200 && bottom[0] < 60, "bottom {bottom:?}");
}

#[test]
fn every_input_format_reads() {
    let rgb = photo(300, 200);
    let rgba = RgbaImage::from_fn(300, 200, |x, y| {
        Rgba([x as u8, y as u8, 0, (x % 256) as u8])
    });
    let enc = |f: ImageFormat, img: &DynamicImage| {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, f).unwrap();
        out.into_inner()
    };
    let rgb = DynamicImage::ImageRgb8(rgb);
    let rgba = DynamicImage::ImageRgba8(rgba);
    for (f, img) in [
        (ImageFormat::Png, &rgba),
        (ImageFormat::Gif, &rgba),
        (ImageFormat::WebP, &rgba),
        (ImageFormat::Bmp, &rgb),
        (ImageFormat::Tiff, &rgb),
        (ImageFormat::Pnm, &rgb),
        (ImageFormat::Jpeg, &rgb),
    ] {
        let data = enc(f, img);
        for format in ThumbnailFormat::ALL {
            let want = Want {
                format: *format,
                ..JPEG
            };
            let out = thumb(&data, &want).unwrap_or_else(|e| panic!("{f:?} → {format:?}: {e:?}"));
            assert_eq!(dims_of(&out), (256, 171), "{f:?} → {format:?}");
        }
    }
}

#[test]
fn big_images_of_every_format_go_through_the_box_filter() {
    // 24 MB of pixels: more than a header's read may allocate, within a decode's allowance.
    let img = DynamicImage::ImageRgb8(photo(4000, 2000));
    for f in [
        ImageFormat::Png,
        ImageFormat::Tiff,
        ImageFormat::Bmp,
        ImageFormat::WebP,
    ] {
        let mut data = std::io::Cursor::new(Vec::new());
        img.write_to(&mut data, f).unwrap();
        let out = thumb(data.get_ref(), &JPEG).unwrap_or_else(|e| panic!("{f:?}: {e:?}"));
        assert_eq!(dims_of(&out), (256, 128), "{f:?}");
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A PNG whose header claims `w` × `h` (RGBA, 8 bits) followed by a little data.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], body: &[u8]| {
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend_from_slice(body);
        out.extend_from_slice(&c);
        out.extend_from_slice(&crc32(&c).to_be_bytes());
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]);
    chunk(b"IEND", &[]);
    out
}

/// Each hostile input is refused (or, for a damaged JPEG, drawn as far as it goes) well
/// within a second, without a panic.
fn quickly<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "{what} took {:?}",
        t.elapsed()
    );
    r
}

#[test]
fn an_image_claiming_too_many_pixels_is_refused_before_decoding() {
    let data = png_claiming(100_000, 100_000);
    assert!(data.len() < 1024);
    let r = quickly("100k × 100k PNG", || probe(&data));
    assert!(matches!(r, Err(Refused::Unsupported(_))), "{r:?}");
    let r = quickly("60k × 60k PNG", || probe(&png_claiming(60_000, 60_000)));
    assert!(matches!(r, Err(Refused::Unsupported(_))), "{r:?}");
    // Within the pixel limit but not the memory budget: the service refuses it by cost.
    let p = probe(&png_claiming(12_000, 12_000)).unwrap();
    assert!(p.cost(&JPEG) > crate::thumb::MEMORY_BUDGET);
    // A cost within the budget is honoured by the decoder's own limit too: a header that
    // lies about its data fails in decoding, not by allocating.
    let data = png_claiming(4_000, 4_000);
    let r = quickly("lying PNG", || thumb(&data, &JPEG));
    assert!(matches!(r, Err(Refused::Conversion(_))), "{r:?}");
}

#[test]
fn damaged_and_disguised_files_are_refused() {
    let good = jpeg_of(&photo(2000, 1500));
    for cut in [good.len() / 2, good.len() / 10, 600, 100, 4] {
        let r = quickly("truncated JPEG", || thumb(&good[..cut], &JPEG));
        if let Ok(out) = &r {
            // What was there is drawn, at the size asked.
            assert_eq!(dims_of(out), (256, 192));
        }
    }
    assert!(matches!(
        thumb(&good[..100], &JPEG),
        Err(Refused::Conversion(_))
    ));
    // A ZIP (say, a decompression bomb) named .jpg.
    let mut zip = b"PK\x03\x04\x14\0\0\0\x08\0".to_vec();
    zip.extend(std::iter::repeat_n(0u8, 4096));
    let r = quickly("zip", || thumb(&zip, &JPEG));
    assert!(matches!(r, Err(Refused::Unsupported(_))), "{r:?}");
    // Noise behind a JPEG's magic.
    let mut noise = vec![0xFF, 0xD8, 0xFF, 0xE0];
    let mut s = 1u32;
    noise.extend((0..100_000).map(|_| {
        s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (s >> 16) as u8
    }));
    let r = quickly("noise", || thumb(&noise, &JPEG));
    assert!(r.is_err(), "noise made a thumbnail");
}

#[test]
fn a_gif_of_ten_thousand_frames_is_read_to_its_first() {
    let mut data = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut data);
        let frames = (0..10_000u32).map(|i| {
            image::Frame::new(RgbaImage::from_pixel(
                64,
                64,
                Rgba([(i % 256) as u8, 0, 0, 255]),
            ))
        });
        enc.encode_frames(frames).unwrap();
    }
    let out = quickly("10,000-frame GIF", || thumb(&data, &JPEG)).unwrap();
    assert_eq!(dims_of(&out), (64, 64));
}

#[test]
fn spec_names_the_cache_entry() {
    assert_eq!(JPEG.spec(), "w256h256-strict.jpeg");
}
