"""A thread's PDF transcript for a case export (reportlab): the checked timeline as a person
reads it, every page headed with the case reference and the patient.

The text is `rounds compliance read`'s (compliance_cli.format_review): messages in order
with their check, redaction marks, photos' keywords and consent, "seen by", membership
changes; the photos the export saved follow, each with its attachment id. Written straight
to its file; one thread at a time.
"""

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


def write_transcript(path: Path, case: dict[str, Any], review: dict[str, Any], where: Path) -> None:
    """The transcript of `review` into `path`; photo files are named relative to `where`."""
    header = f"Case {case['reference']} (#{case['id']}) - Patient: {_patient(review['thread'])}"

    def on_page(canvas: Canvas, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica-Bold", 8)
        canvas.drawString(15 * mm, A4[1] - 10 * mm, header[:150])
        canvas.setFont("Helvetica", 8)
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, f"page {doc.page}")
        canvas.restoreState()

    styles = getSampleStyleSheet()
    mono = styles["Code"]
    story: list[Any] = []
    for line in format_review(review):
        story.append(Paragraph(escape(line) or "&nbsp;", mono))
    for message in review["messages"]:
        for photo in message["photos"]:
            if not photo.get("file"):
                continue
            story.append(Spacer(1, 4 * mm))
            story.append(
                Paragraph(
                    escape(f"Message #{message['seq']}, attachment {photo['attachment']}:"),
                    styles["Normal"],
                )
            )
            image = Image(str(where / photo["file"]))
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
