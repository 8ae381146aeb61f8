"""The streams of a PDF that reportlab wrote, inflated so that their text can be read."""

import base64
import contextlib
import re
import zlib


def inflated_streams(pdf: bytes) -> list[bytes]:
    """Every stream of `pdf` that inflates, decompressed, in file order.

    reportlab wraps its Flate streams in ASCII85 (`~>` ends them); a stream that does
    not inflate is left out rather than failing the test.
    """
    inflated = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        data = stream.strip()
        if data.endswith(b"~>"):
            with contextlib.suppress(ValueError):
                data = base64.a85decode(data[:-2])
        with contextlib.suppress(zlib.error):
            inflated.append(zlib.decompress(data))
    return inflated
