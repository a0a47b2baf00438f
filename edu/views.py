"""Pages: expert review, curation, quiz authoring and results, taking a quiz, progress.
Spaced practice has its own: ``edu.practice_views``."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from cases.imaging.viewer import ViewerData, timepoint_label, viewer_data
from cases.models import CaseTemplate, Instance, SyntheticPatient
from edu import answering, keys, plots, results, shown
from edu.forms import (
    CaseFilterForm,
    CurationRuleForm,
    DifficultyDialForm,
    ItemMoveForm,
    KeySourceForm,
    QuestionForm,
    QuizForm,
    ReviewForm,
    response_from_post,
)
from edu.models import (
    FROZEN,
    Answer,
    Attempt,
    AttemptError,
    CurationRule,
    DifficultyDial,
    ManualApproval,
    Question,
    Quiz,
    QuizItem,
    Review,
)
from edu.scoring import CHANGES, ResponseError
from edu.trainee_view import attempt_view, item_view
from gantry.permissions import object_or_403

# Item layouts whose two images hang side by side, whatever the screen.
SIDE_BY_SIDE = (Question.Layout.PAIR, Question.Layout.PRIOR)

# --- expert review --------------------------------------------------------------------------


@permission_required("edu.review_case", raise_exception=True)
def review_queue(request: HttpRequest) -> HttpResponse:
    mine = dict(Review.objects.filter(expert=request.user).values_list("case_id", "realism"))
    cases = (
        SyntheticPatient.objects.visible_to(request.user)
        .cases()
        .select_related("template_version")
        .order_by("pk")
    )
    rows = [(case, mine.get(case.pk)) for case in cases]
    return render(request, "edu/review_queue.html", {"rows": rows})


def _viewer_data(case: SyntheticPatient) -> ViewerData:
    studies = case.studies.prefetch_related("series__instances")
    return viewer_data(studies, label=timepoint_label)


@permission_required("edu.review_case", raise_exception=True)
def review_case(request: HttpRequest, pk: int) -> HttpResponse:
    cases = SyntheticPatient.objects.visible_to(request.user).cases()
    case = get_object_or_404(cases.select_related("template_version"), pk=pk)
    review = Review.objects.filter(case=case, expert=request.user).first()
    form = ReviewForm(request.POST or None, instance=review)
    if request.method == "POST" and form.is_valid():
        Review.submit(case=case, expert=request.user, **form.cleaned_data)
        case.refresh_from_db()
        messages.success(request, f"Review saved; the case is now {case.get_status_display()}.")
        return redirect("edu:review-queue")
    context = {
        "case": case,
        "version": case.template_version,
        "form": form,
        "viewer_data": _viewer_data(case),
    }
    return render(request, "edu/review_case.html", context, status=400 if form.errors else 200)


# --- curation and agreement -------------------------------------------------------------------


def _curation_page(
    request: HttpRequest,
    *,
    status: int = 200,
    bound: CurationRuleForm | DifficultyDialForm | None = None,
) -> HttpResponse:
    """Per template: its curation rule and its practice difficulty dial (``bound``: a form
    refused, shown again with its errors)."""
    templates = []
    for template in CaseTemplate.objects.all():
        rule, dial = (
            bound if bound is not None and bound.prefix == prefix else None
            for prefix in (f"t{template.pk}", f"d{template.pk}")
        )
        templates.append(
            (
                template,
                rule
                or CurationRuleForm(
                    instance=CurationRule.for_template(template), prefix=f"t{template.pk}"
                ),
                dial
                or DifficultyDialForm(
                    instance=DifficultyDial.for_template(template), prefix=f"d{template.pk}"
                ),
            )
        )
    context = {
        "templates": templates,
        "waiting": _waiting_cases(),
        "agreement": results.agreement_report(),
    }
    return render(request, "edu/curation.html", context, status=status)


def _waiting_cases() -> list[tuple[SyntheticPatient, str]]:
    """Cases not approved (yet), each with why, newest first."""
    cases = (
        SyntheticPatient.objects.exclude(status=SyntheticPatient.Status.APPROVED)
        .select_related("template_version__template")
        .prefetch_related("reviews")
        .order_by("-pk")[:200]
    )
    rules: dict[int, CurationRule] = {}
    rows = []
    for case in cases:
        template = case.template_version.template
        rule = rules.setdefault(template.pk, CurationRule.for_template(template))
        rows.append((case, rule.explain(case)))
    return rows


@permission_required("edu.curate_cases", raise_exception=True)
def curation(request: HttpRequest) -> HttpResponse:
    return _curation_page(request)


@require_POST
@permission_required("edu.curate_cases", raise_exception=True)
def curation_rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(CaseTemplate, pk=pk)
    form = CurationRuleForm(
        request.POST, instance=CurationRule.for_template(template), prefix=f"t{template.pk}"
    )
    if not form.is_valid():
        return _curation_page(request, status=400, bound=form)
    operation = form.save().launch_apply(user=request.user)
    messages.success(request, f"Curation rule of {template} saved; it is being applied.")
    return redirect(operation)


@require_POST
@permission_required("edu.curate_cases", raise_exception=True)
def difficulty_dial_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(CaseTemplate, pk=pk)
    form = DifficultyDialForm(
        request.POST, instance=DifficultyDial.for_template(template), prefix=f"d{template.pk}"
    )
    if not form.is_valid():
        return _curation_page(request, status=400, bound=form)
    form.save()
    messages.success(request, f"Practice difficulty of {template} saved.")
    return redirect("edu:curation")


@require_POST
@permission_required("edu.curate_cases", raise_exception=True)
def case_approve(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve a case for teaching by hand, whatever its reviews say."""
    case = get_object_or_404(SyntheticPatient, pk=pk)
    ManualApproval.approve(case=case, by=request.user)
    messages.success(request, f"{case.patient_id} approved by hand: it can now enter quizzes.")
    return redirect("edu:curation")


# --- quiz authoring ---------------------------------------------------------------------------


def _quiz_list_page(request: HttpRequest, *, status: int = 200, error: str = "") -> HttpResponse:
    if request.user.has_perm("edu.manage_quiz"):
        quizzes = Quiz.objects.authored_by(request.user)
        context = {"quizzes": quizzes, "authoring": True, "error": error}
        return render(request, "edu/quiz_list.html", context, status=status)
    quizzes = Quiz.objects.for_trainee(request.user)
    attempts = Attempt.objects.filter(
        user=request.user, quiz__cohort__in=request.user.groups.all(), is_reference=False
    ).select_related("quiz")
    context = {"quizzes": quizzes, "attempts": attempts, "error": error}
    if request.user.has_perm("edu.read_reference"):
        readings = Attempt.objects.filter(user=request.user, is_reference=True)
        context["reference"] = [
            (quiz, next((a for a in readings if a.quiz_id == quiz.pk), None))
            for quiz in Quiz.objects.for_reference_readers()
        ]
    return render(request, "edu/quiz_list.html", context, status=status)


@login_required
def quiz_list(request: HttpRequest) -> HttpResponse:
    return _quiz_list_page(request)


@permission_required("edu.manage_quiz", raise_exception=True)
def quiz_create(request: HttpRequest) -> HttpResponse:
    form = QuizForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.instance.created_by = request.user
        quiz = form.save()
        return redirect(quiz)
    return render(request, "edu/quiz_form.html", {"form": form}, status=400 if form.errors else 200)


def _quiz_page(
    request: HttpRequest,
    quiz: Quiz,
    *,
    status: int = 200,
    form: QuizForm | None = None,
    question_forms: dict[int, QuestionForm] | None = None,
    errors: dict[Any, Any] | None = None,
    checked: Sequence[int] = (),
) -> HttpResponse:
    """The quiz's edit page. An action it refuses renders it again with the reason beside the
    control that was used and what the educator typed or ticked kept (``errors`` by place:
    "publish", "add_items", or an item's pk)."""
    question_forms = question_forms or {}
    filters = CaseFilterForm(request.GET or None)
    candidates = SyntheticPatient.objects.cases().filter(status=SyntheticPatient.Status.APPROVED)
    if filters.is_valid():
        candidates = filters.apply(candidates)
    items = quiz.items.select_related("case__template_version").prefetch_related("questions")
    errors = errors or {}
    context = {
        "quiz": quiz,
        "form": form or QuizForm(instance=quiz),
        "filters": filters,
        "candidates": [
            (case, _case_facts(case))
            for case in candidates.exclude(pk__in=items.values("case")).select_related(
                "template_version"
            )[:100]
        ],
        "items": [
            (
                item,
                question_forms.get(item.pk) or QuestionForm(prefix=f"i{item.pk}"),
                errors.get(item.pk),
                _case_facts(item.case),
            )
            for item in items
        ],
        "errors": errors,
        "checked": {str(pk) for pk in checked},
    }
    return render(request, "edu/quiz_edit.html", context, status=status)


def _case_facts(case: SyntheticPatient) -> dict[str, Any]:
    """What the quiz builder shows of a case: a thumbnail of its last study (WADO-RS
    rendered), its finding and its severity at the last study."""
    last = case.studies.order_by("-timepoint").first()
    image = (
        Instance.objects.filter(series__study=last)
        .exclude(series__modality="SEG")
        .select_related("series__study")
        .order_by("series__pk", "instance_number")
        .first()
    )
    thumbnail = None
    if image is not None:
        thumbnail = (
            f"/dicomweb/studies/{image.series.study.study_uid}/series/"
            f"{image.series.series_uid}/instances/{image.sop_instance_uid}/rendered"
        )
    return {
        "thumbnail": thumbnail,
        "finding": case.template_version.finding,
        "severity": last.severity if last else None,
        "timepoints": case.studies.count(),
    }


@permission_required("edu.manage_quiz", raise_exception=True)
def quiz_edit(request: HttpRequest, pk: int) -> HttpResponse:
    quiz = object_or_403(request, Quiz, "edu.edit_quiz", pk=pk)
    form = QuizForm(request.POST or None, instance=quiz)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Quiz settings saved.")
        return redirect(quiz)
    return _quiz_page(request, quiz, form=form, status=400 if form.errors else 200)


@require_POST
@permission_required("edu.manage_quiz", raise_exception=True)
def quiz_add_items(request: HttpRequest, pk: int) -> HttpResponse:
    quiz = object_or_403(request, Quiz, "edu.edit_quiz", pk=pk)
    posted = request.POST.getlist("cases")
    if quiz.is_published:
        problem = f"Cannot add: {FROZEN}."
        return _quiz_page(request, quiz, status=400, errors={"add_items": problem})
    ids = [int(v) for v in posted if v.isdigit()]
    cases = SyntheticPatient.objects.cases().filter(pk__in=ids)
    if not ids or cases.count() != len(set(ids)):
        problem = "Tick one or more cases to add." if not posted else "Some cases no longer exist."
        return _quiz_page(request, quiz, status=400, errors={"add_items": problem}, checked=ids)
    start = quiz.items.count()
    try:
        with transaction.atomic():
            for offset, case in enumerate(cases.order_by("pk")):
                QuizItem.objects.get_or_create(
                    quiz=quiz, case=case, defaults={"order": start + offset}
                )
    except ValidationError as exc:
        problem = "Cannot add: " + "; ".join(exc.messages)
        return _quiz_page(request, quiz, status=400, errors={"add_items": problem}, checked=ids)
    messages.success(request, f"Added {len(ids)} case{'s' * (len(ids) != 1)}.")
    return redirect(quiz)


@require_POST
@permission_required("edu.manage_quiz", raise_exception=True)
def quiz_item_move(request: HttpRequest, pk: int, item: int) -> HttpResponse:
    quiz = object_or_403(request, Quiz, "edu.edit_quiz", pk=pk)
    try:
        current = quiz.item_position(item)
    except QuizItem.DoesNotExist as exc:
        raise Http404(str(exc)) from exc
    form = ItemMoveForm(request.POST)
    if not form.is_valid():
        problem = "Cannot move the item: " + "; ".join(_messages(form.errors))
        return _quiz_page(request, quiz, status=400, errors={item: problem})
    try:
        quiz.move_item(item, form.target(current))
    except ValidationError as exc:
        problem = "Cannot move the item: " + "; ".join(exc.messages)
        return _quiz_page(request, quiz, status=400, errors={item: problem})
    return redirect(quiz)


@require_POST
@permission_required("edu.manage_quiz", raise_exception=True)
def quiz_item_remove(request: HttpRequest, pk: int, item: int) -> HttpResponse:
    quiz = object_or_403(request, Quiz, "edu.edit_quiz", pk=pk)
    get_object_or_404(QuizItem, pk=item, quiz=quiz)
    try:
        quiz.remove_item(item)
    except ValidationError as exc:
        problem = "Cannot remove the item: " + "; ".join(exc.messages)
        return _quiz_page(request, quiz, status=400, errors={item: problem})
    messages.success(request, "Item removed.")
    return redirect(quiz)


@require_POST
@permission_required("edu.manage_quiz", raise_exception=True)
def question_add(request: HttpRequest, pk: int) -> HttpResponse:
    item = object_or_403(request, QuizItem.objects.select_related("quiz"), "edu.edit_quiz", pk=pk)
    if item.quiz.is_published:
        problem = f"Cannot add the question: {FROZEN}."
        return _quiz_page(request, item.quiz, status=400, errors={item.pk: problem})
    form = QuestionForm(request.POST, prefix=f"i{item.pk}")
    form.instance.item = item
    form.instance.order = item.questions.count()
    if not form.is_valid():
        return _quiz_page(request, item.quiz, status=400, question_forms={item.pk: form})
    form.save()
    messages.success(request, "Question added.")
    return redirect(item.quiz)


def _messages(errors: Any) -> list[str]:
    """A form's errors as sentences (a field's errors named after its label)."""
    return [message for messages_ in errors.values() for message in messages_]


@require_POST
@permission_required("edu.manage_quiz", raise_exception=True)
def question_key_source(request: HttpRequest, pk: int) -> HttpResponse:
    """Choose what a question's answers are scored against; the answers are scored again."""
    question = object_or_403(
        request, Question.objects.select_related("item__quiz"), "edu.edit_quiz", pk=pk
    )
    form = KeySourceForm(request.POST, instance=question)
    if not form.is_valid():  # the model's clean refuses kinds without a reference standard
        problem = "; ".join(_messages(form.errors))
        return _results_page(request, question.item.quiz, status=400, errors={question.pk: problem})
    question.save(update_fields=["key_source"])
    count = answering.rescore(question)
    messages.success(
        request, f"Reference standard saved; {count} answer{'s' * (count != 1)} scored again."
    )
    return redirect("edu:quiz-results", question.item.quiz_id)


@require_POST
@permission_required("edu.manage_quiz", raise_exception=True)
def quiz_new_version(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit a published quiz: its next version, a draft, that replaces it once published."""
    quiz = object_or_403(request, Quiz, "edu.edit_quiz", pk=pk)
    try:
        draft = quiz.new_version()
    except ValidationError as exc:
        return _quiz_page(request, quiz, status=400, errors={"publish": exc.messages})
    messages.success(
        request,
        f"Version {draft.version} is a draft copy: publishing it replaces version {quiz.version} "
        "for new attempts; finished attempts keep their items and scores.",
    )
    return redirect(draft)


@require_POST
@permission_required("edu.manage_quiz", raise_exception=True)
def quiz_publish(request: HttpRequest, pk: int) -> HttpResponse:
    quiz = object_or_403(request, Quiz, "edu.edit_quiz", pk=pk)
    try:
        quiz.publish()
    except ValidationError as exc:
        return _quiz_page(request, quiz, status=400, errors={"publish": exc.messages})
    replaced = f"; it replaces version {quiz.version - 1}" if quiz.previous_version_id else ""
    messages.success(request, f"Published to {quiz.cohort}{replaced}.")
    return redirect(quiz)


# --- results ----------------------------------------------------------------------------------


def _results_page(
    request: HttpRequest, quiz: Quiz, *, status: int = 200, errors: dict[Any, Any] | None = None
) -> HttpResponse:
    """The quiz's results; a refused grade or key choice shows its reason beside the answer
    or question it was about (``errors`` by answer "a<pk>" or question pk) with the input."""
    data = results.quiz_results(quiz)
    edges = data["histogram"]["edges"]
    labels = [f"{edges[i]:.0f}" for i in range(len(edges) - 1)]
    chart = plots.bar_chart(labels, data["histogram"]["counts"])
    reference = results.reference_readings(quiz)
    errors = errors or {}
    for row in reference["questions"]:
        question = row["question"]
        row["form"] = KeySourceForm(instance=question, auto_id=f"k{question.pk}-%s")
        row["error"] = errors.get(question.pk)
    for answer in data["ungraded"]:
        answer.grade_error = errors.get(f"a{answer.pk}")
    context = {
        "quiz": quiz,
        **data,
        "chart": chart,
        "reference": reference,
        "problems": [v if isinstance(v, str) else v[0] for v in errors.values()],
    }
    return render(request, "edu/quiz_results.html", context, status=status)


@permission_required("edu.manage_quiz", raise_exception=True)
def quiz_results(request: HttpRequest, pk: int) -> HttpResponse:
    return _results_page(request, object_or_403(request, Quiz, "edu.edit_quiz", pk=pk))


@permission_required("edu.manage_quiz", raise_exception=True)
def quiz_results_csv(request: HttpRequest, pk: int) -> HttpResponse:
    quiz = object_or_403(request, Quiz, "edu.edit_quiz", pk=pk)
    data = results.quiz_results(quiz)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="quiz-{quiz.pk}-results.csv"'
    writer = csv.writer(response)
    writer.writerow(["trainee", "started", "finished", "earned", "possible", "percent", "pending"])
    for row in data["rows"]:
        a, s = row["attempt"], row["score"]
        writer.writerow(
            [
                row["user"].get_username(),
                a.started_at.isoformat(),
                a.finished_at.isoformat(),
                s["earned"],
                s["possible"],
                s["percent"],
                s["pending"],
            ]
        )
    return response


@permission_required("edu.manage_quiz", raise_exception=True)
def quiz_items_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """The item analysis: per question, and per option of single-best-answer questions."""
    quiz = object_or_403(request, Quiz, "edu.edit_quiz", pk=pk)
    data = results.quiz_results(quiz)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="quiz-{quiz.pk}-items.csv"'
    writer = csv.writer(response)
    writer.writerow(results.ITEM_CSV_HEADER)
    writer.writerows(results.item_analysis_csv_rows(data["items"]))
    return response


@require_POST
@permission_required("edu.manage_quiz", raise_exception=True)
def grade_answer(request: HttpRequest, pk: int) -> HttpResponse:
    answer = object_or_403(
        request,
        Answer.objects.select_related("attempt__quiz"),
        "edu.edit_quiz",
        pk=pk,
        question__kind="free_text",
    )
    typed = request.POST.get("score", "")
    try:
        score = float(typed)
    except ValueError:
        score = -1.0
    if not 0.0 <= score <= 1.0:
        problem = (
            f"The grade is a number from 0 to 1, not {typed!r}."
            if typed
            else ("Give a grade from 0 to 1.")
        )
        return _results_page(
            request, answer.attempt.quiz, status=400, errors={f"a{answer.pk}": (problem, typed)}
        )
    answer.grade(score, by=request.user)
    messages.success(request, f"Graded {answer.attempt.user.get_username()}'s answer: {score:g}.")
    return redirect("edu:quiz-results", answer.attempt.quiz_id)


# --- taking a quiz ----------------------------------------------------------------------------


def _own_attempt(request: HttpRequest, pk: int) -> Attempt:
    """The attempt, for its trainee; to anyone else it does not exist (404)."""
    attempt = get_object_or_404(Attempt.objects.select_related("quiz"), pk=pk)
    if not request.user.has_perm("edu.take_attempt", attempt):
        raise Http404("no such attempt")
    attempt.expire_if_due()
    return attempt


@require_POST
@login_required
def attempt_start(request: HttpRequest, pk: int) -> HttpResponse:
    quiz = get_object_or_404(Quiz.objects.for_trainee(request.user), pk=pk)
    try:
        attempt = Attempt.start(quiz=quiz, user=request.user)
    except AttemptError as exc:
        return _quiz_list_page(request, status=400, error=f"Cannot start {quiz}: {exc}.")
    return redirect("edu:attempt-item", attempt.pk, 0)


@require_POST
@permission_required("edu.read_reference", raise_exception=True)
def reference_start(request: HttpRequest, pk: int) -> HttpResponse:
    """Start (or resume) the expert's reference reading of a quiz."""
    quiz = get_object_or_404(Quiz.objects.for_reference_readers(), pk=pk)
    attempt = Attempt.start_reference(quiz=quiz, user=request.user)
    return redirect("edu:attempt-item", attempt.pk, 0)


@require_POST
@login_required
def attempt_retry(request: HttpRequest, pk: int) -> HttpResponse:
    previous = _own_attempt(request, pk)
    try:
        attempt = Attempt.start(quiz=previous.quiz, user=request.user, retry_of=previous)
    except AttemptError as exc:
        return _summary_page(request, previous, status=400, error=f"Cannot retry: {exc}.")
    return redirect("edu:attempt-item", attempt.pk, 0)


def _submit_item(request: HttpRequest, attempt: Attempt, item: QuizItem) -> tuple[int, list[str]]:
    """Save the questions of the item the trainee answered in the posted form (those left
    empty wait); returns how many were saved and the problems with the others."""
    n_images = len(keys.case_images(item))
    saved, problems = 0, []
    for question in item.questions.all():
        response = response_from_post(question, request.POST, n_images)
        if response is None:
            continue
        try:
            answering.submit(attempt, question, response)
        except (AttemptError, ResponseError) as exc:
            problems.append(f"{question.prompt}: {exc}")
        else:
            saved += 1
    if not saved and not problems:
        problems.append("Nothing was saved: answer at least one question.")
    return saved, problems


def _decorate(question: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """What the item template shows of one question, from the trainee's view of it."""
    response = question.get("response") or {}
    feedback = question.get("feedback") or {}
    q = dict(question)
    if q["kind"] == "single_best":
        correct = feedback.get("correct_option")
        notes = feedback.get("option_feedback") or [""] * len(q["options"])
        q["option_rows"] = [
            {
                "index": i,
                "text": text,
                "chosen": response.get("option") == i,
                "correct": i == correct,
                "feedback": notes[i],
            }
            for i, text in enumerate(q["options"])
        ]
    elif q["kind"] == "staging":
        order = response.get("order") or []
        q["staging_rows"] = [
            {
                "index": d,
                "label": label,
                "choices": range(1, len(labels) + 1),
                "given": order.index(d) + 1 if d in order else None,
            }
            for d, label in enumerate(labels)
        ]
        q["true_order_labels"] = [labels[d] for d in feedback.get("true_order", [])]
    elif q["kind"] == "localisation" and isinstance(response.get("image"), int):
        q["mark_label"] = labels[response["image"]]
    elif q["kind"] == "which_abnormal":
        q["choice_rows"] = [
            {"value": d, "label": label, "chosen": response.get("image") == d}
            for d, label in enumerate(labels)
        ]
        if feedback.get("abnormal_image") is not None:
            q["abnormal_label"] = labels[feedback["abnormal_image"]]
    elif q["kind"] == "change":
        q["choice_rows"] = [
            {"value": change, "label": change, "chosen": response.get("change") == change}
            for change in CHANGES
        ]
    elif q["kind"] == "is_normal":
        q["choice_rows"] = [
            {"value": value, "label": label, "chosen": response.get("normal") is truth}
            for value, label, truth in (("yes", "Normal", True), ("no", "Abnormal", False))
        ]
    return q


def _answer_overlays(view: dict[str, Any]) -> list[dict[str, Any]]:
    """What the viewer draws once a localisation answer is revealed: the lesion's outline on
    each image, and the trainee's mark on the image they clicked (static/js/edu-quiz.js)."""
    overlays = []
    for question in view["questions"]:
        outlines = (question.get("feedback") or {}).get("outlines")
        if question["kind"] != "localisation" or outlines is None:
            continue
        mark = question["response"]
        for index in range(len(view["images"])):
            shapes = [outlines[index]] if outlines[index] else []
            if mark.get("image") == index:
                shapes.append(
                    {
                        "type": "point",
                        "x": mark["x"],
                        "y": mark["y"],
                        "label": "your mark",
                        "color": "#4aa3ff",
                    }
                )
            if shapes:  # on every contrast of the study: they are aligned
                overlays.append({"study": index, "shapes": shapes})
    return overlays


@login_required
def attempt_item(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    attempt = _own_attempt(request, pk)
    try:
        item = attempt.item_at(position)
    except AttemptError as exc:
        raise Http404(str(exc)) from exc
    error, saved = None, request.GET.get("saved", "")
    if request.method == "POST":
        count, problems = _submit_item(request, attempt, item)
        if not problems:
            url = reverse("edu:attempt-item", args=[attempt.pk, position])
            return redirect(f"{url}?saved={count}")
        error = " ".join(problems)
        saved = str(count) if count else ""
    attempt.mark_shown(item)
    answers = {a.question_id: a for a in attempt.answers.filter(question__item=item)}
    view = item_view(attempt, item, answers)
    view["questions"] = [_decorate(q, view["labels"]) for q in view["questions"]]
    context = {
        "attempt": attempt,
        "item": view,
        "position": position,
        "count": len(attempt.item_ids),
        "error": error,
        "saved": int(saved) if saved.isdigit() else 0,
        "locked": view["answered"] and not attempt.may_change_answers(),
        "viewer_data": {
            **shown.viewer_studies(view["images"], view["contrasts"], view["labels"]),
            **({"layout": {"timepoints": 2}} if item.layout in SIDE_BY_SIDE else {}),
            "overlays": _answer_overlays(view),
        },
        "score": attempt.score() if not attempt.feedback_at_end or attempt.is_finished else None,
        "seconds_left": attempt.seconds_left(),
    }
    return render(request, "edu/attempt_item.html", context, status=400 if error else 200)


@require_POST
@login_required
def attempt_finish(request: HttpRequest, pk: int) -> HttpResponse:
    attempt = _own_attempt(request, pk)
    attempt.finish()
    return redirect("edu:attempt-summary", attempt.pk)


def _summary_page(
    request: HttpRequest, attempt: Attempt, *, status: int = 200, error: str = ""
) -> HttpResponse:
    context = {"attempt": attempt, "view": attempt_view(attempt), "error": error}
    return render(request, "edu/attempt_summary.html", context, status=status)


@login_required
def attempt_summary(request: HttpRequest, pk: int) -> HttpResponse:
    return _summary_page(request, _own_attempt(request, pk))


@require_GET
@login_required
def attempt_image(
    request: HttpRequest, pk: int, item: int, index: int, contrast: int = 0
) -> HttpResponse:
    """One image of an item (or, with ``contrast``, another contrast of its study: 0 is the
    image itself), blinded (``cases.imaging.blinding.quiz_copy``), for the attempt's own
    trainee."""
    attempt = _own_attempt(request, pk)
    if item not in attempt.item_ids:
        raise Http404("no such item in this attempt")
    quiz_item = get_object_or_404(QuizItem, pk=item)
    if (
        not SyntheticPatient.objects.not_hidden_from(request.user)
        .filter(pk=quiz_item.case_id)
        .exists()
    ):
        raise Http404("no such image")  # e.g. a source of a Turing study the user rates
    images = keys.shown_images(attempt, quiz_item)
    return shown.blinded_image(
        images, index, contrast, key=f"{attempt.pk}:{item}", seed=attempt.seed
    )


# --- progress ---------------------------------------------------------------------------------


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    progress = results.trainee_progress(request.user)
    percents = [s["percent"] or 0 for _, s in progress["attempts"]]
    charts = {
        "over_time": plots.line_chart(percents),
        "by_finding": _percent_chart(progress["by_finding"]),
        "by_kind": _percent_chart(progress["by_kind"]),
    }
    return render(request, "edu/dashboard.html", {**progress, "charts": charts})


def _percent_chart(shares: dict[str, float]) -> dict[str, Any]:
    return plots.hbar_chart(list(shares), [100 * v for v in shares.values()], top=100)
