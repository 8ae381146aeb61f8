"""client/photos.py: what leaves the phone is pixels, oriented, with the capture date kept aside."""

import io
import struct
import zlib
from datetime import datetime, timedelta, timezone

import pillow_heif
import pytest
from PIL import Image

from client.photos import MAX_PIXELS, THUMBNAIL_SIDE, PhotoRefused, prepare_photo

GPS_IFD = 0x8825
EXIF_IFD = 0x8769
ORIENTATION = 0x0112
SERIAL = "SN-4242-SECRET"
PLACE = "Hopital-Nord-Wing-C"


def exif_with_gps(orientation: int = 6, *, offset: str | None = "+01:00") -> Image.Exif:
    """EXIF as a phone writes it: GPS, orientation, capture date, a serial and a comment."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x0132] = "2026:11:24 10:00:00"  # DateTime (last edit)
    exif[0x010F] = "PhoneMaker"
    exif[0x010E] = PLACE  # ImageDescription
    detail = exif.get_ifd(EXIF_IFD)
    detail[0x9003] = "2026:11:23 08:15:00"  # DateTimeOriginal
    if offset:
        detail[0x9011] = offset  # OffsetTimeOriginal
    detail[0xA431] = SERIAL  # BodySerialNumber
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (48.0, 35.0, 0.0)
    gps[3] = "E"
    gps[4] = (7.0, 45.0, 0.0)
    return exif


def photo(fmt: str = "JPEG", size: tuple[int, int] = (400, 300), **save: object) -> bytes:
    """A picture whose top-left quarter is red, so a rotation can be seen."""
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1] // 2))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def test_a_phone_jpeg_loses_every_tag_but_keeps_orientation_and_capture_date():
    source = photo(exif=exif_with_gps(), comment=b"patient DUPONT", icc_profile=b"")
    assert b"PhoneMaker" in source and SERIAL.encode() in source

    prepared = prepare_photo(source)

    assert prepared.media_type == "image/jpeg"
    assert (prepared.width, prepared.height) == (300, 400)  # orientation 6: rotated 90°
    image = Image.open(io.BytesIO(prepared.data))
    assert image.format == "JPEG" and image.size == (300, 400)
    assert len(image.getexif()) == 0
    assert "exif" not in image.info and "comment" not in image.info
    assert "icc_profile" not in image.info and "xmp" not in image.info
    for leak in (b"Exif", b"PhoneMaker", SERIAL.encode(), PLACE.encode(), b"DUPONT"):
        assert leak not in prepared.data
    # The red quarter moved from the top left to the top right.
    image = image.convert("RGB")
    assert image.getpixel((290, 10))[0] > 200 and image.getpixel((10, 10))[2] > 200
    assert prepared.captured_at == datetime(
        2026, 11, 23, 8, 15, tzinfo=timezone(timedelta(hours=1))
    )


def test_capture_date_without_offset_is_naive_and_falls_back_to_datetime():
    naive = prepare_photo(photo(exif=exif_with_gps(1, offset=None)))
    assert naive.captured_at == datetime(2026, 11, 23, 8, 15)
    assert (naive.width, naive.height) == (400, 300)

    exif = Image.Exif()
    exif[0x0132] = "2025:01:02 03:04:05"
    assert prepare_photo(photo(exif=exif)).captured_at == datetime(2025, 1, 2, 3, 4, 5)
    assert prepare_photo(photo()).captured_at is None


def test_a_png_stays_a_png_without_its_text_chunks():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "bed 12, Mr DUPONT")
    prepared = prepare_photo(photo("PNG", pnginfo=info, exif=exif_with_gps(1)))
    assert prepared.media_type == "image/png"
    assert b"DUPONT" not in prepared.data and b"eXIf" not in prepared.data
    image = Image.open(io.BytesIO(prepared.data))
    assert image.format == "PNG" and len(image.getexif()) == 0
    assert prepared.captured_at == datetime(
        2026, 11, 23, 8, 15, tzinfo=timezone(timedelta(hours=1))
    )


def test_a_heic_becomes_a_jpeg_without_metadata(tmp_path):
    if not pillow_heif.libheif_info().get("HEIF"):
        pytest.skip("this libheif build has no HEVC encoder, so no HEIC can be written")
    path = tmp_path / "IMG_0001.HEIC"
    Image.open(io.BytesIO(photo())).save(path, "HEIF", exif=exif_with_gps(6).tobytes())
    assert Image.open(path).format == "HEIF"

    prepared = prepare_photo(path)
    assert prepared.media_type == "image/jpeg"
    assert (prepared.width, prepared.height) == (300, 400)  # orientation applied once
    assert len(Image.open(io.BytesIO(prepared.data)).getexif()) == 0
    assert SERIAL.encode() not in prepared.data
    assert prepared.captured_at is not None and prepared.captured_at.day == 23


def test_the_thumbnail_fits_in_320_and_keeps_the_aspect():
    prepared = prepare_photo(photo(size=(1200, 900), exif=exif_with_gps()))
    assert max(prepared.thumbnail_width, prepared.thumbnail_height) == THUMBNAIL_SIDE
    assert (prepared.thumbnail_width, prepared.thumbnail_height) == (240, 320)
    thumb = Image.open(io.BytesIO(prepared.thumbnail))
    assert thumb.format == "JPEG" and thumb.size == (240, 320)
    assert len(thumb.getexif()) == 0 and prepared.thumbnail_media_type == "image/jpeg"

    small = prepare_photo(photo(size=(100, 50)))
    assert (small.thumbnail_width, small.thumbnail_height) == (100, 50)  # never enlarged


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\xff\xd8\xff\xe0" + b"\0" * 40])
def test_what_is_not_an_image_is_unreadable(data):
    with pytest.raises(PhotoRefused) as refused:
        prepare_photo(data)
    assert refused.value.code == "unreadable_image"


def test_a_missing_file_is_unreadable(tmp_path):
    with pytest.raises(PhotoRefused) as refused:
        prepare_photo(tmp_path / "nope.jpg")
    assert refused.value.code == "unreadable_image"


def test_a_truncated_jpeg_is_unreadable():
    with pytest.raises(PhotoRefused) as refused:
        prepare_photo(photo(size=(800, 600))[:600])
    assert refused.value.code == "unreadable_image"


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "WEBP"])
def test_other_image_formats_are_unsupported(fmt):
    with pytest.raises(PhotoRefused) as refused:
        prepare_photo(photo(fmt))
    assert refused.value.code == "unsupported_format"


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` (a decompression bomb's opening)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\0" + b"\0" * 3 * min(width, 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "size",
    [(100_000, 100_000), (9_000, 8_000), (MAX_PIXELS + 1, 1)],
    ids=["far-over", "just-over", "one-row"],
)
def test_a_decompression_bomb_is_refused_before_decoding(size):
    bomb = png_header_claiming(*size)
    assert len(bomb) < 200
    with pytest.raises(PhotoRefused) as refused:
        prepare_photo(bomb)
    assert refused.value.code == "image_too_large"


@pytest.mark.slow
def test_a_real_small_file_with_huge_dimensions_is_refused():
    # 10,000 x 7,000 of one colour compresses to a few hundred kilobytes.
    out = io.BytesIO()
    Image.MAX_IMAGE_PIXELS, saved = None, Image.MAX_IMAGE_PIXELS
    try:
        Image.new("L", (10_000, 7_000)).save(out, "PNG")
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    with pytest.raises(PhotoRefused) as refused:
        prepare_photo(out.getvalue())
    assert refused.value.code == "image_too_large"
