"""Nothing but the pixels tells real from synthetic, and nothing tells the truth early.

The classifier test gives scikit-learn everything a rater's browser receives for an image
except its pixel values — the DICOM header bytes, the URL, the file size, the response
headers, the reading page and the server's response times — and checks that
cross-validated accuracy is no better than the same classifiers reach on shuffled labels
(a permutation test: with some 900 mostly-noise features and 40 images, accuracy under
the null wanders well beyond a binomial interval, so a fixed range failed now and then
with nothing leaking). The rater reads and answers every image in turn, as a rater does, so
every reading page is a real one. A leak must also replicate: with two classifiers each at
p <= 1/200, one study in a hundred flags by chance (CI saw it), so a flagged study is
followed by a second, independent one (new seed: new cases, UIDs, tokens and reading
order), and only a classifier that flags both fails the test. A real leak flags every
study, as the control run on the unblinded source files shows.
"""

import re
import time

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, permutation_test_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from cases.models import ReferencePool
from tests.turing.factories import make_reference_images
from turing.models import StudyImage, new_seed

PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
N_IMAGES = 40
N_PERMUTATIONS = 199
LEAK_P = 1 / (N_PERMUTATIONS + 1)  # beats every shuffled labelling: 1 in 200 by chance
POSITION = re.compile(r"image \d+ of|Image \d+ of|/read/\d+/")  # a page's own position


def header_bytes(data: bytes) -> bytes:
    return data[: data.rindex(PIXEL_DATA_TAG)]


def fixed_length(values: bytes | str, length: int) -> list[float]:
    codes = list(values.encode() if isinstance(values, str) else values)[:length]
    return [float(c) for c in codes] + [0.0] * (length - len(codes))


def browser_view(client, study, image: StudyImage, position: int) -> list[float]:
    """Everything about one image that reaches the rater's browser, pixels excepted."""
    started = time.perf_counter()
    page = client.get(f"/turing/studies/{study.pk}/read/{position}/")
    page_time = time.perf_counter() - started
    assert page.status_code == 200, f"no reading page at position {position}"
    url = image.get_absolute_url()
    started = time.perf_counter()
    response = client.get(url)
    data = b"".join(response.streaming_content)
    file_time = time.perf_counter() - started
    html = POSITION.sub("#", page.content.decode().replace(image.token, "TOKEN"))
    headers = "|".join(f"{k}:{v}" for k, v in sorted(response.headers.items()))
    return [
        float(len(data)),
        float(response.headers["Content-Length"]),
        page_time,
        file_time,
        float(len(html)),
        *fixed_length(headers.replace(image.token, "TOKEN"), 200),
        *fixed_length(url, 40),
        *fixed_length(header_bytes(data), 700),
    ]


def source_view(image: StudyImage) -> list[float]:
    source = image.instance.file if image.instance_id else image.reference.file
    data = source.read()
    return [float(len(data)), *fixed_length(header_bytes(data), 1500)]


def leak_tests(features: np.ndarray, truth: np.ndarray) -> dict[str, tuple[float, float]]:
    """Per classifier: cross-validated accuracy, and the p-value of that accuracy against
    the classifier's accuracies on shuffled labels."""
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    models = {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "tree": DecisionTreeClassifier(random_state=0),
    }
    results = {}
    for name, model in models.items():
        accuracy, _, p_value = permutation_test_score(
            model,
            features,
            truth,
            cv=folds,
            n_permutations=N_PERMUTATIONS,
            random_state=0,
            n_jobs=2,
        )
        results[name] = (float(accuracy), float(p_value))
    return results


@pytest.fixture
def big_pool(educator):
    pool = ReferencePool.objects.create(name="held-out MR (large)", created_by=educator)
    make_reference_images(pool, N_IMAGES // 2 + 4)
    return pool


def browser_features(client, user, study) -> tuple[np.ndarray, np.ndarray, list[StudyImage]]:
    """One row per image in ``user``'s reading order, its truth, and the images."""
    rater = study.rater_set.get(user=user)
    client.post(f"/turing/studies/{study.pk}/start/", {"experience_years": ""})
    images = {image.pk: image for image in study.images.select_related("instance", "reference")}
    ordered = [images[pk] for pk in rater.order()]
    # Warm-up: the first requests of a process are slow, and position must not become a
    # feature (the reading order of one seed is the same in every run).
    browser_view(client, study, ordered[0], 1)
    assert client.post(f"/turing/studies/{study.pk}/read/1/", {}).status_code == 400
    rows = []
    for position, image in enumerate(ordered, start=1):
        rows.append(browser_view(client, study, image, position))
        answer = {"call": "real", "confidence": 3, "time_ms": 900}  # opens the next page
        client.post(f"/turing/studies/{study.pk}/read/{position}/", answer)
    return np.array(rows), np.array([image.is_synthetic for image in ordered]), ordered


def flagged(results: dict[str, tuple[float, float]]) -> set[str]:
    return {name for name, (_, p_value) in results.items() if p_value <= LEAK_P}


def test_a_classifier_sees_only_chance_in_what_the_browser_receives(
    make_study, big_pool, raters, login
):
    client = login(raters[0])
    # A fresh seed each run: the reading order is the randomisation the permutation test
    # rests on (a fixed order met the same slow drift of page times every run: as answers
    # accumulate, each page takes a little longer).
    seeds = [new_seed(), new_seed()]
    study = make_study(n_cases=7, pool=big_pool, n_images=N_IMAGES, seed=seeds[0])
    rows, truth, images = browser_features(client, raters[0], study)  # 21 synthetic candidates
    first = leak_tests(rows, truth)
    if flagged(first):
        again = make_study(n_cases=7, pool=big_pool, n_images=N_IMAGES, seed=seeds[1])
        second = leak_tests(*browser_features(client, raters[0], again)[:2])
        leaking = flagged(first) & flagged(second)
        assert not leaking, f"{leaking} tell studies {seeds} apart: {first}, {second}"

    control = leak_tests(np.array([source_view(image) for image in images]), truth)
    best = max(control.values())
    assert best[0] > 0.9, f"the classifiers miss an obvious leak: {control}"
    assert best[1] <= LEAK_P


def _all_text_before_close(client, study, rater) -> list[tuple[str, str]]:
    """(name, body) of every page and file this rater can fetch while the study is open."""
    texts = [("list", client.get("/turing/").content.decode())]
    texts.append(("start", client.get(f"/turing/studies/{study.pk}/start/").content.decode()))
    client.post(f"/turing/studies/{study.pk}/start/", {"experience_years": "4"})
    for position in range(1, study.images.count() + 1):
        page = client.get(f"/turing/studies/{study.pk}/read/{position}/")
        assert page.status_code == 200
        texts.append((f"read {position}", page.content.decode()))
        answer = client.post(
            f"/turing/studies/{study.pk}/read/{position}/",
            {"call": "real", "confidence": 3, "time_ms": 900},
            follow=True,
        )
        texts.append((f"after {position}", answer.content.decode()))
    return texts


def test_no_page_a_rater_gets_before_closing_depends_on_the_truth(make_study, raters, login):
    study = make_study()
    rater = study.rater_set.get(user=raters[0])
    client = login(raters[0])
    texts = _all_text_before_close(client, study, rater)
    secrets_ = set()
    for image in study.images.select_related("instance__series__study__patient", "reference"):
        if image.instance_id:
            patient = image.instance.series.study.patient
            secrets_ |= {
                image.instance.sop_instance_uid,
                patient.patient_id,
                str(image.instance.seed),
            }
            secrets_.add(f"/cases/{patient.pk}/")
        else:
            secrets_ |= {image.reference.sop_instance_uid, image.reference.source_name}
    for name, text in texts:
        for secret in secrets_:
            assert secret not in text, f"{name} reveals {secret}"
    order = rater.order()
    tokens = [StudyImage.objects.get(pk=pk).token for pk in order]
    pages = [
        POSITION.sub("#", text.replace(tokens[i], "TOKEN"))
        for i, (_, text) in enumerate(t for t in texts if t[0].startswith("read"))
    ]
    pages = [re.sub(r'(csrfmiddlewaretoken" value|data-csrf-token)="[^"]+"', "", p) for p in pages]
    assert len(set(pages)) == 1, "reading pages differ beyond token and position"


def test_results_and_study_details_are_closed_to_raters_while_open(make_study, raters, login):
    study = make_study()
    client = login(raters[0])
    for path in ("results/", "results.csv", "quality.csv", ""):
        assert client.get(f"/turing/studies/{study.pk}/{path}").status_code == 403, path


def test_results_stay_hidden_from_educators_too_until_closed(make_study, educator, login):
    study = make_study()
    client = login(educator)
    assert client.get(f"/turing/studies/{study.pk}/results/").status_code == 403
    study.close()
    assert client.get(f"/turing/studies/{study.pk}/results/").status_code == 200
