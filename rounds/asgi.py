"""The ASGI entry point daphne serves: HTTP through Django, `/ws/` through Channels."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rounds.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat.consumers.auth import websocket_stack  # noqa: E402
from rounds.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_stack(URLRouter(websocket_urlpatterns)),
    }
)
