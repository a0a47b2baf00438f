from django.urls import include, path
from rest_framework.routers import DefaultRouter

from cases import api, generator_pages, views
from cases.imaging import views as imaging
from cases.reference import views as reference

router = DefaultRouter()
router.register("generators", api.GeneratorViewSet)
router.register("templates", api.TemplateViewSet)
router.register("jobs", api.JobViewSet)
router.register("cases", api.CaseViewSet, basename="api-case")

urlpatterns = [
    path("", views.home, name="home"),
    path("templates/", views.template_list, name="template-list"),
    path("templates/new/", views.template_create, name="template-create"),
    path("templates/<int:pk>/", views.template_detail, name="template-detail"),
    path("templates/<int:pk>/edit/", views.template_edit, name="template-edit"),
    path("templates/<int:pk>/generate/", views.job_launch, name="job-launch"),
    path("jobs/<int:pk>/progress/", views.job_progress, name="job-progress"),
    path("operations/<int:pk>/", views.operation_detail, name="operation"),
    path("operations/<int:pk>/progress/", views.operation_progress, name="operation-progress"),
    path("generators/", views.generator_list, name="generator-list"),
    path("generators/import/", generator_pages.stylegan_upload, name="generator-import"),
    path("generators/<int:pk>/", views.generator_detail, name="generator-detail"),
    path(
        "generators/<int:pk>/publish/", generator_pages.generator_publish, name="generator-publish"
    ),
    path(
        "generators/<int:pk>/directions/",
        generator_pages.direction_teach,
        name="generator-directions",
    ),
    path(
        "generators/<int:pk>/directions/<int:direction_pk>/preview.png",
        generator_pages.direction_preview,
        name="generator-direction-preview",
    ),
    path(
        "generators/<int:pk>/samples/<int:seed>.png",
        generator_pages.generator_sample,
        name="generator-sample",
    ),
    path(
        "generators/<int:pk>/figures/<int:figure_pk>.png",
        views.generator_figure,
        name="generator-figure",
    ),
    path("cases/", views.case_list, name="case-list"),
    path("cases/<int:pk>/", views.case_detail, name="case-detail"),
    path("cases/<int:pk>/export/", imaging.export_page, name="case-export"),
    path("cases/<int:pk>/export.zip", imaging.export_download, name="case-export-zip"),
    path(
        "cases/<int:pk>/teaching-file.zip",
        imaging.export_teaching_file_zip,
        name="case-teaching-file",
    ),
    path("cases/<int:pk>/export/send/", imaging.export_send, name="case-export-send"),
    path("wado/", imaging.wado_uri, name="wado-uri"),
    path("dicomweb/", include("cases.dicomweb.urls")),
    path("reference/", reference.pool_list, name="reference-pool-list"),
    path("reference/<int:pk>/", reference.pool_detail, name="reference-pool"),
    path("api/", include(router.urls)),
]
