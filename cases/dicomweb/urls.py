"""DICOMweb routes, mounted at ``/dicomweb/`` and again, scoped, at ``/dicomweb/pools/<id>/``."""

from django.urls import include, path, register_converter

from cases.dicomweb import views


class UIDConverter:
    regex = r"[0-9]+(?:\.[0-9]+)*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class FramesConverter:
    regex = r"[0-9]+(?:,[0-9]+)*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(UIDConverter, "uid")
register_converter(FramesConverter, "frames")

INSTANCE = "studies/<uid:study>/series/<uid:series>/instances/<uid:sop>"
service = [
    path("studies", views.studies),
    path("studies/<uid:study>", views.study),
    path("studies/<uid:study>/metadata", views.metadata),
    path("studies/<uid:study>/series", views.study_series),
    path("studies/<uid:study>/instances", views.instances),
    path("studies/<uid:study>/series/<uid:series>", views.series),
    path("studies/<uid:study>/series/<uid:series>/metadata", views.metadata),
    path("studies/<uid:study>/series/<uid:series>/instances", views.instances),
    path(INSTANCE, views.instance),
    path(f"{INSTANCE}/metadata", views.metadata),
    path(f"{INSTANCE}/rendered", views.rendered),
    path(f"{INSTANCE}/frames/<frames:frames>", views.frames),
    path(f"{INSTANCE}/frames/<frames:frames>/rendered", views.rendered),
    path("series", views.all_series),
    path("instances", views.instances),
]

urlpatterns = [
    path("", views.token_page, name="dicomweb-root"),
    path("pools/<int:pool>/", include(service)),
    path("pools/<int:pool>/", views.token_page, name="dicomweb-pool-root"),
    path("", include(service)),
]
