"""The ASGI entry point daphne serves: HTTP through Django, `/ws/` through Channels."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rounds.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from advice import scheduler  # noqa: E402
from chat.consumers.auth import websocket_stack  # noqa: E402
from media.views import refuse_chunks_early  # noqa: E402
from rounds.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": refuse_chunks_early(django_asgi_app),
        "websocket": websocket_stack(URLRouter(websocket_urlpatterns)),  # type: ignore[arg-type]  # Django's URLPattern, which URLRouter takes
    }
)

# The advice timers fire from every server process (ROUNDS_SCHEDULER=thread), each
# once: advice/scheduler.py.
scheduler.start()

# Everything loaded so far (Django, the apps, their modules) lives as long as
# the process: freezing it keeps it out of the collector's full passes, whose
# pauses were the p99 of history pages and resumes (docs/performance.md).
gc.freeze()
