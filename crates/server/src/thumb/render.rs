//! Making a thumbnail of an image in memory: probe its header, decode it at the smallest
//! size that will do, scale, orient and encode. No I/O; every allocation the decoders make
//! is bounded by the caller's allowance, and a header that claims too much is refused
//! before any pixel is decoded.
//!
//! JPEG, most of what people store, is decoded by `jpeg-decoder` scaled in the DCT domain
//! (1/2, 1/4 or 1/8 of each side, just above what the thumbnail needs), so a 12-megapixel
//! photo never exists at full size. Other formats go through `image`'s decoders under its
//! `Limits`, then a box filter brings them near the target before the final resize.

use std::io::Cursor;

use cubby_core::api::types::{ThumbnailFormat, ThumbnailMode, ThumbnailSize};
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

/// The longest side of an image Cubby decodes.
pub const MAX_SIDE: u32 = 65_535;

/// Pixels of an image Cubby decodes at all (a 150-megapixel JPEG scaled to 1/8 is cheap;
/// any other format must also fit the memory allowance at full size).
pub const MAX_PIXELS: u64 = 150_000_000;

/// What reading a header may allocate (metadata chunks, a TIFF's directories): the pixels
/// come later, under the decode's own allowance.
const PROBE_ALLOC: u64 = 16 << 20;

/// JPEG thumbnails' quality: Dropbox's look, a fraction of the bytes of 95.
const JPEG_QUALITY: u8 = 85;

/// What a thumbnail is asked to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Want {
    pub size: ThumbnailSize,
    pub mode: ThumbnailMode,
    pub format: ThumbnailFormat,
}

impl Want {
    /// The cache key's part for this request.
    pub fn spec(&self) -> String {
        format!(
            "{}-{}.{}",
            self.size.tag(),
            self.mode.tag(),
            self.format.tag()
        )
    }
}

/// Why an image gets no thumbnail: not one Cubby can read (`unsupported_image`), or one
/// whose decoding failed (`conversion_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Unsupported(String),
    Conversion(String),
}

/// An image's header, read without decoding pixels.
#[derive(Clone, Debug)]
pub struct Probe {
    format: ImageFormat,
    progressive: bool,
    /// As stored (before orientation).
    pub width: u32,
    pub height: u32,
    /// EXIF numbering, 1 (as stored) to 8.
    pub orientation: u8,
    /// When the photo was taken (Unix seconds), if it says.
    pub taken: Option<i64>,
    /// Where (millionths of a degree), if it says.
    pub location: Option<(i64, i64)>,
    /// What the full decode buffer of a non-JPEG takes, as its decoder says.
    full_bytes: u64,
    /// Whether the box filter reads the decoded pixels as they are (8-bit grey or RGB).
    direct: bool,
}

impl Probe {
    /// Width and height as the image is seen (after its orientation).
    pub fn seen(&self) -> (u32, u32) {
        if swaps_axes(self.orientation) {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    /// Bytes the decode of this image for `want` allocates at most (about).
    pub fn cost(&self, want: &Want) -> u64 {
        let (w, h) = (u64::from(self.width), u64::from(self.height));
        let (tw, th) = self.stored_target(want);
        // The final resize's intermediate (a row of floats per source row) and its output.
        let resize = |src_h: u64| u64::from(tw) * src_h * 16 + u64::from(tw) * u64::from(th) * 4;
        if self.format == ImageFormat::Jpeg {
            let k = u64::from(jpeg_scale(self.width, self.height, (tw, th)));
            let (dw, dh) = (w.div_ceil(k), h.div_ceil(k));
            // The decoder's planes and its output.
            let out = dw * dh * 4 * 2;
            // A progressive JPEG keeps every coefficient (2 bytes each, up to three full
            // planes) until its last scan.
            let coefficients = if self.progressive { w * h * 3 * 2 } else { 0 };
            out + coefficients + resize(dh)
        } else {
            // Plus an RGBA copy for colour types the box filter does not read directly.
            let copy = if self.direct { 0 } else { w * h * 4 };
            self.full_bytes + copy + resize(h.min(u64::from(th) * 4))
        }
    }

    /// The thumbnail's size, as seen.
    pub fn target(&self, want: &Want) -> (u32, u32) {
        let (w, h) = self.seen();
        fit(w, h, want.size, want.mode)
    }

    /// The thumbnail's size in the stored orientation.
    fn stored_target(&self, want: &Want) -> (u32, u32) {
        let (tw, th) = self.target(want);
        if swaps_axes(self.orientation) {
            (th, tw)
        } else {
            (tw, th)
        }
    }
}

fn swaps_axes(orientation: u8) -> bool {
    (5..=8).contains(&orientation)
}

/// The size of a `w`×`h` image scaled for `size` and `mode` (never enlarged): `strict` fits
/// the box; `bestfit` fits the box or its transpose, whichever matches the image's shape;
/// `fitone_bestfit` covers that box; `original` keeps the image's size.
pub fn fit(w: u32, h: u32, size: ThumbnailSize, mode: ThumbnailMode) -> (u32, u32) {
    if mode == ThumbnailMode::Original {
        return (w, h);
    }
    let (mut bw, mut bh) = size.dims();
    let transposable = matches!(mode, ThumbnailMode::Bestfit | ThumbnailMode::FitoneBestfit);
    if transposable && (w >= h) != (bw >= bh) {
        std::mem::swap(&mut bw, &mut bh);
    }
    let (sx, sy) = (f64::from(bw) / f64::from(w), f64::from(bh) / f64::from(h));
    let s = match mode {
        ThumbnailMode::FitoneBestfit => sx.max(sy),
        _ => sx.min(sy),
    }
    .min(1.0);
    let side = |v: u32| ((f64::from(v) * s).round() as u32).clamp(1, v);
    (side(w), side(h))
}

/// The largest DCT scale divisor (1, 2, 4 or 8) whose output still covers `target`.
fn jpeg_scale(w: u32, h: u32, target: (u32, u32)) -> u32 {
    let mut k = 8;
    while k > 1 && (w.div_ceil(k) < target.0 || h.div_ceil(k) < target.1) {
        k /= 2;
    }
    k
}

/// Reads the header of `data`.
pub fn probe(data: &[u8]) -> Result<Probe, Refused> {
    let format = image::guess_format(data)
        .map_err(|_| Refused::Unsupported("not an image Cubby reads".into()))?;
    let p = match format {
        ImageFormat::Jpeg => {
            let mut d = jpeg_decoder::Decoder::new(Cursor::new(data));
            d.read_info()
                .map_err(|e| Refused::Conversion(format!("JPEG header: {e}")))?;
            let info = d
                .info()
                .ok_or_else(|| Refused::Conversion("JPEG without a frame header".into()))?;
            let exif = d
                .exif_data()
                .map(cubby_core::exif::parse)
                .unwrap_or_default();
            Probe {
                format,
                progressive: info.coding_process == jpeg_decoder::CodingProcess::DctProgressive,
                width: u32::from(info.width),
                height: u32::from(info.height),
                orientation: exif.orientation.unwrap_or(1),
                taken: exif.taken,
                location: exif.location,
                full_bytes: 0,
                direct: true,
            }
        }
        ImageFormat::Png
        | ImageFormat::Gif
        | ImageFormat::WebP
        | ImageFormat::Bmp
        | ImageFormat::Tiff
        | ImageFormat::Pnm => {
            let mut d = decoder(data, format, PROBE_ALLOC)?;
            let (width, height) = d.dimensions();
            let direct = matches!(
                d.color_type(),
                image::ColorType::L8 | image::ColorType::La8 | image::ColorType::Rgb8
            );
            let orientation = d.orientation().map(Orientation::to_exif).unwrap_or(1);
            let exif = d
                .exif_metadata()
                .ok()
                .flatten()
                .map(|e| cubby_core::exif::parse(&e))
                .unwrap_or_default();
            Probe {
                format,
                progressive: false,
                width,
                height,
                orientation,
                taken: exif.taken,
                location: exif.location,
                full_bytes: d.total_bytes(),
                direct,
            }
        }
        other => {
            return Err(Refused::Unsupported(format!(
                "{} images get no thumbnail",
                other.extensions_str().first().unwrap_or(&"such")
            )));
        }
    };
    if p.width == 0 || p.height == 0 {
        return Err(Refused::Unsupported("an image without pixels".into()));
    }
    if p.width > MAX_SIDE
        || p.height > MAX_SIDE
        || u64::from(p.width) * u64::from(p.height) > MAX_PIXELS
    {
        return Err(Refused::Unsupported(format!(
            "{} × {} pixels is more than Cubby decodes",
            p.width, p.height
        )));
    }
    Ok(p)
}

/// A decoder of `image` for `data`, allocating at most `max_alloc` bytes.
fn decoder(
    data: &[u8],
    format: ImageFormat,
    max_alloc: u64,
) -> Result<Box<dyn ImageDecoder + '_>, Refused> {
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(max_alloc);
    reader.limits(limits);
    reader
        .into_decoder()
        .map(|d| Box::new(d) as Box<dyn ImageDecoder>)
        .map_err(|e| match e {
            image::ImageError::Limits(e) => Refused::Unsupported(format!("too large: {e}")),
            image::ImageError::Unsupported(e) => Refused::Unsupported(e.to_string()),
            e => Refused::Conversion(e.to_string()),
        })
}

/// Makes the thumbnail of `data` (whose header is `probe`) as `want` says, allocating at
/// most about `max_alloc` bytes in the decoders.
pub fn render(data: &[u8], probe: &Probe, want: &Want, max_alloc: u64) -> Result<Vec<u8>, Refused> {
    let (tw, th) = probe.stored_target(want);
    let img = if probe.format == ImageFormat::Jpeg {
        decode_jpeg(data, (tw, th), max_alloc)?
    } else {
        let d = decoder(data, probe.format, max_alloc)?;
        let img = DynamicImage::from_decoder(d).map_err(|e| match e {
            image::ImageError::Limits(e) => Refused::Unsupported(format!("too large: {e}")),
            e => Refused::Conversion(e.to_string()),
        })?;
        box_reduce(img, (tw, th))
    };
    let mut img = if (img.width(), img.height()) == (tw, th) {
        img
    } else {
        img.resize_exact(tw, th, FilterType::Triangle)
    };
    if let Some(o) = Orientation::from_exif(probe.orientation) {
        img.apply_orientation(o);
    }
    encode(img, want.format)
}

/// Decodes a JPEG at the smallest DCT scale that covers `target`.
fn decode_jpeg(data: &[u8], target: (u32, u32), max_alloc: u64) -> Result<DynamicImage, Refused> {
    use jpeg_decoder::PixelFormat;
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(data));
    d.set_max_decoding_buffer_size(usize::try_from(max_alloc).unwrap_or(usize::MAX));
    let req = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    let (w, h) = d
        .scale(req(target.0), req(target.1))
        .map_err(|e| Refused::Conversion(format!("JPEG: {e}")))?;
    let pixels = d
        .decode()
        .map_err(|e| Refused::Conversion(format!("JPEG: {e}")))?;
    let format = d
        .info()
        .map(|i| i.pixel_format)
        .ok_or_else(|| Refused::Conversion("JPEG without a frame header".into()))?;
    let (w, h) = (u32::from(w), u32::from(h));
    let short = || Refused::Conversion("JPEG decoded short".into());
    Ok(match format {
        PixelFormat::RGB24 => {
            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, pixels).ok_or_else(short)?)
        }
        PixelFormat::L8 => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, pixels).ok_or_else(short)?)
        }
        PixelFormat::L16 => {
            let eight = pixels.chunks_exact(2).map(|p| p[0]).collect();
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, eight).ok_or_else(short)?)
        }
        PixelFormat::CMYK32 => {
            // As Adobe writes it (inverted): each channel is already "255 − ink".
            let rgb = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = u16::from(p[3]);
                    [0, 1, 2].map(|i| (u16::from(p[i]) * k / 255) as u8)
                })
                .collect();
            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, rgb).ok_or_else(short)?)
        }
    })
}

/// Averages `k`×`k` squares of `img`, `k` the largest whole factor that keeps it at least
/// twice `target` on both sides, so the final resize reads few pixels per output pixel.
fn box_reduce(img: DynamicImage, target: (u32, u32)) -> DynamicImage {
    let k = (img.width() / target.0.max(1)).min(img.height() / target.1.max(1)) / 2;
    if k < 2 {
        return img;
    }
    match img {
        DynamicImage::ImageRgb8(i) => {
            let (w, h) = i.dimensions();
            let (nw, nh, px) = average(i.as_raw(), w, h, 3, k);
            DynamicImage::ImageRgb8(RgbImage::from_raw(nw, nh, px).expect("sized"))
        }
        DynamicImage::ImageLuma8(i) => {
            let (w, h) = i.dimensions();
            let (nw, nh, px) = average(i.as_raw(), w, h, 1, k);
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(nw, nh, px).expect("sized"))
        }
        DynamicImage::ImageLumaA8(i) => {
            let (w, h) = i.dimensions();
            let (nw, nh, px) = average(i.as_raw(), w, h, 2, k);
            DynamicImage::ImageLumaA8(image::GrayAlphaImage::from_raw(nw, nh, px).expect("sized"))
        }
        other => {
            let i = other.into_rgba8();
            let (w, h) = i.dimensions();
            let (nw, nh, px) = average(i.as_raw(), w, h, 4, k);
            DynamicImage::ImageRgba8(image::RgbaImage::from_raw(nw, nh, px).expect("sized"))
        }
    }
}

/// The mean of each `k`×`k` square of a `w`×`h` image of `n` 8-bit channels (a partial
/// square at the right or bottom edge is dropped).
fn average(px: &[u8], w: u32, h: u32, n: usize, k: u32) -> (u32, u32, Vec<u8>) {
    let (nw, nh) = (w / k, h / k);
    let (w, k) = (w as usize, k as usize);
    let mut out = Vec::with_capacity(nw as usize * nh as usize * n);
    let mut acc = vec![0u32; nw as usize * n];
    for y in 0..nh as usize {
        acc.iter_mut().for_each(|a| *a = 0);
        for row in px[y * k * w * n..].chunks_exact(w * n).take(k) {
            for (x, a) in acc.chunks_exact_mut(n).enumerate() {
                for p in row[x * k * n..(x + 1) * k * n].chunks_exact(n) {
                    for c in 0..n {
                        a[c] += u32::from(p[c]);
                    }
                }
            }
        }
        let area = (k * k) as u32;
        out.extend(acc.iter().map(|a| ((a + area / 2) / area) as u8));
    }
    (nw, nh, out)
}

/// Encodes `img` in `format`; JPEG has no alpha, so a transparent image is laid on white.
fn encode(img: DynamicImage, format: ThumbnailFormat) -> Result<Vec<u8>, Refused> {
    let mut out = Vec::new();
    let failed = |e: image::ImageError| Refused::Conversion(format!("encoding: {e}"));
    match format {
        ThumbnailFormat::Jpeg => {
            let rgb = on_white(img);
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
                .encode_image(&rgb)
                .map_err(failed)?;
        }
        ThumbnailFormat::Png => {
            let img = eight_bit(img);
            let enc = image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            );
            img.write_with_encoder(enc).map_err(failed)?;
        }
        ThumbnailFormat::Webp => {
            let img = match eight_bit(img) {
                i @ (DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_)) => i,
                other => DynamicImage::ImageRgba8(other.into_rgba8()),
            };
            let enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            img.write_with_encoder(enc).map_err(failed)?;
        }
    }
    Ok(out)
}

/// `img` with 8-bit channels.
fn eight_bit(img: DynamicImage) -> DynamicImage {
    match img {
        i @ (DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_)
        | DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)) => i,
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.into_rgba8()),
        other => DynamicImage::ImageRgb8(other.into_rgb8()),
    }
}

/// `img` without alpha, composited over white.
fn on_white(img: DynamicImage) -> DynamicImage {
    if !img.color().has_alpha() {
        return match img {
            i @ (DynamicImage::ImageRgb8(_) | DynamicImage::ImageLuma8(_)) => i,
            other => DynamicImage::ImageRgb8(other.into_rgb8()),
        };
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let px = rgba
        .as_raw()
        .chunks_exact(4)
        .flat_map(|p| {
            let a = u16::from(p[3]);
            [0, 1, 2].map(|i| ((u16::from(p[i]) * a + 255 * (255 - a) + 127) / 255) as u8)
        })
        .collect();
    DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, px).expect("sized"))
}

#[cfg(test)]
mod tests;
