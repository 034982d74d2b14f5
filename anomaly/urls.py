from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("detection.api.urls")),
    path("", include("django_prometheus.urls")),
    path("", include("dashboard.urls")),
]
