from django.urls import path

from lti import views

app_name = "lti"

urlpatterns = [
    path("login/<uuid:registration_uuid>/", views.oidc_login, name="login"),
    path("launch/", views.launch, name="launch"),
    path("deep-link/", views.deep_link, name="deep-link"),
    path("jwks/", views.jwks, name="jwks"),
]
