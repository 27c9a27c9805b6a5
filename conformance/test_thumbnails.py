"""Thumbnails, previews and media info through the official SDK: files/get_thumbnail_v2 (on a
path for every size × format × mode, and through shared links with a user's token or the app's
key and secret), files/get_thumbnail, files/get_thumbnail_batch, files/get_preview, and
media_info in files/get_metadata. Every error is checked as the SDK parses it.

The images are checked by their headers (PNG IHDR, JPEG SOF, WebP VP8/VP8L/VP8X), read by the
small pure-Python helpers below; the test images are made here (PNGs with zlib, JPEGs by
inserting EXIF segments into the SDK's own sample photo, see cubby_helpers.sdk_fixture)."""

import base64
import datetime
import math
import os
import struct
import time
import uuid
import zlib

import dropbox
import pytest
from dropbox import files, sharing
from dropbox.exceptions import AuthError, BadInputError

from cubby_helpers import api_error, sdk_fixture

FROG = sdk_fixture("Costa Rican Frog.jpg")
FROG_SIZE = (1024, 768)

SIZES = [
    "w32h32",
    "w64h64",
    "w128h128",
    "w256h256",
    "w480h320",
    "w640h480",
    "w960h640",
    "w1024h768",
    "w2048h1536",
]
FORMATS = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
MODES = ["strict", "bestfit", "fitone_bestfit", "original"]


def box(size):
    w, h = size[1:].split("h")
    return int(w), int(h)


def sdk_size(size):
    return getattr(files.ThumbnailSize, size)


def sdk_format(fmt):
    return getattr(files.ThumbnailFormat, fmt)


def sdk_mode(mode):
    return getattr(files.ThumbnailMode, mode)


# ---------------------------------------------------------------------------------------
# Images: made, and measured from their headers


def png(width, height, alpha=False):
    """An 8-bit RGB (or RGBA) PNG with a horizontal gradient."""
    channels = 4 if alpha else 3
    row = bytearray()
    for x in range(width):
        px = [x * 255 // max(width - 1, 1), (x * 7) % 256, 128]
        if alpha:
            px.append(x * 255 // max(width - 1, 1))
        row.extend(px)
    assert len(row) == width * channels
    raw = (b"\x00" + bytes(row)) * height

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(data):
    """(kind, width, height) of a PNG, JPEG or WebP, from its header."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        assert data[12:16] == b"IHDR", data[:32]
        w, h = struct.unpack(">II", data[16:24])
        return "png", w, h
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 4 <= len(data):
            assert data[i] == 0xFF, ("JPEG marker expected", i, data[i : i + 4])
            while data[i] == 0xFF:
                i += 1
            marker = data[i]
            i += 1
            if marker == 0x01 or 0xD0 <= marker <= 0xD7:
                continue
            (length,) = struct.unpack(">H", data[i : i + 2])
            if marker in _SOF:
                h, w = struct.unpack(">HH", data[i + 3 : i + 7])
                return "jpeg", w, h
            if marker == 0xDA:
                break
            i += length
        raise AssertionError("JPEG without a frame header")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        (riff_len,) = struct.unpack("<I", data[4:8])
        assert riff_len + 8 == len(data), (riff_len, len(data))
        kind = data[12:16]
        if kind == b"VP8L":
            assert data[20] == 0x2F, data[:32]
            bits = int.from_bytes(data[21:25], "little")
            return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if kind == b"VP8 ":
            assert data[23:26] == b"\x9d\x01\x2a", data[:32]
            w = int.from_bytes(data[26:28], "little") & 0x3FFF
            h = int.from_bytes(data[28:30], "little") & 0x3FFF
            return "webp", w, h
        if kind == b"VP8X":
            w = int.from_bytes(data[24:27], "little") + 1
            h = int.from_bytes(data[27:30], "little") + 1
            return "webp", w, h
        raise AssertionError("unknown WebP chunk {!r}".format(kind))
    raise AssertionError("not a PNG, JPEG or WebP: {!r}".format(data[:16]))


def png_color_type(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return data[25]


def exif_app1(date_time_original=None, orientation=None):
    """A JPEG APP1 segment holding a big-endian EXIF (TIFF) block: IFD0 with Orientation
    and a pointer to an Exif IFD with DateTimeOriginal ('YYYY:MM:DD HH:MM:SS')."""
    ifd0 = []  # (tag, type, count, 4-byte value)
    if orientation is not None:
        ifd0.append((0x0112, 3, 1, struct.pack(">HH", orientation, 0)))
    if date_time_original is not None:
        ifd0.append((0x8769, 4, 1, None))
    ifd0_len = 2 + 12 * len(ifd0) + 4
    exif_ifd_at = 8 + ifd0_len
    date = None
    if date_time_original is not None:
        date = date_time_original.encode("ascii") + b"\x00"
        assert len(date) == 20
    out = bytearray(b"MM\x00\x2a" + struct.pack(">I", 8))
    out += struct.pack(">H", len(ifd0))
    for tag, typ, count, value in ifd0:
        if value is None:
            value = struct.pack(">I", exif_ifd_at)
        out += struct.pack(">HHI", tag, typ, count) + value
    out += struct.pack(">I", 0)
    if date is not None:
        assert len(out) == exif_ifd_at
        date_at = exif_ifd_at + 2 + 12 + 4
        out += struct.pack(">H", 1)
        out += struct.pack(">HHII", 0x9003, 2, len(date), date_at)
        out += struct.pack(">I", 0)
        out += date
    payload = b"Exif\x00\x00" + bytes(out)
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def with_exif(jpeg, **kwargs):
    """`jpeg` with an EXIF APP1 segment inserted after its SOI (and JFIF APP0, if any)."""
    assert jpeg[:2] == b"\xff\xd8"
    at = 2
    if jpeg[2:4] == b"\xff\xe0":
        (length,) = struct.unpack(">H", jpeg[4:6])
        at = 4 + length
    return jpeg[:at] + exif_app1(**kwargs) + jpeg[at:]


def expected_fit(w, h, size, mode):
    """The size Dropbox's documentation gives a w×h image for `size` and `mode` (never
    enlarged): strict fits the box; bestfit fits the box or its transpose (whichever keeps
    more); fitone_bestfit covers the box or its transpose (whichever needs less);
    original: "Don't resize the image at all"."""
    if mode == "original":
        return w, h
    bw, bh = box(size)

    def scale(bw, bh, cover):
        sx, sy = bw / w, bh / h
        return min(max(sx, sy) if cover else min(sx, sy), 1.0)

    if mode == "strict":
        s = scale(bw, bh, False)
    elif mode == "bestfit":
        s = max(scale(bw, bh, False), scale(bh, bw, False))
    elif mode == "fitone_bestfit":
        s = min(scale(bw, bh, True), scale(bh, bw, True))
    else:
        raise AssertionError(mode)

    def side(v):
        return min(max(int(math.floor(v * s + 0.5)), 1), v)

    return side(w), side(h)


def test_helpers_read_what_they_make():
    """The helpers themselves, so a failure below is the server's."""
    assert image_size(png(7, 5)) == ("png", 7, 5)
    assert png_color_type(png(3, 2, alpha=True)) == 6
    assert image_size(FROG) == ("jpeg", 1024, 768)
    tagged = with_exif(FROG, date_time_original="2019:05:04 13:14:15", orientation=6)
    assert image_size(tagged) == ("jpeg", 1024, 768)
    assert b"Exif\x00\x00MM" in tagged[:200]
    assert expected_fit(1024, 768, "w64h64", "strict") == (64, 48)
    assert expected_fit(360, 600, "w480h320", "bestfit") == (288, 480)
    assert expected_fit(360, 600, "w480h320", "strict") == (192, 320)
    assert expected_fit(1024, 768, "w480h320", "fitone_bestfit") == (480, 360)
    assert expected_fit(1024, 768, "w2048h1536", "strict") == (1024, 768)


# ---------------------------------------------------------------------------------------
# Fixtures

TALL = (360, 600)
SOURCES = {
    "frog.jpg": (FROG, FROG_SIZE),
    "tall.png": (png(*TALL), TALL),
}


@pytest.fixture(scope="module")
def folder(dbx):
    """A folder of test images, uploaded once for the module."""
    root = "/thumbs-" + uuid.uuid4().hex[:12]
    for name, (data, _) in SOURCES.items():
        dbx.files_upload(data, root + "/" + name)
    dbx.files_upload(png(40, 30, alpha=True), root + "/alpha.png")
    dbx.files_upload(b"plain text, not an image\n", root + "/notes.txt")
    dbx.files_upload(b"this is not a JPEG at all", root + "/broken.jpg")
    # A JPEG whose header says it is one, then ends: the decode fails part way.
    dbx.files_upload(FROG[:160], root + "/truncated.jpg")
    dbx.files_create_folder_v2(root + "/Sub.jpg")
    return root


def path_of(name_or_path, folder):
    return files.PathOrLink.path(folder + "/" + name_or_path)


def thumb_v2(client, resource, **kwargs):
    """get_thumbnail_v2; returns (PreviewResult, status, content type, body)."""
    res, resp = client.files_get_thumbnail_v2(resource, **kwargs)
    try:
        return res, resp.status_code, resp.headers.get("Content-Type"), resp.content
    finally:
        resp.close()


# ---------------------------------------------------------------------------------------
# get_thumbnail_v2 on a path: every size × format × mode


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_v2_path_size_format_mode(dbx, folder, source, size, fmt, mode):
    res, status, ctype, body = thumb_v2(
        dbx,
        path_of(source, folder),
        format=sdk_format(fmt),
        size=sdk_size(size),
        mode=sdk_mode(mode),
    )
    assert status == 200
    assert ctype == FORMATS[fmt], ctype
    kind, w, h = image_size(body)
    assert kind == fmt, (kind, fmt)
    sw, sh = SOURCES[source][1]
    assert (w, h) == expected_fit(sw, sh, size, mode), (
        "{} {}×{} as {} {}: got {}×{}".format(source, sw, sh, size, mode, w, h)
    )
    assert isinstance(res, files.PreviewResult), res
    assert res.link_metadata is None
    md = res.file_metadata
    assert isinstance(md, files.FileMetadata), md
    assert md.path_display == folder + "/" + source


def test_v2_defaults_media_info_and_transparency(dbx, folder):
    # The SDK's defaults: jpeg, w64h64, strict.
    res, status, ctype, body = thumb_v2(dbx, path_of("frog.jpg", folder))
    assert status == 200 and ctype == "image/jpeg"
    assert image_size(body) == ("jpeg", 64, 48)
    md = res.file_metadata
    assert md.size == len(FROG)
    if md.media_info is not None:
        assert md.media_info.is_metadata(), md.media_info
        dims = md.media_info.get_metadata().dimensions
        assert (dims.width, dims.height) == FROG_SIZE
    res, _, _, _ = thumb_v2(dbx, path_of("frog.jpg", folder), exclude_media_info=True)
    assert res.file_metadata.media_info is None

    # preserve_transparency keeps an alpha channel in PNG and WebP; JPEG has none.
    res, status, ctype, body = thumb_v2(
        dbx,
        path_of("alpha.png", folder),
        format=files.ThumbnailFormat.png,
        size=files.ThumbnailSize.w32h32,
        preserve_transparency=True,
    )
    assert status == 200 and ctype == "image/png"
    assert image_size(body) == ("png", 32, 24)
    assert png_color_type(body) in (4, 6), png_color_type(body)
    _, _, ctype, body = thumb_v2(
        dbx,
        path_of("alpha.png", folder),
        format=files.ThumbnailFormat.webp,
        preserve_transparency=True,
    )
    assert ctype == "image/webp" and image_size(body) == ("webp", 40, 30)
    # An image with alpha as JPEG (no preserve_transparency): flattened, still served.
    _, _, ctype, body = thumb_v2(dbx, path_of("alpha.png", folder))
    assert ctype == "image/jpeg" and image_size(body) == ("jpeg", 40, 30)


def test_v2_orientation_is_applied(dbx, base):
    # EXIF orientation 6 (rotate 90° clockwise): the stored 1024×768 is seen as 768×1024.
    dbx.files_upload(with_exif(FROG, orientation=6), base + "/rotated.jpg")
    _, status, _, body = thumb_v2(
        dbx, files.PathOrLink.path(base + "/rotated.jpg"), size=files.ThumbnailSize.w64h64
    )
    assert status == 200
    assert image_size(body) == ("jpeg", 48, 64)
    _, _, _, body = thumb_v2(
        dbx,
        files.PathOrLink.path(base + "/rotated.jpg"),
        size=files.ThumbnailSize.w480h320,
        mode=files.ThumbnailMode.bestfit,
    )
    assert image_size(body) == ("jpeg",) + expected_fit(768, 1024, "w480h320", "bestfit")
    assert image_size(body) == ("jpeg", 320, 427)


def test_v2_path_errors(dbx, folder):
    def v2_err(name, **kwargs):
        err = api_error(dbx.files_get_thumbnail_v2, path_of(name, folder), **kwargs)
        assert isinstance(err, files.ThumbnailV2Error), err
        return err

    err = v2_err("missing.jpg")
    assert err.is_path() and err.get_path().is_not_found(), err
    err = v2_err("Sub.jpg")
    assert err.is_path() and err.get_path().is_not_file(), err
    assert v2_err("notes.txt").is_unsupported_extension()
    assert v2_err("broken.jpg").is_unsupported_image()
    # A JPEG that ends inside its frame header: recognised, then the decode fails.
    assert v2_err("truncated.jpg").is_conversion_error()
    err = v2_err("frog.jpg", format=files.ThumbnailFormat.jpeg, preserve_transparency=True)
    assert err.is_unsupported_output_format(), err
    # Both wrong (no such file, jpeg + preserve_transparency): either error may come first.
    err = v2_err("missing.jpg", preserve_transparency=True)
    assert err.is_unsupported_output_format() or err.is_path(), err


# ---------------------------------------------------------------------------------------
# get_thumbnail (v1)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_v1_get_thumbnail(dbx, folder, fmt):
    md, resp = dbx.files_get_thumbnail(
        folder + "/tall.png",
        format=sdk_format(fmt),
        size=files.ThumbnailSize.w480h320,
        mode=files.ThumbnailMode.bestfit,
    )
    try:
        assert resp.status_code == 200
        assert resp.headers.get("Content-Type") == FORMATS[fmt]
        assert image_size(resp.content) == (fmt, 288, 480)
    finally:
        resp.close()
    assert isinstance(md, files.FileMetadata), md
    assert md.path_display == folder + "/tall.png"
    assert md.name == "tall.png"


def test_v1_defaults_and_errors(dbx, folder):
    md, resp = dbx.files_get_thumbnail(folder + "/frog.jpg")
    try:
        assert resp.headers.get("Content-Type") == "image/jpeg"
        assert image_size(resp.content) == ("jpeg", 64, 48)
    finally:
        resp.close()
    assert isinstance(md, files.FileMetadata) and md.name == "frog.jpg"

    def v1_err(name):
        err = api_error(dbx.files_get_thumbnail, folder + "/" + name)
        assert isinstance(err, files.ThumbnailError), err
        return err

    err = v1_err("missing.png")
    assert err.is_path() and err.get_path().is_not_found(), err
    assert v1_err("notes.txt").is_unsupported_extension()
    assert v1_err("broken.jpg").is_unsupported_image()


# ---------------------------------------------------------------------------------------
# get_thumbnail_batch


def test_batch_entries_succeed_and_fail_one_by_one(dbx, folder):
    arg = files.ThumbnailArg
    entries = [
        arg(folder + "/frog.jpg", size=files.ThumbnailSize.w128h128),
        arg(folder + "/notes.txt"),
        arg(folder + "/missing.jpg"),
        arg(folder + "/broken.jpg"),
        arg(
            folder + "/tall.png",
            format=files.ThumbnailFormat.png,
            size=files.ThumbnailSize.w256h256,
            mode=files.ThumbnailMode.fitone_bestfit,
        ),
        arg(folder + "/frog.jpg", format=files.ThumbnailFormat.webp),
    ]
    r = dbx.files_get_thumbnail_batch(entries)
    assert isinstance(r, files.GetThumbnailBatchResult), r
    assert len(r.entries) == len(entries)
    e = r.entries

    assert e[0].is_success(), e[0]
    ok = e[0].get_success()
    assert isinstance(ok.metadata, files.FileMetadata)
    assert ok.metadata.path_display == folder + "/frog.jpg"
    assert image_size(base64.b64decode(ok.thumbnail, validate=True)) == ("jpeg", 128, 96)

    assert e[1].is_failure() and e[1].get_failure().is_unsupported_extension(), e[1]
    f = e[2].get_failure()
    assert e[2].is_failure() and f.is_path() and f.get_path().is_not_found(), e[2]
    assert e[3].is_failure() and e[3].get_failure().is_unsupported_image(), e[3]

    assert e[4].is_success(), e[4]
    thumb = base64.b64decode(e[4].get_success().thumbnail, validate=True)
    assert image_size(thumb) == ("png",) + expected_fit(360, 600, "w256h256", "fitone_bestfit")
    assert e[5].is_success(), e[5]
    thumb = base64.b64decode(e[5].get_success().thumbnail, validate=True)
    assert image_size(thumb) == ("webp", 64, 48)


def test_batch_limits(dbx, folder):
    arg = files.ThumbnailArg(folder + "/frog.jpg", size=files.ThumbnailSize.w32h32)
    r = dbx.files_get_thumbnail_batch([arg] * 25)
    assert len(r.entries) == 25 and all(x.is_success() for x in r.entries)
    assert len({x.get_success().thumbnail for x in r.entries}) == 1
    err = api_error(dbx.files_get_thumbnail_batch, [arg] * 26)
    assert isinstance(err, files.GetThumbnailBatchError), err
    assert err.is_too_many_files(), err
    assert dbx.files_get_thumbnail_batch([]).entries == []


# ---------------------------------------------------------------------------------------
# get_preview


def preview(dbx, path, **kwargs):
    md, resp = dbx.files_get_preview(path, **kwargs)
    try:
        return md, resp.status_code, resp.headers.get("Content-Type"), resp.content
    finally:
        resp.close()


def test_preview_images_pdf_and_errors(dbx, base, folder):
    # Images: a JPEG that fits 1024×768 as it is (bestfit, never enlarged)...
    md, status, ctype, body = preview(dbx, folder + "/frog.jpg")
    assert status == 200 and ctype == "image/jpeg"
    assert image_size(body) == ("jpeg", 1024, 768)
    assert isinstance(md, files.FileMetadata) and md.path_display == folder + "/frog.jpg"
    # ...a wide PNG scaled into the box, a tall one into its transpose.
    dbx.files_upload(png(1600, 600), base + "/wide.png")
    _, _, ctype, body = preview(dbx, base + "/wide.png")
    assert ctype == "image/jpeg" and image_size(body) == ("jpeg", 1024, 384)
    dbx.files_upload(png(300, 2000), base + "/towering.png")
    _, _, ctype, body = preview(dbx, base + "/towering.png")
    assert image_size(body) == ("jpeg",) + expected_fit(300, 2000, "w1024h768", "bestfit")
    # An earlier revision by rev.
    first = dbx.files_upload(png(50, 40), base + "/again.png")
    dbx.files_upload(png(20, 10), base + "/again.png", mode=files.WriteMode.overwrite)
    _, _, _, body = preview(dbx, base + "/again.png")
    assert image_size(body) == ("jpeg", 20, 10)
    md, _, _, body = preview(dbx, base + "/again.png", rev=first.rev)
    assert image_size(body) == ("jpeg", 50, 40) and md.rev == first.rev

    # A PDF is served as it is.
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    dbx.files_upload(pdf, base + "/Doc.PDF")
    md, status, ctype, body = preview(dbx, base + "/doc.pdf")
    assert status == 200 and ctype == "application/pdf" and body == pdf
    assert md.name == "Doc.PDF" and md.size == len(pdf)

    def preview_err(path):
        err = api_error(dbx.files_get_preview, path)
        assert isinstance(err, files.PreviewError), err
        return err

    assert preview_err(folder + "/notes.txt").is_unsupported_extension()
    assert preview_err(folder + "/broken.jpg").is_unsupported_content()
    err = preview_err(base + "/missing.jpg")
    assert err.is_path() and err.get_path().is_not_found(), err


# ---------------------------------------------------------------------------------------
# get_thumbnail_v2 through shared links


@pytest.fixture(scope="module")
def thumb_app(server):
    """A registered app (key and secret) for app authentication on links."""
    app = server.admin("app", "add", "thumbs-" + uuid.uuid4().hex[:10], "--access", "full")
    assert app.get("app_key") and app.get("app_secret"), app
    return app


@pytest.fixture(scope="module")
def app_client(thumb_app, ca_certs):
    return dropbox.Dropbox(
        app_key=thumb_app["app_key"],
        app_secret=thumb_app["app_secret"],
        ca_certs=ca_certs,
        max_retries_on_error=0,
        timeout=60,
    )


def link_path(url):
    """A link URL without its host: get_thumbnail_v2 runs on the content host, and Cubby
    writes a link's URL with the host the request reached (scale-out: another server)."""
    scheme, _, rest = url.partition("://")
    assert scheme == "https" and "/s/" in rest, url
    return rest[rest.index("/") :]


def link_to(url, password=None, path=None):
    return files.PathOrLink.link(files.SharedLinkFileInfo(url=url, password=password, path=path))


def test_v2_link_with_password(dbx, dbx2, app_client, base):
    up = dbx.files_upload(FROG, base + "/Frog.jpg")
    md = dbx.sharing_create_shared_link_with_settings(
        base + "/Frog.jpg",
        sharing.SharedLinkSettings(
            requested_visibility=sharing.RequestedVisibility.password, link_password="ribbit42"
        ),
    )
    url = md.url

    # The owner.
    res, status, ctype, body = thumb_v2(
        dbx, link_to(url, password="ribbit42"), size=files.ThumbnailSize.w128h128
    )
    assert status == 200 and ctype == "image/jpeg"
    assert image_size(body) == ("jpeg", 128, 96)
    assert res.file_metadata is None
    lm = res.link_metadata
    assert isinstance(lm, files.MinimalFileLinkMetadata), lm
    assert link_path(lm.url) == link_path(url) and lm.rev == up.rev
    # The file is in the caller's Dropbox: its path and id are shown.
    assert lm.path == base + "/Frog.jpg" and lm.id == up.id, lm

    # Another user, with the right password; without it or with a wrong one: access_denied.
    res, status, _, body = thumb_v2(
        dbx2, link_to(url, password="ribbit42"), format=files.ThumbnailFormat.png
    )
    assert status == 200 and image_size(body) == ("png", 64, 48)
    assert link_path(res.link_metadata.url) == link_path(url) and res.link_metadata.rev == up.rev
    assert res.link_metadata.path is None
    err = api_error(dbx2.files_get_thumbnail_v2, link_to(url))
    assert isinstance(err, files.ThumbnailV2Error) and err.is_access_denied(), err
    err = api_error(dbx2.files_get_thumbnail_v2, link_to(url, password="croak"))
    assert err.is_access_denied(), err

    # The app's key and secret (HTTP Basic), with and without the password.
    res, status, ctype, body = thumb_v2(
        app_client, link_to(url, password="ribbit42"), format=files.ThumbnailFormat.webp
    )
    assert status == 200 and ctype == "image/webp"
    assert image_size(body) == ("webp", 64, 48)
    assert link_path(res.link_metadata.url) == link_path(url) and res.file_metadata is None
    assert res.link_metadata.path is None
    err = api_error(app_client.files_get_thumbnail_v2, link_to(url, password="croak"))
    assert err.is_access_denied(), err

    # No such link; a revoked one.
    host = url.split("/s/")[0]
    missing = host + "/s/" + "A" * 43 + "/Frog.jpg"
    err = api_error(dbx.files_get_thumbnail_v2, link_to(missing))
    assert isinstance(err, files.ThumbnailV2Error) and err.is_not_found(), err
    err = api_error(app_client.files_get_thumbnail_v2, link_to(missing))
    assert err.is_not_found(), err
    dbx.sharing_revoke_shared_link(url)
    err = api_error(dbx2.files_get_thumbnail_v2, link_to(url, password="ribbit42"))
    assert err.is_not_found(), err


def test_v2_link_with_app_auth(dbx, app_client, base):
    dbx.files_upload(png(*TALL), base + "/F/tall.png")
    dbx.files_upload(b"words", base + "/F/words.txt")
    file_link = dbx.sharing_create_shared_link_with_settings(base + "/F/tall.png").url
    folder_link = dbx.sharing_create_shared_link_with_settings(base + "/F").url

    res, status, ctype, body = thumb_v2(
        app_client,
        link_to(file_link),
        size=files.ThumbnailSize.w480h320,
        mode=files.ThumbnailMode.bestfit,
    )
    assert status == 200 and ctype == "image/jpeg"
    assert image_size(body) == ("jpeg", 288, 480)
    assert link_path(res.link_metadata.url) == link_path(file_link) and res.file_metadata is None

    # A file inside a linked folder.
    _, status, _, body = thumb_v2(app_client, link_to(folder_link, path="/tall.png"))
    assert status == 200 and image_size(body) == ("jpeg", 38, 64)
    err = api_error(app_client.files_get_thumbnail_v2, link_to(folder_link, path="/words.txt"))
    assert err.is_unsupported_extension(), err
    err = api_error(app_client.files_get_thumbnail_v2, link_to(folder_link, path="/nope.png"))
    assert err.is_not_found() or (err.is_path() and err.get_path().is_not_found()), err

    # The app alone reaches links, not paths.
    with pytest.raises((BadInputError, AuthError)):
        app_client.files_get_thumbnail_v2(files.PathOrLink.path(base + "/F/tall.png"))


def test_v2_link_expired_is_access_denied(dbx, dbx2, base):
    dbx.files_upload(FROG, base + "/soon.jpg")
    expires = (
        datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
        + datetime.timedelta(seconds=2)
    )
    url = dbx.sharing_create_shared_link_with_settings(
        base + "/soon.jpg", sharing.SharedLinkSettings(expires=expires)
    ).url
    _, status, _, _ = thumb_v2(dbx2, link_to(url), size=files.ThumbnailSize.w32h32)
    assert status == 200
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    time.sleep(max(0.0, (expires - now).total_seconds()) + 1.2)
    err = api_error(dbx2.files_get_thumbnail_v2, link_to(url))
    assert isinstance(err, files.ThumbnailV2Error) and err.is_access_denied(), err


# ---------------------------------------------------------------------------------------
# media_info in files/get_metadata


def photo(md):
    assert isinstance(md, files.FileMetadata), md
    assert md.media_info is not None, md
    assert md.media_info.is_metadata(), md.media_info
    m = md.media_info.get_metadata()
    assert isinstance(m, files.PhotoMetadata), m
    return m


def test_media_info(dbx, base):
    dbx.files_upload(FROG, base + "/plain.jpg")
    dbx.files_upload(with_exif(FROG, date_time_original="2019:05:04 13:14:15"), base + "/dated.jpg")
    dbx.files_upload(png(*TALL), base + "/tall.png")
    dbx.files_upload(b"not media", base + "/words.txt")

    m = photo(dbx.files_get_metadata(base + "/plain.jpg", include_media_info=True))
    assert (m.dimensions.width, m.dimensions.height) == FROG_SIZE
    assert m.time_taken is None
    assert m.location is None

    m = photo(dbx.files_get_metadata(base + "/dated.jpg", include_media_info=True))
    assert (m.dimensions.width, m.dimensions.height) == FROG_SIZE
    assert m.time_taken == datetime.datetime(2019, 5, 4, 13, 14, 15), m.time_taken

    m = photo(dbx.files_get_metadata(base + "/tall.png", include_media_info=True))
    assert (m.dimensions.width, m.dimensions.height) == TALL

    md = dbx.files_get_metadata(base + "/words.txt", include_media_info=True)
    assert isinstance(md, files.FileMetadata) and md.media_info is None
    # Only when asked.
    assert dbx.files_get_metadata(base + "/dated.jpg").media_info is None

    # The thumbnail routes agree with get_metadata.
    res, _, _, _ = thumb_v2(dbx, files.PathOrLink.path(base + "/dated.jpg"))
    if res.file_metadata.media_info is not None:
        assert photo(res.file_metadata).time_taken == datetime.datetime(2019, 5, 4, 13, 14, 15)
