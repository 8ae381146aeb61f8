"""Rounds' Python SDK: the same protocol the browser speaks, for scripts, tests and benchmarks."""

from client.errors import RoundsClientError
from client.photos import PhotoRefused, PreparedPhoto, prepare_photo
from client.report import ReportPhoto, build_report, write_patient_report
from client.sdk import RoundsClient

__all__ = [
    "PhotoRefused",
    "PreparedPhoto",
    "ReportPhoto",
    "RoundsClient",
    "RoundsClientError",
    "build_report",
    "prepare_photo",
    "write_patient_report",
]
