"""LTI 1.3 endpoints: OIDC login initiation, the launch, deep linking's quiz picker, and
the tool's public keys. The platform's messages are validated by pylti1p3; what a launch
means in Gantry is ``lti.launch``."""

from __future__ import annotations

import time

from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from lti_tool.models import LtiLaunch
from lti_tool.utils import DjangoToolConfig, sync_data_from_launch
from lti_tool.views import jwks as tool_jwks
from pylti1p3.contrib.django import DjangoCacheDataStorage, DjangoMessageLaunch, DjangoOIDCLogin
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.lineitem import LineItem

from edu.models import AttemptError, Quiz
from lti import launch as launches
from lti.grades import TimeoutSession

LAUNCH_CACHE = "lti"  # OIDC state, nonces and launch data, shared by every web process
SESSION_DEEP_LINK = "gantry_lti_deep_link"
BACKEND = "django.contrib.auth.backends.ModelBackend"

jwks = login_not_required(tool_jwks)


def _storage() -> DjangoCacheDataStorage:
    return DjangoCacheDataStorage(cache_name=LAUNCH_CACHE)


def _refused(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    return render(request, "lti/refused.html", {"message": message}, status=status)


@csrf_exempt
@login_not_required
@require_http_methods(["GET", "POST"])
def oidc_login(request: HttpRequest, registration_uuid: str) -> HttpResponse:
    """Third-party login initiation: remember state and nonce, send the browser to the
    platform's authorisation endpoint, which posts the launch back to ``launch``."""
    params = request.POST if request.method == "POST" else request.GET
    target = params.get("target_link_uri")
    if not target:
        return _refused(request, "the login request names no target_link_uri")
    oidc = DjangoOIDCLogin(
        request, DjangoToolConfig(registration_uuid), launch_data_storage=_storage()
    )
    try:
        return oidc.disable_check_cookies().redirect(target)
    except (LtiException, OIDCException) as exc:
        return _refused(request, f"the login request was refused: {exc}")


def _validated(request: HttpRequest) -> LtiLaunch:
    """The launch, its signature, nonce, state and deployment checked (pylti1p3), and its
    nonce used up: pylti1p3 accepts a nonce again while it is in the cache, so a launch
    posted twice (a replayed id_token) would otherwise start a second session."""
    message = DjangoMessageLaunch(
        request,
        DjangoToolConfig(),
        launch_data_storage=_storage(),
        requests_session=TimeoutSession(),
    )
    data = message.validate().get_launch_data()
    lifetime = max(60, int(data.get("exp", 0)) - int(time.time()) + 60)
    if not caches[LAUNCH_CACHE].add(f"gantry-lti-used-nonce-{data['nonce']}", 1, lifetime):
        raise LtiException("this launch was already used: start it again from the course")
    return LtiLaunch(message)


@csrf_exempt
@login_not_required
@require_POST
def launch(request: HttpRequest) -> HttpResponse:
    """A platform's launch: a learner starts the linked quiz, an instructor deep-links one."""
    try:
        lti_launch = _validated(request)
    except LtiException as exc:
        return _refused(request, f"the launch could not be validated: {exc}")
    sync_data_from_launch(lti_launch)
    if not lti_launch.deployment.is_active:
        return _refused(request, "this deployment is not active in Gantry yet", 403)
    try:
        platform = launches.platform_of(lti_launch.registration)
        teaching = launches.is_teaching(lti_launch.roles_claim)
        if lti_launch.is_deep_link_launch:
            return _deep_link_start(request, lti_launch, platform, teaching)
        if not lti_launch.is_resource_launch:
            return _refused(request, "Gantry handles resource links and deep linking only")
        quiz = launches.linked_quiz(lti_launch, platform)
        user = launches.user_for(lti_launch, platform, teaching=teaching)
        login(request, user, backend=BACKEND)
        if teaching:
            return render(request, "lti/instructor.html", {"quiz": quiz})
        attempt = launches.start_attempt(lti_launch, quiz, user)
    except (launches.LaunchRefused, AttemptError) as exc:
        return _refused(request, str(exc))
    if attempt.is_finished:
        return redirect("edu:attempt-summary", attempt.pk)
    return redirect("edu:attempt-item", attempt.pk, 0)


def _deep_link_start(
    request: HttpRequest, lti_launch: LtiLaunch, platform: object, teaching: bool
) -> HttpResponse:
    if not teaching:
        return _refused(request, "only the course's instructors add Gantry quizzes", 403)
    user = launches.user_for(lti_launch, platform, teaching=True)
    login(request, user, backend=BACKEND)
    request.session[SESSION_DEEP_LINK] = lti_launch.get_launch_id()
    return redirect("lti:deep-link")


@require_http_methods(["GET", "POST"])
def deep_link(request: HttpRequest) -> HttpResponse:
    """The instructor picks a quiz; Gantry answers the platform with a signed resource link
    to it and a line item for its score."""
    launch_id = request.session.get(SESSION_DEEP_LINK)
    if not launch_id:
        return _refused(request, "start from your course: add Gantry content there", 403)
    try:
        message = DjangoMessageLaunch.from_cache(
            launch_id, request, DjangoToolConfig(), launch_data_storage=_storage()
        )
    except LtiException as exc:
        return _refused(request, f"the deep-linking request has expired ({exc}): start again")
    lti_launch = LtiLaunch(message)
    platform = launches.platform_of(lti_launch.registration)
    quizzes = launches.offered_quizzes(platform)
    if request.method == "GET":
        return render(request, "lti/pick.html", {"quizzes": quizzes, "cohort": platform.cohort})
    quiz = get_object_or_404(quizzes, pk=request.POST.get("quiz") or 0)
    resource = _resource(request, lti_launch, quiz)
    deep_link_ = message.get_deep_link()
    del request.session[SESSION_DEEP_LINK]
    return render(
        request,
        "lti/deep_link_return.html",
        {
            "return_url": message.get_launch_data()[
                "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
            ]["deep_link_return_url"],
            "jwt": deep_link_.get_response_jwt([resource]),
            "quiz": quiz,
        },
    )


def _resource(request: HttpRequest, lti_launch: LtiLaunch, quiz: Quiz) -> DeepLinkResource:
    points = sum(q.points for item in quiz.items.all() for q in item.questions.all())
    line_item = (
        LineItem()
        .set_label(quiz.title)
        .set_score_maximum(max(points, 1))
        .set_resource_id(f"gantry-quiz-{quiz.pk}")
    )
    return (
        DeepLinkResource()
        .set_title(quiz.title)
        .set_url(request.build_absolute_uri(reverse("lti:launch")))
        .set_custom_params(
            {launches.QUIZ_PARAMETER: launches.quiz_link(lti_launch.registration, quiz)}
        )
        .set_lineitem(line_item)
    )
