from django.contrib import admin
from django.urls import path

from rounds.health import healthz
from rounds.http import build_api

api = build_api()

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
]
