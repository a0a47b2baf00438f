from django.urls import path

from turing import views

app_name = "turing"

urlpatterns = [
    path("", views.study_list, name="study-list"),
    path("new/", views.study_create, name="study-create"),
    path("studies/<int:pk>/", views.study_detail, name="study-detail"),
    path("studies/<int:pk>/close/", views.study_close, name="study-close"),
    path("studies/<int:pk>/start/", views.start, name="start"),
    path("studies/<int:pk>/pause/", views.pause, name="pause"),
    path("studies/<int:pk>/read/", views.read_next, name="read-next"),
    path("studies/<int:pk>/read/<int:position>/", views.read, name="read"),
    path("studies/<int:pk>/quality/<int:position>/", views.quality, name="quality"),
    path("studies/<int:pk>/trial/<int:position>/", views.trial, name="trial"),
    path("studies/<int:pk>/feedback/<int:position>/", views.feedback, name="feedback"),
    path("studies/<int:pk>/results/", views.results, name="results"),
    path("studies/<int:pk>/results.csv", views.results_csv, name="results-csv"),
    path(
        "studies/<int:pk>/quality.csv",
        views.results_csv,
        {"part": "quality"},
        name="quality-csv",
    ),
    path("image/<str:token>/", views.image, name="image"),
]
