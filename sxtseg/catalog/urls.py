"""URLs of the catalog: the REST API under /api/, its OpenAPI schema and docs, the admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from .api import views

router = DefaultRouter()
router.register("projects", views.ProjectViewSet, basename="project")
router.register("samples", views.SampleViewSet, basename="sample")
router.register("runs", views.RunViewSet, basename="run")
router.register("objects", views.ObjectViewSet, basename="object")

urlpatterns = [
    path("api/aggregate/", views.aggregate, name="aggregate"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/", include(router.urls)),
    path("admin/", admin.site.urls),
]
