from django.contrib import admin
from django.urls import path

from media import views as media_views
from rounds import frontend
from rounds.health import healthz
from rounds.http import build_api
from rounds.metrics_view import metrics

api = build_api()

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    # Raw-byte upload endpoints, before the JSON API that owns the rest of /api/uploads.
    path("api/uploads/<str:upload_id>/chunks", media_views.put_chunk, name="upload-chunks"),
    path("api/uploads/<str:upload_id>/content", media_views.content, name="upload-content"),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    # The browser client (frontend/, docs/browser.md).
    path("app/<path:path>", frontend.asset, name="frontend-asset"),
    # The push service worker: at the root, so that its scope is the whole app.
    path("sw.js", frontend.service_worker, name="service-worker"),
    path("", frontend.index, name="frontend"),
]
