"""Authentication for DICOMweb: a browser session, or a per-user token for external viewers.

A token is sent as ``Authorization: Bearer <key>`` (what OHIF and most DICOMweb clients send)
or ``Authorization: Token <key>`` (Django REST framework's form); it is looked up by its
SHA-256 (``cases.models.AccessToken``). A session must pass the CSRF check on unsafe methods,
as it does everywhere else; a token needs none.

Every service URL goes through ``dicomweb_auth``, which turns a 404 into a JSON reply. CORS
(for viewers on other origins) is django-cors-headers' middleware, for ``/dicomweb/`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import Permission
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from cases.models import AccessToken

REALM = 'Bearer realm="gantry-dicomweb"'


TOKEN_KEYWORDS = ("bearer", "token")


class TokenRefused(Exception):
    pass


def _token_user(request: HttpRequest) -> Any:
    """The user of the request's token; None without one. Raises TokenRefused for a
    malformed header, an unknown key or an inactive user."""
    words = request.headers.get("Authorization", "").split()
    if not words or words[0].lower() not in TOKEN_KEYWORDS:
        return None
    if len(words) != 2:
        raise TokenRefused("invalid token header: give the keyword and the token, nothing else")
    user = AccessToken.user_for(words[1])
    if user is None:
        raise TokenRefused("invalid token")
    if not user.is_active:
        raise TokenRefused("the token's user is inactive")
    return user


def load_permissions(user: Any) -> None:
    """Fill ModelBackend's per-request permission cache with one query instead of its two (the
    user's own permissions, then their groups'): the same set, which every DICOMweb request
    needs (roles decide what is visible). Left to Django without ModelBackend."""
    if (
        not settings.GANTRY_DICOMWEB_CACHES
        or "django.contrib.auth.backends.ModelBackend" not in settings.AUTHENTICATION_BACKENDS
        or not user.is_active
        or user.is_superuser
        or hasattr(user, "_perm_cache")
    ):
        return
    found = (
        Permission.objects.filter(Q(user=user) | Q(group__user=user))
        .values_list("content_type__app_label", "codename")
        .order_by()
        .distinct()
    )
    user._perm_cache = {f"{app_label}.{codename}" for app_label, codename in found}


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
        return None
    check = CsrfViewMiddleware(lambda _request: HttpResponse())
    check.process_request(request)
    return check.process_view(request, None, (), {})  # type: ignore[arg-type]


def error(status: int, message: str, **headers: str) -> HttpResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def dicomweb_auth(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Authenticate by token or session; anonymous requests get 401 with a challenge."""

    @login_not_required
    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return _authenticated(view, request, *args, **kwargs)

    return wrapper


def _authenticated(
    view: Callable[..., HttpResponse], request: HttpRequest, *args: Any, **kwargs: Any
) -> HttpResponse:
    try:
        user = _token_user(request)
    except TokenRefused as exc:
        return error(401, str(exc), WWW_Authenticate=REALM)
    if user is None:
        if not request.user.is_authenticated:
            return error(401, "authentication required", WWW_Authenticate=REALM)
        rejected = _csrf_failure(request)
        if rejected is not None:
            return error(403, "CSRF check failed; send a token instead of a session")
    else:
        request.user = user
    load_permissions(request.user)
    try:
        return view(request, *args, **kwargs)
    except Http404 as exc:
        return error(404, str(exc) or "not found")
