from django.urls import path

from chat.consumers.rounds import RoundsConsumer

websocket_urlpatterns = [
    # Channels' URLRouter routes ASGI applications through Django's path(); the stubs'
    # path() knows views only.
    path("ws/", RoundsConsumer.as_asgi()),  # type: ignore[arg-type]
]
