"""Who is alerted when a request changes, and with what: a Web Push notice carrying
no patient data (docs/push.md), on commit. The socket's `advice.updated` event tells
every open screen of the department at once; this reaches the phone in a pocket.

The notice names the department and the request, never the patient, the question or
the requester: the app fetches the rest after it is unlocked.
"""

from advice.models import AdviceRequest, Priority, StepKind
from push.notify import push_on_commit


def _notice(request: AdviceRequest, kind: str) -> dict[str, object]:
    return {
        "kind": kind,
        "department": request.department.name,
        "priority": request.priority,
        "request": request.pk,
    }


def alert_holder(request: AdviceRequest, step: StepKind) -> None:
    """Tell whoever has the request now that it waits for them. Urgent and emergency
    requests go out with high urgency, and every due timer sends them again (a
    re-alert); a routine one respects its holder's quiet mode off duty."""
    if request.holder_id is None:
        return
    routine = request.priority == Priority.ROUTINE
    push_on_commit(
        [request.holder_id],
        {**_notice(request, "advice.request"), "step": str(step)},
        urgency="normal" if routine else "high",
        routine=routine,
        topic=f"advice-{request.pk}",
    )


def alert_requester(request: AdviceRequest) -> None:
    """Tell the requester their request was taken, and how ("I'm on it", "Call me")."""
    push_on_commit(
        [request.requester_id],
        {**_notice(request, "advice.answered"), "answer": request.answer},
        urgency="high" if request.priority != Priority.ROUTINE else "normal",
        topic=f"advice-{request.pk}",
    )
