"""URLs of the catalog: the REST API under /api/, its OpenAPI schema and docs, the web pages, the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from . import pages
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
    path("accounts/login/", auth_views.LoginView.as_view(template_name="catalog/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", pages.sample_list, name="catalog-home"),
    path("samples/", pages.sample_list, name="catalog-samples"),
    path("samples/<int:pk>/", pages.sample_detail, name="catalog-sample"),
    path("compare/", pages.compare, name="catalog-compare"),
    path("runs/<int:pk>/quicklook.png", pages.quicklook, name="catalog-quicklook"),
]
