"""A thread's PDF transcript for a case export (reportlab): the checked timeline as a person
reads it, every page headed with the case reference, the patient and the volume.

The text is `rounds compliance read`'s (compliance_cli.format_review): messages in order
with their check, redaction marks, photos' keywords and consent, "seen by", membership
changes; the photos the export saved follow, each with its attachment id and file.

reportlab keeps a document's every page, photos included, until it saves the file: one
PDF of a thread of 500 photos of 0.9 MB held 1.5 GB (bench/compliance.py). So a long
thread is written in volumes, `transcript.pdf`, then `transcript-2.pdf`, … each closed
once it holds LINES_PER_VOLUME lines of text or PHOTO_BYTES_PER_VOLUME of photos: what
sits in memory is one volume, whatever the thread's length. A short thread is one
`transcript.pdf`, as before.
"""

from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer

from client.compliance_cli import _patient, format_review

PHOTO_WIDTH = 120 * mm
LINES_PER_VOLUME = 4000
PHOTO_BYTES_PER_VOLUME = 48 << 20

# A volume's content, in order: ("line", text) or ("photo", message seq, photo).
Item = tuple[Any, ...]


def volume_name(number: int) -> str:
    return "transcript.pdf" if number == 1 else f"transcript-{number}.pdf"


def write_transcript(folder: Path, case: dict[str, Any], review: dict[str, Any]) -> list[str]:
    """The transcript of `review` into `folder` (the thread's, where its photos are), in
    as many volumes as it takes; their file names, in order."""
    volumes = list(_volumes(folder, review))
    header = f"Case {case['reference']} (#{case['id']}) - Patient: {_patient(review['thread'])}"
    names = []
    for number, items in enumerate(volumes, 1):
        names.append(volume_name(number))
        title = f"{header} - volume {number} of {len(volumes)}" if len(volumes) > 1 else header
        _write_volume(folder / names[-1], title, case, review, folder, items)
    return names


def _volumes(folder: Path, review: dict[str, Any]) -> Iterator[list[Item]]:
    """The thread's lines, then its saved photos, cut into volumes."""
    items: Iterator[tuple[Item, int, int]] = _items(folder, review)
    volume: list[Item] = []
    lines = photo_bytes = 0
    for item, line, size in items:
        full = lines + line > LINES_PER_VOLUME or photo_bytes + size > PHOTO_BYTES_PER_VOLUME
        if volume and full:
            yield volume
            volume, lines, photo_bytes = [], 0, 0
        volume.append(item)
        lines, photo_bytes = lines + line, photo_bytes + size
    yield volume


def _items(folder: Path, review: dict[str, Any]) -> Iterator[tuple[Item, int, int]]:
    """Each item with what it weighs: (item, lines, photo bytes)."""
    for line in format_review(review):
        yield ("line", line), 1, 0
    for message in review["messages"]:
        for photo in message["photos"]:
            if photo.get("file"):
                size = (folder / photo["file"]).stat().st_size
                yield ("photo", message["seq"], photo), 0, size


def _write_volume(
    path: Path,
    title: str,
    case: dict[str, Any],
    review: dict[str, Any],
    folder: Path,
    items: list[Item],
) -> None:
    def on_page(canvas: Canvas, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica-Bold", 8)
        canvas.drawString(15 * mm, A4[1] - 10 * mm, title[:150])
        canvas.setFont("Helvetica", 8)
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, f"page {doc.page}")
        canvas.restoreState()

    styles = getSampleStyleSheet()
    story: list[Any] = []
    for item in items:
        if item[0] == "line":
            story.append(Paragraph(escape(item[1]) or "&nbsp;", styles["Code"]))
            continue
        _, seq, photo = item
        story.append(Spacer(1, 4 * mm))
        caption = f"Message #{seq}, attachment {photo['attachment']} ({photo['file']}):"
        story.append(Paragraph(escape(caption), styles["Normal"]))
        image = Image(str(folder / photo["file"]))
        scale = min(1.0, PHOTO_WIDTH / image.drawWidth)
        image.drawWidth *= scale
        image.drawHeight *= scale
        story.append(image)
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        pageCompression=0,  # the headers stay searchable text (photos are JPEG already)
        topMargin=16 * mm,
        bottomMargin=14 * mm,
        title=f"Case {case['reference']}, thread {review['thread'].get('id')}",
    )
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
