from django.urls import path

from chat.consumers.rounds import RoundsConsumer

websocket_urlpatterns = [
    path("ws/", RoundsConsumer.as_asgi()),
]
