"""Pages of spaced practice: what is due, a practice case in the viewer, the wait while
fresh cases of a concept are generated. The logic lives in ``edu.practice``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from fsrs import Rating

from cases.models import SyntheticPatient
from edu import keys, practice, shown
from edu.models import ConceptCard, PracticeGeneration, ReviewLog


def _own_card(request: HttpRequest, pk: int) -> ConceptCard:
    """The trainee's own card; to anyone else it does not exist (404)."""
    cards = ConceptCard.objects.select_related("template")
    return get_object_or_404(cards, pk=pk, trainee=request.user)


def _own_review(request: HttpRequest, pk: int) -> ReviewLog:
    reviews = ReviewLog.objects.select_related("card__template", "case__template_version")
    return get_object_or_404(reviews, pk=pk, trainee=request.user)


@permission_required("edu.practise", raise_exception=True)
def practice_home(request: HttpRequest) -> HttpResponse:
    """What is due, and per concept: level, streaks, recall predicted and measured."""
    rows = practice.concept_rows(request.user)
    started = {row["card"].template_id for row in rows}
    context = {
        "rows": rows,
        "due": [row for row in rows if row["due"]],
        "startable": practice.practicable_templates().exclude(pk__in=started),
        "day_streak": practice.day_streak(request.user),
        "next_due": min((row["card"].due for row in rows if not row["due"]), default=None),
    }
    return render(request, "edu/practice.html", context)


@require_POST
@permission_required("edu.practise", raise_exception=True)
def practice_start(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(practice.practicable_templates(), pk=pk)
    ConceptCard.open(trainee=request.user, template=template)
    messages.success(request, f"{template} is in your practice, due now.")
    return redirect("edu:practice")


@require_POST
@permission_required("edu.practise", raise_exception=True)
def practice_next(request: HttpRequest, pk: int) -> HttpResponse:
    """A case of the concept the trainee has not seen, or the wait while one is generated."""
    drawn = practice.draw(_own_card(request, pk))
    if drawn.review is not None:
        return redirect("edu:practice-review", drawn.review.pk)
    return redirect("edu:practice-card", pk)


@require_POST
@permission_required("edu.practise", raise_exception=True)
def practice_due(request: HttpRequest) -> HttpResponse:
    """The next due concept, unnamed until answered."""
    card = practice.next_due(request.user)
    if card is None:
        messages.info(request, "Nothing is due now.")
        return redirect("edu:practice")
    return practice_next(request, card.pk)


@permission_required("edu.practise", raise_exception=True)
def practice_card(request: HttpRequest, pk: int) -> HttpResponse:
    """A concept whose pool ran out: the progress of the job making fresh cases of it."""
    card = _own_card(request, pk)
    generation = (
        PracticeGeneration.objects.filter(template=card.template, level=card.level)
        .select_related("job")
        .order_by("-job__created_at")
        .first()
    )
    context = {"card": card, "job": generation.job if generation else None}
    return render(request, "edu/practice_card.html", context)


def _practice_questions(review: ReviewLog, error_responses: dict | None = None) -> list[dict]:
    """The review's questions as the item partials show them, with feedback once answered."""
    responses = error_responses if error_responses is not None else review.responses
    rows = []
    for question in practice.questions(review):
        q: dict[str, Any] = {**question, "response": responses.get(question["id"]) or {}}
        if review.is_answered:
            q["score"] = review.detail.get(question["id"], {}).get("score")
            q["feedback"] = review.detail.get(question["id"], {})
        if q["kind"] == "single_best":
            q["option_rows"] = [
                {
                    "index": i,
                    "text": option["text"],
                    "chosen": q["response"].get("option") == i,
                    "correct": review.is_answered and option["correct"],
                    "feedback": "",
                }
                for i, option in enumerate(question["options"])
            ]
        elif isinstance(q["response"].get("image"), int):
            q["mark_label"] = f"Timepoint {q['response']['image'] + 1}"
        rows.append(q)
    return rows


def _practice_responses(post: Any) -> dict[str, dict[str, Any]]:
    def number(name: str, kind: type) -> Any:
        try:
            return kind(post.get(name, ""))
        except ValueError:
            return None

    return {
        "finding": {"option": number("qfinding_option", int)},
        "lesion": {
            "image": number("qlesion_image", int),
            "x": number("qlesion_x", float),
            "y": number("qlesion_y", float),
        },
    }


def _contrast_url(review: ReviewLog, index: int) -> Callable[[int], str]:
    """Where the page finds contrast ``c`` of the study shown as image ``index``: by the
    study's place in the review, as a quiz addresses its images (0 is the image itself)."""

    def url(c: int) -> str:
        if c:
            return reverse("edu:practice-contrast", args=[review.pk, index, c])
        return reverse("edu:practice-image", args=[review.pk, index])

    return url


@permission_required("edu.practise", raise_exception=True)
def practice_review(request: HttpRequest, pk: int) -> HttpResponse:
    """One practice case in the viewer: answer, then the feedback and the next due date."""
    review = _own_review(request, pk)
    error, posted = None, None
    if request.method == "POST" and not review.is_answered:
        posted = _practice_responses(request.POST)
        try:
            practice.answer(review, posted)
        except practice.PracticeError as exc:
            error = str(exc)
        else:
            return redirect("edu:practice-review", review.pk)
    images = keys.images_of_case(review.case)
    urls = [reverse("edu:practice-image", args=[review.pk, i]) for i in range(len(images))]
    labels = [f"Timepoint {i + 1}" for i in range(len(images))]
    contrasts = [shown.contrasts(image, _contrast_url(review, i)) for i, image in enumerate(images)]
    version = review.case.template_version
    context = {
        "review": review,
        "card": review.card,
        "questions": _practice_questions(review, posted),
        "error": error,
        "version": version,
        "rating": Rating(review.rating).name if review.rating else None,
        "more_due": practice.next_due(request.user) is not None,
        "viewer_data": shown.viewer_studies(urls, contrasts, labels),
    }
    return render(request, "edu/practice_review.html", context, status=400 if error else 200)


@require_GET
@permission_required("edu.practise", raise_exception=True)
def practice_image(request: HttpRequest, pk: int, index: int, contrast: int = 0) -> HttpResponse:
    """One image of a practice case (or, with ``contrast``, another contrast of its study: 0
    is the image itself), blinded like a quiz image (no severity, no dates)."""
    review = _own_review(request, pk)
    if (
        not SyntheticPatient.objects.not_hidden_from(request.user)
        .filter(pk=review.case_id)
        .exists()
    ):
        raise Http404("no such image")
    images = keys.images_of_case(review.case)
    return shown.blinded_image(
        images, index, contrast, key=f"practice:{review.pk}", seed=review.seed
    )
