"""A clinical photo made safe to share: checked, oriented, stripped of metadata, thumbnailed.

Pure (Pillow only, no network, no Django). A phone photo carries far more
than pixels: GPS coordinates, the phone's model and serial, sometimes the
patient's name in a comment. None of it is needed for care and all of it
would travel to every reader, so `prepare_photo` re-encodes the pixels
alone. The capture date is the one piece of metadata kept, read before
stripping, because the library sorts a patient's follow-up by it.

Decompression bombs: a few kilobytes of PNG can claim 100,000 x 100,000
pixels and take tens of gigabytes to decode. Pillow reads only the header
in `Image.open`; the size is checked against `MAX_PIXELS` there, before any
pixel is decoded, and Pillow's own bomb warning is turned into an error.
"""

import io
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pillow_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

pillow_heif.register_heif_opener()

# 64 megapixels: above any phone camera in use (48-50 MP main sensors) and
# about 200 MB of RGB once decoded, which a workstation or phone can afford.
MAX_PIXELS = 64_000_000
# A 64 MP PNG rarely passes 100 MB; anything bigger is not a photo we accept.
MAX_INPUT_BYTES = 100 * 1024 * 1024
# Pillow's own guard (a warning above it, an error above twice it), set to
# the same cap so that nothing in this process decodes a bigger image.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

JPEG_QUALITY = 90
THUMBNAIL_SIDE = 320
THUMBNAIL_QUALITY = 80

# Pillow format name → what the prepared photo becomes. MPO is how Pillow
# names the multi-picture JPEGs many phones write.
_OUTPUT_FORMAT = {"JPEG": "JPEG", "MPO": "JPEG", "HEIF": "JPEG", "PNG": "PNG"}
_MEDIA_TYPE = {"JPEG": "image/jpeg", "PNG": "image/png"}
_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}

_EXIF_IFD = 0x8769
_DATETIME = 0x0132
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_OFFSET_TIME = 0x9010


class PhotoRefused(Exception):
    """A file that will not be shared; `code` says why.

    - `unreadable_image`: not an image, or a damaged one;
    - `unsupported_format`: an image, but not JPEG, PNG or HEIC/HEIF;
    - `image_too_large`: more than `MAX_PIXELS` pixels or `MAX_INPUT_BYTES` bytes.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PreparedPhoto:
    """Pixels only, ready to encrypt; `captured_at` is naive when the camera gave no offset."""

    data: bytes
    media_type: str
    width: int
    height: int
    captured_at: datetime | None
    thumbnail: bytes
    thumbnail_media_type: str
    thumbnail_width: int
    thumbnail_height: int


def _read_source(source: str | Path | bytes) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        path = Path(source)
        try:
            if path.stat().st_size > MAX_INPUT_BYTES:
                raise PhotoRefused("image_too_large", f"{path.name} is over 100 MiB.")
            data = path.read_bytes()
        except OSError as error:
            reason = error.strerror or "unreadable"
            raise PhotoRefused("unreadable_image", f"cannot read {path}: {reason}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise PhotoRefused("image_too_large", "The file is over 100 MiB.")
    return data


def _open_checked(data: bytes) -> Image.Image:
    """Open the header only, and refuse what is not a photo we accept or is too big."""
    try:
        image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoRefused("image_too_large", f"More than {MAX_PIXELS:,} pixels.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise PhotoRefused("unreadable_image", "Not an image, or a damaged one.") from None
    if image.format not in _OUTPUT_FORMAT:
        raise PhotoRefused(
            "unsupported_format", f"{image.format} images are not accepted: JPEG, PNG or HEIC."
        )
    width, height = image.size
    if width < 1 or height < 1:
        raise PhotoRefused("unreadable_image", "The image has no pixels.")
    if width * height > MAX_PIXELS:
        raise PhotoRefused(
            "image_too_large", f"{width} x {height} is more than {MAX_PIXELS:,} pixels."
        )
    return image


def _parse_offset(text: object) -> timezone | None:
    if not isinstance(text, str):
        return None
    text = text.strip().rstrip("\x00")
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        hours, minutes = int(text[1:3]), int(text[4:6])
    except ValueError:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


def capture_date(image: Image.Image) -> datetime | None:
    """DateTimeOriginal (with OffsetTimeOriginal when present), else DateTime, else None."""
    try:
        exif = image.getexif()
        detail = exif.get_ifd(_EXIF_IFD)
    except Exception:  # a damaged EXIF block costs the date, not the photo
        return None
    candidates = [
        (detail.get(_DATETIME_ORIGINAL), detail.get(_OFFSET_TIME_ORIGINAL)),
        (exif.get(_DATETIME), detail.get(_OFFSET_TIME)),
    ]
    for stamp, offset in candidates:
        if not isinstance(stamp, str):
            continue
        try:
            moment = datetime.strptime(stamp.strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            continue
        zone = _parse_offset(offset)
        return moment.replace(tzinfo=zone) if zone else moment
    return None


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert from an embedded colour profile to sRGB before the profile is dropped.

    iPhones shoot in Display P3: dropping the profile without converting
    would shift the colour of a wound or a flap, which is clinical information.
    """
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode=image.mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image
    return converted if converted is not None else image


def _flatten(image: Image.Image) -> Image.Image:
    """RGB for JPEG: transparency over white, other modes converted."""
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _without_metadata(image: Image.Image) -> Image.Image:
    """The same pixels with no info at all: Pillow's savers fall back to `info`
    for some chunks (a JPEG comment, a PNG's ICC profile)."""
    clean = image.copy()
    clean.info.clear()
    return clean


def _encode(image: Image.Image, output_format: str) -> bytes:
    out = io.BytesIO()
    if output_format == "JPEG":
        _flatten(image).save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        if image.mode not in _PNG_MODES:
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        image.save(out, "PNG", optimize=False)
    return out.getvalue()


def _thumbnail(image: Image.Image) -> tuple[bytes, int, int]:
    small = _flatten(image.copy())
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    small = _without_metadata(small)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return out.getvalue(), small.width, small.height


def prepare_photo(source: str | Path | bytes) -> PreparedPhoto:
    """Check, orient, strip and thumbnail a photo (a path or its bytes).

    Raises:
        PhotoRefused: `unreadable_image`, `unsupported_format` or `image_too_large`.
    """
    data = _read_source(source)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = _open_checked(data)
        output_format = _OUTPUT_FORMAT[image.format or ""]
        captured_at = capture_date(image)
        try:
            image.load()
            oriented = ImageOps.exif_transpose(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise PhotoRefused("image_too_large", f"More than {MAX_PIXELS:,} pixels.") from None
        except (OSError, ValueError, SyntaxError, EOFError):
            raise PhotoRefused("unreadable_image", "The image data is damaged.") from None
    oriented = _without_metadata(_to_srgb(oriented))
    encoded = _encode(oriented, output_format)
    thumbnail, thumb_width, thumb_height = _thumbnail(oriented)
    return PreparedPhoto(
        data=encoded,
        media_type=_MEDIA_TYPE[output_format],
        width=oriented.width,
        height=oriented.height,
        captured_at=captured_at,
        thumbnail=thumbnail,
        thumbnail_media_type="image/jpeg",
        thumbnail_width=thumb_width,
        thumbnail_height=thumb_height,
    )
