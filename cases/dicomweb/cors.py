"""CORS for the DICOMweb service only, so that a viewer served from another origin (OHIF, say)
can call it with a token.

``settings.GANTRY_DICOMWEB_CORS_ORIGINS`` lists the origins allowed (``https://viewer.example.org``;
``*`` for any); none by default, and then no CORS header is ever sent. Credentials (cookies)
are never allowed across origins: a viewer elsewhere authenticates with its user's token in the
``Authorization`` header, so a session cannot be ridden from another site. A preflight
(``OPTIONS`` with ``Access-Control-Request-Method``) is answered here, before authentication,
since browsers send it without the ``Authorization`` header.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

ALLOW_METHODS = "GET, HEAD, POST, OPTIONS"
# Accept and Content-Type must be listed: multipart/related and application/dicom+json are
# not among the values a browser may send without asking.
ALLOW_HEADERS = "Authorization, Accept, Content-Type, Cache-Control, X-Requested-With"
# Response headers a viewer may read beyond the always-readable ones (Content-Type, ...).
EXPOSE_HEADERS = "Content-Length, Content-Location, Location, Warning, WWW-Authenticate"
MAX_AGE = "3600"


def allowed_origins() -> list[str]:
    return [origin.rstrip("/") for origin in settings.GANTRY_DICOMWEB_CORS_ORIGINS]


def allowed_origin(request: HttpRequest) -> str | None:
    """The Access-Control-Allow-Origin value for this request, or None (no CORS headers)."""
    origin = request.headers.get("Origin")
    allowed = allowed_origins()
    if not origin or not allowed:
        return None
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


def preflight(request: HttpRequest) -> HttpResponse | None:
    """The answer to a CORS preflight; None when the request is not one."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    origin = allowed_origin(request)
    if origin is None:
        response = HttpResponse(status=403)  # no Access-Control-* headers: the browser refuses
    else:
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response["Access-Control-Max-Age"] = MAX_AGE
    if allowed_origins():
        patch_vary_headers(response, ("Origin",))
    return response


def add_headers(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """CORS headers on an actual response (errors included, so a viewer can read a 401)."""
    if not allowed_origins():
        return response
    patch_vary_headers(response, ("Origin",))
    origin = allowed_origin(request)
    if origin is not None:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    return response
