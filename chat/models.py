"""Threads, messages, read receipts and the per-department event stream."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.events import event_kind_choices
from patients.models import Patient
from rooms.models import Department


class Thread(models.Model):
    """A conversation about one patient inside one department.

    `last_seq` is the last message number given in this thread, advanced
    under the row lock, so message numbers are dense and in commit order.
    """

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="threads")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="threads")
    title = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    last_seq = models.BigIntegerField(default=0)
    # A consult's thread (Consult below): written under its own thread key, never the room key.
    is_consult = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["department", "-created_at"]),
            models.Index(fields=["patient", "-created_at"]),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None


class Message(models.Model):
    """An encrypted envelope, stored and relayed as it came.

    The server reads the header (routing metadata) and never the ciphertext.
    `(sender, client_msg_id)` is unique, which makes a post idempotent;
    `body_hash` tells a retry of the same post from a different one.
    """

    # No index of their own: the unique (thread, seq) and (sender, client_msg_id) lead
    # with them, and each post would otherwise write two more index entries.
    thread = models.ForeignKey(
        Thread, on_delete=models.PROTECT, related_name="messages", db_index=False
    )
    seq = models.BigIntegerField()
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    client_msg_id = models.CharField(max_length=64)
    header = models.JSONField()
    ciphertext = models.TextField()
    body_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    # The server-visible side of a photo message (media.Attachment rows, as
    # message.new shows them), kept here so history and resume need no join.
    # NULL for a text message: the hot path writes nothing more.
    attachments = models.JSONField(null=True, blank=True, default=None)
    # A redaction (chat/redaction.py) hides the message from members; the row,
    # its ciphertext and its photos are kept for compliance. Both are set
    # together, once, and never cleared.
    redacted_at = models.DateTimeField(null=True, blank=True)
    redacted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The latest of its Correction rows as members get it (id, version,
    # client_msg_id, header, ciphertext, corrected_at), kept here so history
    # and resume need no join; NULL until corrected. The original header and
    # ciphertext above never change, and every version keeps its own row.
    correction = models.JSONField(null=True, blank=True, default=None)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["thread", "seq"], name="message_seq_unique"),
            models.CheckConstraint(
                condition=Q(redacted_at__isnull=True, redacted_by__isnull=True)
                | Q(redacted_at__isnull=False, redacted_by__isnull=False),
                name="message_redacted_together",
            ),
            models.UniqueConstraint(
                fields=["sender", "client_msg_id"], name="message_client_id_unique"
            ),
            models.CheckConstraint(condition=Q(seq__gt=0), name="message_seq_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.thread_id}#{self.seq}"


class Correction(models.Model):
    """One correction of a message by its sender: a new signed envelope, kept for ever
    (until the retention purge takes its message), whichever version members see.

    `version` is 2 for the first correction (the message is version 1). Its
    header's `corrects` is the message's client_msg_id. `(sender,
    client_msg_id)` is unique, which makes a correction idempotent.
    """

    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="corrections")
    version = models.IntegerField()
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    client_msg_id = models.CharField(max_length=64)
    header = models.JSONField()
    ciphertext = models.TextField()
    body_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "version"], name="correction_version_unique"
            ),
            models.UniqueConstraint(
                fields=["sender", "client_msg_id"], name="correction_client_id_unique"
            ),
            models.CheckConstraint(condition=Q(version__gt=1), name="correction_version_above_1"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} v{self.version}"


class Receipt(models.Model):
    """ "Read up to `up_to_seq`", kept as a history of advances.

    Rows only ever move forward, so the time a member first read message N
    is the earliest receipt with `up_to_seq >= N`.
    """

    thread = models.ForeignKey(Thread, on_delete=models.PROTECT, related_name="receipts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    up_to_seq = models.BigIntegerField()
    read_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["thread", "user", "up_to_seq"], name="receipt_unique"),
            models.CheckConstraint(condition=Q(up_to_seq__gt=0), name="receipt_seq_positive"),
        ]
        indexes = [models.Index(fields=["thread", "user", "-up_to_seq"])]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.thread_id} to {self.up_to_seq}"


class Event(models.Model):
    """One entry of a department's durable event stream, the thing a cursor points into.

    `seq` is dense per department (see `Department.event_seq`), which is what
    lets a reconnecting client get every missed event exactly once. A message
    event keeps a link to its message rather than a second copy of it.
    """

    # No index of its own: the unique (department, seq) leads with it.
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=32, choices=event_kind_choices())
    message = models.ForeignKey(
        Message, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["department", "seq"], name="event_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.department_id}:{self.seq} {self.kind}"


class ConsultState(models.TextChoices):
    PENDING = "pending", "Awaiting the department"
    OPEN = "open", "Open"
    ENDED = "ended", "Ended"


class Consult(models.Model):
    """One thread of a department opened to a clinician from elsewhere, its guest.

    The server's mirror of the chain's `guest` and `unguest` statements
    (docs/crypto.md §14): `pending` until a member signs the guest in with
    the thread key's first version, `open` while the guest reads and writes,
    `ended` once someone signed them out. `key_version` and the rest are the
    thread key's state, as a department's are for its room key.
    """

    thread = models.OneToOneField(Thread, on_delete=models.PROTECT, related_name="consult")
    guest = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(
        max_length=10, choices=ConsultState.choices, default=ConsultState.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    opened_at = models.DateTimeField(null=True, blank=True)
    guest_fingerprint = models.CharField(max_length=64, blank=True, default="")
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    # The chain position of the unguest: what the guest may still read is before it.
    ended_seq = models.IntegerField(null=True, blank=True)
    key_version = models.IntegerField(default=0)
    rotation_required = models.BooleanField(default=False)
    key_commitment = models.CharField(max_length=44, blank=True, default="")
    key_chain_seq = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"consult {self.thread_id} ({self.state})"


class ThreadKeyVersion(models.Model):
    """A version of a consult thread's key, known to the server as its record and wraps."""

    consult = models.ForeignKey(Consult, on_delete=models.PROTECT, related_name="key_versions")
    version = models.IntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    record = models.JSONField()
    commitment = models.CharField(max_length=44)
    chain_seq = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["consult", "version"], name="thread_key_version_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"consult {self.consult_id} key v{self.version}"


class ThreadKeyWrap(models.Model):
    """A thread key version sealed for one recipient (empty user: the compliance key)."""

    key_version = models.ForeignKey(
        ThreadKeyVersion, on_delete=models.PROTECT, related_name="wraps"
    )
    recipient_fingerprint = models.CharField(max_length=64)
    recipient_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    wrapper = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    record = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["key_version", "recipient_fingerprint"],
                name="one_thread_wrap_per_recipient",
            ),
        ]

    def __str__(self) -> str:
        return f"thread wrap of {self.key_version_id} for {self.recipient_fingerprint[:16]}"
