"""Rounds settings, in layers: defaults first, then environment overrides.

Every value a deployment may change is read from the environment in this one
file, so secrets are read in one place and never logged. With no variable set,
the embedded defaults run (SQLite file, in-memory channel layer, media on disk),
which is what `make run` serves.
"""

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from rounds.layers import channel_layers

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ROUNDS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def read_secret_key() -> str:
    """The secret key comes from the environment, or from a file made once.

    A random key is written under var/ on first start so sessions survive a
    restart of `make run` without anyone having to invent a secret.
    """
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        import secrets

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def read_vapid_private_key() -> str:
    """The VAPID key (RFC 8292) that signs every push: ROUNDS_VAPID_PRIVATE_KEY (the raw
    P-256 private key, base64url, or a PEM), or one made once under var/ like the secret
    key. Every process of a deployment must sign with the same key (docs/push.md)."""
    if key := os.environ.get("ROUNDS_VAPID_PRIVATE_KEY"):
        return key
    path = VAR_DIR / "vapid_private_key"
    if not path.exists():
        import base64

        from cryptography.hazmat.primitives.asymmetric import ec

        scalar = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(scalar.to_bytes(32, "big")).decode().rstrip("="))
        path.chmod(0o600)
    return path.read_text().strip()


# --- Core --------------------------------------------------------------------
SECRET_KEY = read_secret_key()
# `check --deploy` warns when the key was generated on this machine (rounds/deploy_checks.py).
ROUNDS_SECRET_KEY_FROM_FILE = not os.environ.get("DJANGO_SECRET_KEY")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("ROUNDS_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
# Origins a WebSocket handshake may come from: scheme, host and port, exactly.
ROUNDS_ALLOWED_ORIGINS = env_list(
    "ROUNDS_ALLOWED_ORIGINS",
    ["http://127.0.0.1:8000", "http://localhost:8000"],
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "accounts",
    "rooms",
    "patients",
    "chat",
    "media",
    "audit",
    "compliance",
    "retention",
    "advice",
    "push",
    "interop",
]

MIDDLEWARE = [
    # First: every log record of a request carries its id (rounds/logs.py).
    "rounds.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Django's documented place: after the session, before CommonMiddleware.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into the 429 response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "rounds.urls"
ASGI_APPLICATION = "rounds.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------
SQLITE_PATH = VAR_DIR / "rounds.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{SQLITE_PATH}"),
        conn_max_age=int(os.environ.get("ROUNDS_DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE transactions take
    # the write lock up front, so two writers queue instead of failing with
    # "database is locked" when a read turns into a write.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The post path's statements are prepared once per connection (rounds/prepared.py);
    # only its server-binding cursors prepare, Django's own never do. None turns it
    # off, for a transaction-mode pooler that cannot keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        0 if env_bool("ROUNDS_DB_PREPARE", True) else None
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and os.environ.get(
    "ROUNDS_DB_POOL", "1"
) not in ("", "0"):
    # Django runs each HTTP request's database work in a thread of its own,
    # so a per-thread persistent connection is never reused there: every
    # request would open a new PostgreSQL session (about 10 ms here). A pool
    # per process hands connections from one thread to the next instead.
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django must not
    # The pool checks a connection before lending it: after a PostgreSQL restart,
    # each pooled connection is dead, and would otherwise fail one request each
    # (with no round trip while its socket is quiet: rounds/dbpool.py).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": int(os.environ.get("ROUNDS_DB_POOL_MIN", "2")),
        "max_size": int(os.environ.get("ROUNDS_DB_POOL_MAX", "20")),
        # While PostgreSQL is away, a request waits this long for a connection, then
        # fails (a post is answered internal_error, to retry): well below the clients'
        # 10 s request timeout. Channels runs a process's database calls one at a time,
        # so every call waits behind one that waits here.
        "timeout": float(os.environ.get("ROUNDS_DB_POOL_TIMEOUT", "3")),
    }
    from rounds.dbpool import lend_quiet_connections_unchecked, reconnect_at_a_steady_pace

    reconnect_at_a_steady_pace()
    lend_quiet_connections_unchecked()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer ---------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL")
CHANNEL_LAYERS = channel_layers("ROUNDS_CHANNEL_PREFIX", "rounds")

# --- Authentication ------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # First, so every password attempt on every path is counted and refused
    # while (username, IP) is locked.
    "accounts.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if env_bool("ROUNDS_LIGHT_PASSWORD_HASH", False):
    PASSWORD_HASHERS = ["accounts.hashers.LightArgon2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Lockout by (username, IP) with a cool-off, never forever: an on-call doctor
# must not stay locked out until an administrator wakes up.
AXES_FAILURE_LIMIT = int(os.environ.get("ROUNDS_LOCKOUT_FAILURES", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("ROUNDS_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# A refused attempt during a lockout must not restart the cool-off, or a
# doctor who keeps retrying would stay locked out until an admin steps in.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = True
# The client address axes locks on is REMOTE_ADDR. Behind a reverse proxy,
# run daphne with --proxy-headers (make run: DAPHNE_ARGS=--proxy-headers) so
# REMOTE_ADDR is the client's, taken from the proxy's X-Forwarded-For.

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# ROUNDS_BEHIND_TLS=1: clients reach Rounds over HTTPS only (a TLS terminator in front).
# Cookies are then never sent in clear, and browsers are told (HSTS, a year, subdomains
# too) never to try plain HTTP. ROUNDS_SECURE_COOKIES=1, the older setting, still turns
# on the Secure cookies alone.
ROUNDS_BEHIND_TLS = env_bool("ROUNDS_BEHIND_TLS", False)
SESSION_COOKIE_SECURE = ROUNDS_BEHIND_TLS or env_bool("ROUNDS_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
if ROUNDS_BEHIND_TLS:
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Django sends HSTS only on a request it sees as HTTPS, and daphne behind a terminator
    # sees HTTP (unless --proxy-headers, which reads the same header). Every client comes
    # over TLS here, so a client claiming it in this header claims nothing false.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_AGE = int(os.environ.get("ROUNDS_SESSION_SECONDS", str(12 * 3600)))
# Bearer tokens live as long as a session: one login, one device session.
ROUNDS_TOKEN_SECONDS = SESSION_COOKIE_AGE
# A device (a login) unused this long must sign in again, whatever its expiry.
ROUNDS_DEVICE_IDLE_SECONDS = int(os.environ.get("ROUNDS_DEVICE_IDLE_SECONDS", str(7 * 24 * 3600)))

# Who must sign in with a second factor (a passkey, or an authenticator app's code):
# `privileged` (heads, compliance officers, administrators: the default), `everyone`,
# or `off` (the `make run` demo). A user who has one always uses it (docs/sign-in.md).
ROUNDS_SECOND_FACTOR = os.environ.get("ROUNDS_SECOND_FACTOR", "privileged")
if ROUNDS_SECOND_FACTOR not in {"off", "privileged", "everyone"}:
    raise ImproperlyConfigured("ROUNDS_SECOND_FACTOR is off, privileged or everyone.")
# The passkeys' relying party: the domain they belong to. Empty: the host of the allowed
# origin a browser signs in from (a passkey made on one host works on that host only).
ROUNDS_WEBAUTHN_RP_ID = os.environ.get("ROUNDS_WEBAUTHN_RP_ID", "")
# The name an authenticator app and a passkey prompt show for this installation.
ROUNDS_SIGN_IN_NAME = os.environ.get("ROUNDS_SIGN_IN_NAME", "Rounds")

# --- Patient administration (HL7 v2 ADT over MLLP, FHIR R4): docs/interop.md ----------
# The assigning authority of the hospital's IPP in PID-3 (its namespace, or its OID).
ROUNDS_ADT_IPP_AUTHORITY = os.environ.get("ROUNDS_ADT_IPP_AUTHORITY", "ROUNDS-DEMO")
# MSH-4 of Rounds' acknowledgements, and where `manage.py adt_listen` listens.
ROUNDS_ADT_FACILITY = os.environ.get("ROUNDS_ADT_FACILITY", "ROUNDS")
ROUNDS_ADT_HOST = os.environ.get("ROUNDS_ADT_HOST", "127.0.0.1")
ROUNDS_ADT_PORT = int(os.environ.get("ROUNDS_ADT_PORT", "2575"))
# The largest message taken (an ADT message is a few kilobytes); a larger one is refused.
ROUNDS_ADT_MAX_BYTES = int(os.environ.get("ROUNDS_ADT_MAX_BYTES", str(256 * 1024)))
# The identifier system of the IPP in FHIR resources (Patient.identifier.system): the one
# the hospital's FHIR server files patients under (a placeholder OID: set the hospital's).
ROUNDS_FHIR_IPP_SYSTEM = os.environ.get("ROUNDS_FHIR_IPP_SYSTEM", "urn:oid:1.2.250.1.71.4.2.7")
# The hospital's FHIR R4 server, where devices send photos to the patient record
# (docs/interop-photos.md). Empty: the feature is off and the clients hide it.
ROUNDS_FHIR_BASE_URL = os.environ.get("ROUNDS_FHIR_BASE_URL", "")

# --- WebSocket limits ----------------------------------------------------------
ROUNDS_WS_MAX_FRAME_BYTES = int(os.environ.get("ROUNDS_WS_MAX_FRAME_BYTES", str(64 * 1024)))
ROUNDS_WS_RATE_PER_SECOND = float(os.environ.get("ROUNDS_WS_RATE_PER_SECOND", "30"))
ROUNDS_WS_RATE_BURST = int(os.environ.get("ROUNDS_WS_RATE_BURST", "60"))
# Refusals in a row, after which a flooding socket is closed (4429).
ROUNDS_WS_FLOOD_CLOSE_AFTER = int(os.environ.get("ROUNDS_WS_FLOOD_CLOSE_AFTER", "50"))
ROUNDS_WS_MAX_CONNECTIONS_PER_USER = int(os.environ.get("ROUNDS_WS_MAX_CONNECTIONS_PER_USER", "20"))
# Handshakes that failed authentication, per client address and process, in a minute
# (bursts up to as many); past it, that address's handshakes are closed with 4429.
ROUNDS_WS_FAILED_HANDSHAKES_PER_MINUTE = int(
    os.environ.get("ROUNDS_WS_FAILED_HANDSHAKES_PER_MINUTE", "30")
)
ROUNDS_HISTORY_PAGE_MAX = 200
ROUNDS_RESUME_BATCH = 500
# How long after posting a message its sender may correct it (chat/corrections.py),
# measured on the server's clock from the message's created_at: 15 minutes.
ROUNDS_CORRECTION_WINDOW_SECONDS = int(os.environ.get("ROUNDS_CORRECTION_WINDOW_SECONDS", "900"))
# How often each process checks that its sockets have every event of their
# departments (chat/lifecycle.py): the bound on delivery when a publication
# is lost. And how long a drain (SIGTERM) waits for the posts in flight.
ROUNDS_DELIVERY_SWEEP_SECONDS = float(os.environ.get("ROUNDS_DELIVERY_SWEEP_SECONDS", "0.5"))
ROUNDS_DRAIN_SECONDS = float(os.environ.get("ROUNDS_DRAIN_SECONDS", "10"))

# --- Advice requests and their timers (docs/advice.md) ---
# How long an unacknowledged request waits before it escalates to the next person
# (the roster's, then the head), by priority; a routine request never escalates.
ROUNDS_ADVICE_ESCALATE_SECONDS = {
    "urgent": float(os.environ.get("ROUNDS_ADVICE_URGENT_SECONDS", "300")),
    "emergency": float(os.environ.get("ROUNDS_ADVICE_EMERGENCY_SECONDS", "120")),
}
# Once nobody is left to escalate to, the holder is alerted again this often until
# someone acknowledges (0: the escalation delay of the request's priority).
ROUNDS_ADVICE_REALERT_SECONDS = float(os.environ.get("ROUNDS_ADVICE_REALERT_SECONDS", "0"))
# Open requests one person may have at once (each alerts someone until it is answered).
ROUNDS_ADVICE_MAX_OPEN = int(os.environ.get("ROUNDS_ADVICE_MAX_OPEN", "20"))
# What a consult's guest still reads once the consult ended (docs/advice.md, "Consults"):
# "record", the consult as it was (they took part in the care); "none", nothing more.
ROUNDS_CONSULT_READ_AFTER = os.environ.get("ROUNDS_CONSULT_READ_AFTER", "record")
if ROUNDS_CONSULT_READ_AFTER not in ("record", "none"):
    raise ImproperlyConfigured("ROUNDS_CONSULT_READ_AFTER is record or none")
# Who fires the timers: "thread" (a scheduler thread in every server process; the row
# lock makes each timer fire once), or "off" (`manage.py run_scheduler` does it).
ROUNDS_SCHEDULER = os.environ.get("ROUNDS_SCHEDULER", "thread")
# The longest a scheduler sleeps before looking again for a timer another process set.
ROUNDS_SCHEDULER_POLL_SECONDS = float(os.environ.get("ROUNDS_SCHEDULER_POLL_SECONDS", "0.25"))

# --- Audit -----------------------------------------------------------------------
# New audit entries are sealed into the hash chain by a sealer shortly after
# their transaction commits (see docs/audit.md for the window).
ROUNDS_AUDIT_SEAL_INTERVAL = float(os.environ.get("ROUNDS_AUDIT_SEAL_INTERVAL", "1.0"))
ROUNDS_AUDIT_SEAL_GATHER = float(os.environ.get("ROUNDS_AUDIT_SEAL_GATHER", "0.25"))
ROUNDS_AUDIT_SEAL_BATCH = int(os.environ.get("ROUNDS_AUDIT_SEAL_BATCH", "2000"))

# --- Compliance review (docs/compliance.md) ----------------------------------------
# Four-eyes: a case releases nothing until a second compliance officer approves it.
ROUNDS_COMPLIANCE_FOUR_EYES = env_bool("ROUNDS_COMPLIANCE_FOUR_EYES", False)

# --- Static and media ------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(os.environ.get("ROUNDS_MEDIA_ROOT", VAR_DIR / "media"))

# --- Encrypted uploads (docs/media.md) -------------------------------------------
ROUNDS_UPLOAD_MAX_BYTES = int(os.environ.get("ROUNDS_UPLOAD_MAX_BYTES", str(50 * 1024 * 1024)))
ROUNDS_UPLOAD_CHUNK_MAX_BYTES = int(
    os.environ.get("ROUNDS_UPLOAD_CHUNK_MAX_BYTES", str(8 * 1024 * 1024))
)
ROUNDS_UPLOADS_PER_HOUR = int(os.environ.get("ROUNDS_UPLOADS_PER_HOUR", "120"))
ROUNDS_UPLOAD_TTL_HOURS = float(os.environ.get("ROUNDS_UPLOAD_TTL_HOURS", "24"))
# The colleague directory (rooms/people.py): searches per user per rolling hour.
ROUNDS_PEOPLE_SEARCHES_PER_HOUR = int(os.environ.get("ROUNDS_PEOPLE_SEARCHES_PER_HOUR", "200"))


def attachments_storage(env: Mapping[str, str], media_root: Path) -> dict[str, Any]:
    """The "attachments" storage: files under media_root, or an S3-compatible bucket.

    Blobs are ciphertext and are only ever served through the API (audited),
    so the bucket is private (no ACL, no public URL) and names are never
    overwritten: two racing writers each get their own object.
    """
    if not env.get("ROUNDS_S3_BUCKET"):
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": media_root / "attachments", "base_url": None},
        }
    from boto3.s3.transfer import TransferConfig

    # A blob is written from a stream (the parts, joined): boto3 buffers a
    # few 8 MiB parts of it at a time, never the whole blob. The in-memory
    # bound is s3transfer's, which boto3's constructor does not take.
    transfer = TransferConfig(
        multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=2
    )
    transfer.max_in_memory_upload_chunks = 2
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env["ROUNDS_S3_BUCKET"],
            "endpoint_url": env.get("ROUNDS_S3_ENDPOINT_URL") or None,
            "region_name": env.get("ROUNDS_S3_REGION") or None,
            # Unset: boto3's own chain (instance role, ~/.aws) decides.
            "access_key": env.get("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env.get("AWS_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
            "transfer_config": transfer,
        },
    }


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "attachments": attachments_storage(os.environ, MEDIA_ROOT),
}

# --- Languages (docs/i18n.md) ------------------------------------------------------
# English is the source text; the French catalogue is locale/fr/LC_MESSAGES/django.po
# (`make messages`). A request's language: the cookie, else Accept-Language, else
# English; a socket's is chosen the same way once, at its handshake (rounds/i18n.py).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The browser's language switch writes it, so its script must read it: not HttpOnly.
LANGUAGE_COOKIE_NAME = "rounds_language"
LANGUAGE_COOKIE_SAMESITE = "Strict"
LANGUAGE_COOKIE_HTTPONLY = False
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

# Content never reaches the log: handlers log codes and ids, never bodies.
# ROUNDS_LOG_FORMAT=json: one JSON object a line, with the request or socket id
# (rounds/logs.py); the human format is the default.
ROUNDS_LOG_FORMAT = os.environ.get("ROUNDS_LOG_FORMAT", "plain").strip().lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "rounds.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if ROUNDS_LOG_FORMAT == "json" else "plain",
        },
        # channels-redis only logs its pub/sub reader losing Redis: counted as a metric.
        "channel_layer_errors": {"class": "rounds.metrics.ChannelLayerLogCounter"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("ROUNDS_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "channels_redis": {"handlers": ["channel_layer_errors"]},
    },
}

# Retention of the medical record (patients/retention.py): France, Public Health Code
# R.1112-7 by default.
ROUNDS_RETENTION_YEARS = int(os.environ.get("ROUNDS_RETENTION_YEARS", "20"))
ROUNDS_RETENTION_UNTIL_AGE = int(os.environ.get("ROUNDS_RETENTION_UNTIL_AGE", "28"))
ROUNDS_RETENTION_DEATH_WINDOW_YEARS = int(
    os.environ.get("ROUNDS_RETENTION_DEATH_WINDOW_YEARS", "10")
)
ROUNDS_RETENTION_YEARS_AFTER_DEATH = int(os.environ.get("ROUNDS_RETENTION_YEARS_AFTER_DEATH", "10"))
# purge_expired deletes this many messages (or receipts, or events) per transaction:
# short transactions, so the server keeps serving while it runs (retention/purge.py).
ROUNDS_PURGE_BATCH = int(os.environ.get("ROUNDS_PURGE_BATCH", "500"))
# ... and pauses this long between batches, so a waiting writer gets SQLite's one write
# lock (its busy handler is no queue); unset: 50 ms on SQLite, none on PostgreSQL.
ROUNDS_PURGE_PAUSE_MS = os.environ.get("ROUNDS_PURGE_PAUSE_MS", "")

# GET /metrics (rounds/metrics_view.py) answers loopback, or this bearer token.
ROUNDS_METRICS_TOKEN = os.environ.get("ROUNDS_METRICS_TOKEN", "")

AUTH_USER_MODEL = "accounts.User"
ROUNDS_AUDIT_SEALER = os.environ.get("ROUNDS_AUDIT_SEALER", "thread")

# --- Audit: how long an entry may wait unsealed, signed checkpoints (docs/audit.md) ---
# audit_verify fails when an entry has waited longer than this to be sealed.
ROUNDS_AUDIT_SEAL_WINDOW_SECONDS = float(os.environ.get("ROUNDS_AUDIT_SEAL_WINDOW_SECONDS", "300"))
# Every this many seconds the sealer thread signs the chain head and writes it to
# the sink (0: only `manage.py audit_checkpoint`). The key is kept outside the
# database; the sink is a directory or an S3 bucket with object lock.
ROUNDS_AUDIT_CHECKPOINT_INTERVAL = float(os.environ.get("ROUNDS_AUDIT_CHECKPOINT_INTERVAL", "3600"))
ROUNDS_AUDIT_CHECKPOINT_KEY = Path(
    os.environ.get("ROUNDS_AUDIT_CHECKPOINT_KEY", VAR_DIR / "audit-checkpoint.key")
)
ROUNDS_AUDIT_CHECKPOINT_SINK = os.environ.get("ROUNDS_AUDIT_CHECKPOINT_SINK", "file")
ROUNDS_AUDIT_CHECKPOINT_DIR = Path(
    os.environ.get("ROUNDS_AUDIT_CHECKPOINT_DIR", VAR_DIR / "audit-checkpoints")
)
ROUNDS_AUDIT_CHECKPOINT_S3_BUCKET = os.environ.get("ROUNDS_AUDIT_CHECKPOINT_S3_BUCKET", "")
ROUNDS_AUDIT_CHECKPOINT_S3_PREFIX = os.environ.get(
    "ROUNDS_AUDIT_CHECKPOINT_S3_PREFIX", "audit-checkpoints/"
)
# The attachments' S3 endpoint and region unless set apart; credentials: boto3's chain.
ROUNDS_AUDIT_CHECKPOINT_S3_ENDPOINT_URL = os.environ.get(
    "ROUNDS_AUDIT_CHECKPOINT_S3_ENDPOINT_URL", os.environ.get("ROUNDS_S3_ENDPOINT_URL", "")
)
ROUNDS_AUDIT_CHECKPOINT_S3_REGION = os.environ.get(
    "ROUNDS_AUDIT_CHECKPOINT_S3_REGION", os.environ.get("ROUNDS_S3_REGION", "")
)
# Audit records and access traces (retention/audit_prune.py, `manage.py purge_audit`):
# six years; never under 183 days, the floor for access traces.
ROUNDS_AUDIT_RETENTION_DAYS = int(os.environ.get("ROUNDS_AUDIT_RETENTION_DAYS", "2190"))
# Object lock retention of each checkpoint in the bucket (6 years, as audit records).
ROUNDS_AUDIT_CHECKPOINT_RETENTION_DAYS = int(
    os.environ.get("ROUNDS_AUDIT_CHECKPOINT_RETENTION_DAYS", "2190")
)

# --- Push notifications (docs/push.md) ------------------------------------------------
ROUNDS_VAPID_PRIVATE_KEY = read_vapid_private_key()
# The contact a push service may write to about this sender (RFC 8292 `sub`).
ROUNDS_VAPID_SUBJECT = os.environ.get("ROUNDS_VAPID_SUBJECT", "mailto:it@rounds.invalid")
# "thread": a background sender per process; "inline": sent in the committing thread
# (tests); "off": nothing is sent.
ROUNDS_PUSH_SENDER = os.environ.get("ROUNDS_PUSH_SENDER", "thread")
# The push services an endpoint may belong to: a host, or every host under ".host". The
# server POSTs to subscribed endpoints, so any other https URL a user posted would make it
# a way into the hospital's network (SSRF). The browsers' own services by default.
ROUNDS_PUSH_SERVICES = env_list(
    "ROUNDS_PUSH_SERVICES",
    [
        "fcm.googleapis.com",  # Chrome, Edge on Android, Opera, Samsung Internet
        "updates.push.services.mozilla.com",  # Firefox
        "web.push.apple.com",  # Safari on macOS and iOS
        ".notify.windows.com",  # Edge on Windows
    ],
)
# Endpoints on http://127.0.0.1 or localhost (the tests' push receiver); never in production.
ROUNDS_PUSH_ALLOW_LOCAL_ENDPOINTS = env_bool("ROUNDS_PUSH_ALLOW_LOCAL_ENDPOINTS", False)
# At most one "new message" push per user per thread in this many seconds.
ROUNDS_PUSH_MESSAGE_COALESCE_SECONDS = float(
    os.environ.get("ROUNDS_PUSH_MESSAGE_COALESCE_SECONDS", "60")
)
# A new message's push waits this long for the next messages of the conversation
# (push/sender.py): one look-up of recipients per thread and burst.
ROUNDS_PUSH_MESSAGE_GATHER_SECONDS = float(
    os.environ.get("ROUNDS_PUSH_MESSAGE_GATHER_SECONDS", "0.25")
)
# How long one push service request may take before it counts as failed.
ROUNDS_PUSH_TIMEOUT_SECONDS = float(os.environ.get("ROUNDS_PUSH_TIMEOUT_SECONDS", "10"))
