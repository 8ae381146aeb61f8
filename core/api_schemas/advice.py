"""Advice requests and their timelines (advice/api.py, docs/advice.md): the shapes the
socket's advice.updated event carries (core/outbound.py), and the timeline."""

from core.api_schemas.common import Body
from core.outbound import AdviceRequestOut, AdviceStepOut

AdviceRequest = AdviceRequestOut
AdviceStep = AdviceStepOut


class AdviceDetail(AdviceRequestOut):
    """A request with its whole timeline, first step first."""

    timeline: list[AdviceStepOut]


class AdviceList(Body):
    """The caller's requests or a department's, open first, newest first."""

    requests: list[AdviceRequestOut]
    more: bool
