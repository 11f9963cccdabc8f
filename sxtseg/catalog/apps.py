"""Django app configuration of the catalog (app label ``catalog``)."""

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "sxtseg.catalog"
    label = "catalog"
    verbose_name = "sxtseg catalog"
    default_auto_field = "django.db.models.BigAutoField"
