"""What a validated LTI launch means in Gantry: who the user is, which quiz a link opens,
and the attempt (with the score owed to the platform) a learner's launch starts.

The protocol itself (OIDC login, JWT signatures against the platform's keys, nonce and
state, deployments) is pylti1p3's, through django-lti's registrations.

A quiz link is what deep linking puts in the platform's resource link, as the custom
parameter ``gantry_quiz``: the quiz id and the registration, signed with the site's key. A
launch whose link Gantry did not make for this platform (an instructor typing a quiz id into
the platform's custom parameters, say) is refused.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import signing
from django.db import transaction
from django.db.models import QuerySet
from lti_tool.lti_core.constants import ContextRole
from lti_tool.lti_core.utils import normalize_role
from lti_tool.models import LtiLaunch, LtiRegistration

from edu.models import Attempt, Quiz
from gantry.permissions import TRAINEE
from lti.models import Platform, ScoreReport

QUIZ_PARAMETER = "gantry_quiz"
CUSTOM_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/custom"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINK_SALT = "gantry.lti.quiz-link"
TEACHING_ROLES = {
    ContextRole.INSTRUCTOR.value,
    ContextRole.ADMINISTRATOR.value,
    ContextRole.CONTENT_DEVELOPER.value,
}


class LaunchRefused(Exception):
    """A launch Gantry will not act on; the message is for the person launching."""


def platform_of(registration: LtiRegistration) -> Platform:
    platform = Platform.objects.select_related("cohort").filter(registration=registration).first()
    if platform is None:
        raise LaunchRefused(
            "this platform is registered but not set up in Gantry: an administrator must "
            "choose the cohort its learners join"
        )
    return platform


def is_teaching(roles: list[str]) -> bool:
    """Instructors, administrators and content developers of the course pick quizzes; every
    other role takes them."""
    return bool({normalize_role(role) for role in roles} & TEACHING_ROLES)


def offered_quizzes(platform: Platform) -> QuerySet[Quiz]:
    """The quizzes an instructor of the platform may link: the cohort's published ones."""
    return Quiz.objects.filter(cohort=platform.cohort, is_published=True).order_by("title")


def quiz_link(registration: LtiRegistration, quiz: Quiz) -> str:
    return signing.dumps({"quiz": quiz.pk, "registration": str(registration.uuid)}, salt=LINK_SALT)


def linked_quiz(launch: LtiLaunch, platform: Platform) -> Quiz:
    """The quiz a resource link opens, from its signed custom parameter."""
    custom = launch.get_claim(CUSTOM_CLAIM) or {}
    value = custom.get(QUIZ_PARAMETER) if isinstance(custom, dict) else None
    if not value:
        raise LaunchRefused("this link names no Gantry quiz: add it through deep linking")
    try:
        data = signing.loads(str(value), salt=LINK_SALT)
    except signing.BadSignature:
        raise LaunchRefused("this link was not made by Gantry for this platform") from None
    if data.get("registration") != str(platform.registration.uuid):
        raise LaunchRefused("this link was made for another platform")
    quiz = offered_quizzes(platform).filter(pk=data.get("quiz")).first()
    if quiz is None:
        raise LaunchRefused("the linked quiz is no longer published for this platform's cohort")
    return quiz


def _username(registration: LtiRegistration, sub: str) -> str:
    digest = hashlib.sha256(f"{registration.uuid}\x00{sub}".encode()).hexdigest()
    return f"lti-{digest[:24]}"


def user_for(launch: LtiLaunch, platform: Platform, *, teaching: bool) -> Any:
    """The Gantry account of the launching platform user, made on their first launch. A
    learner is a trainee in the platform's cohort; an instructor gets no Gantry role (their
    launches only pick quizzes)."""
    lti_user = launch.user
    with transaction.atomic():
        user = lti_user.auth_user
        if user is None:
            user, _ = get_user_model().objects.get_or_create(
                username=_username(launch.registration, lti_user.sub)
            )
            user.set_unusable_password()
            lti_user.auth_user = user
            lti_user.save(update_fields=["auth_user"])
        user.first_name = (lti_user.given_name or lti_user.name)[:150]
        user.last_name = lti_user.family_name[:150]
        user.email = lti_user.email
        user.save()
        if not teaching:
            user.groups.add(Group.objects.get(name=TRAINEE), platform.cohort)
    return user


def start_attempt(launch: LtiLaunch, quiz: Quiz, user: Any) -> Attempt:
    """The learner's attempt (an exam's one attempt is resumed), with the score report the
    platform's gradebook is owed when the launch grants AGS scores."""
    attempt = Attempt.start(quiz=quiz, user=user)  # AttemptError: not open
    ags = launch.get_claim(AGS_CLAIM) or {}
    scopes = list(ags.get("scope", []))
    if ags.get("lineitem") and SCORE_SCOPE in scopes:
        ScoreReport.objects.get_or_create(
            attempt=attempt,
            defaults={
                "registration": launch.registration,
                "lineitem_url": ags["lineitem"],
                "scopes": scopes,
                "user_sub": launch.user.sub,
            },
        )
    return attempt
