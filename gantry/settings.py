"""Gantry settings. Every value comes from the environment (see README, "Configuration").

The defaults make the embedded demo work with no services: SQLite, files under
``var/``, and a Celery broker on the local filesystem.
"""

from importlib.metadata import version
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
GANTRY_VERSION = version("gantry")
env = environ.Env()

VAR_DIR = Path(env.str("GANTRY_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
_DEV_SECRET = "insecure-development-key-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("Set SECRET_KEY (or DEBUG=1 for a development key).")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS. Production defaults: redirect to HTTPS, cookies sent over HTTPS only, HSTS for a
# year. The demo (DEBUG=1, bound to 127.0.0.1) speaks plain HTTP. Behind a proxy that ends
# TLS, set SECURE_PROXY_SSL_HEADER_NAME (e.g. HTTP_X_FORWARDED_PROTO) to the header it sets.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
if env.str("SECURE_PROXY_SSL_HEADER_NAME", default=""):
    SECURE_PROXY_SSL_HEADER = (env.str("SECURE_PROXY_SSL_HEADER_NAME"), "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "django_celery_results",
    "cases",
    "edu",
    "turing",
    "lti_tool",
    "lti",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "gantry.middleware.ContentSecurityPolicyMiddleware",
    "gantry.middleware.MethodNotAllowedPageMiddleware",
]

ROOT_URLCONF = "gantry.urls"
WSGI_APPLICATION = "gantry.wsgi.application"
ASGI_APPLICATION = "gantry.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "gantry.permissions.role_context",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'gantry.sqlite3'}"),
}
# Keep connections between requests (opening one cost more than a DICOMweb retrieval's
# queries) unless DATABASE_URL says otherwise (?conn_max_age=0); checked before reuse.
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a Celery worker process started by the tests sees the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-gantry.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Take the write lock when a transaction begins: a worker writes cases from several
    # threads, and a deferred transaction that reads first cannot wait for the lock.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    # Write-ahead log: readers (the web process, other workers' claims) do not wait for a
    # writer's commit, and a commit appends to the log instead of rewriting a journal; with
    # it, NORMAL syncs at checkpoints rather than at every commit (a power cut may lose the
    # last commits, never corrupt the file).
    DATABASES["default"]["OPTIONS"]["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # LTI launches: OIDC state and nonces, and launch data between a launch and the deep-
    # linking answer. A launch's requests may reach different web processes, so the table
    # lives in the database (created by the lti app's migration).
    "lti": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "gantry_lti_cache",
        "TIMEOUT": 3600,
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Role permissions from the database (groups), object rules from django-rules (see
# gantry.permissions).
AUTHENTICATION_BACKENDS = [
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"  # never served directly: DICOM goes through the authenticated WADO endpoint
# Case files, checkpoints and imported DICOM go through Django's storage API: a local folder
# (MEDIA_ROOT), or an S3-compatible object store shared by the web and workers of several
# hosts when GANTRY_S3_BUCKET is set (django-storages; see README, "Production").
GANTRY_S3_BUCKET = env.str("GANTRY_S3_BUCKET", default="")
STORAGES = {
    "default": (
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": GANTRY_S3_BUCKET,
                "endpoint_url": env.str("GANTRY_S3_ENDPOINT_URL", default="") or None,
                "region_name": env.str("GANTRY_S3_REGION", default="") or None,
                "access_key": env.str("GANTRY_S3_ACCESS_KEY_ID", default="") or None,
                "secret_key": env.str("GANTRY_S3_SECRET_ACCESS_KEY", default="") or None,
                "location": env.str("GANTRY_S3_PREFIX", default=""),
                "file_overwrite": False,  # as on a local disk: a taken name gets a new one
                "default_acl": None,
                "querystring_auth": True,  # never served directly anyway (see MEDIA_URL)
            },
        }
        if GANTRY_S3_BUCKET
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Content-Security-Policy. The DICOM loader decodes in web workers: its own worker script is
# same-origin, and workers or images created from blob: URLs must be allowed too.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; worker-src 'self' blob:; "
    "img-src 'self' data: blob:; style-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "gantry.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "gantry.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Gantry API",
    "VERSION": GANTRY_VERSION,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
}

# Celery. The default broker keeps messages in files under var/broker, so the demo needs
# no server; production and CI point CELERY_BROKER_URL at Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # kombu polls the folder once a second by default: a second of each job's wait
        "polling_interval": 0.1,
    }
else:
    # An unacknowledged message (its worker died) goes back to the queue after this long;
    # Redis has no other way to notice. Longer than the longest chunk, so a live worker's
    # chunk is redelivered rarely (and then only waits for the lease; see GenerationChunk).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("GANTRY_BROKER_VISIBILITY_TIMEOUT", default=900),
        "unacked_restore_interval": env.int("GANTRY_BROKER_RESTORE_INTERVAL", default=10),
        "unacked_restore_throttle": 1,
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# The key de-identification derives pseudonyms, UIDs and date shifts from (HMAC-SHA256). Keep
# it secret and never change it: the same patient imported again then gets the same
# pseudonym. Required outside the demo to import real images (`check --deploy` says so).
GANTRY_PSEUDONYM_KEY = env.str(
    "GANTRY_PSEUDONYM_KEY", default="insecure-demo-pseudonym-key" if DEBUG else ""
)
# The most pixel data an imported DICOM file may hold once decoded (rows x columns x frames x
# samples x bits, checked from its header before decoding), and a deflated file once inflated.
GANTRY_MAX_DECODED_BYTES = env.int("GANTRY_MAX_DECODED_BYTES", default=256 * 2**20)
# Where a worker keeps local copies of generator checkpoints (keyed by sha256).
GANTRY_WORKER_CACHE_DIR = Path(env.str("GANTRY_WORKER_CACHE_DIR", default=str(VAR_DIR / "cache")))
# The DICOM node (PACS) cases are sent to by C-STORE; none when GANTRY_PACS_HOST is empty.
GANTRY_PACS_AE = env.str("GANTRY_PACS_AE", default="PACS")
GANTRY_PACS_HOST = env.str("GANTRY_PACS_HOST", default="")
GANTRY_PACS_PORT = env.int("GANTRY_PACS_PORT", default=104)
GANTRY_PACS_CALLING_AE = env.str("GANTRY_PACS_CALLING_AE", default="GANTRY")
# Origins (https://viewer.example.org, or *) whose pages may call DICOMweb with a token (CORS
# for /dicomweb/ only; see docs/dicomweb.md). None by default: same-origin viewers only.
GANTRY_DICOMWEB_CORS_ORIGINS = env.list("GANTRY_DICOMWEB_CORS_ORIGINS", default=[])
# WADO-RS keeps each user's compiled lookup SQL for a few seconds and loads a user's
# permissions in one query (bench/wado_throughput.py --compare-caches measures both).
GANTRY_DICOMWEB_CACHES = env.bool("GANTRY_DICOMWEB_CACHES", default=True)
# django-cors-headers, on the DICOMweb service only. Credentials (cookies) never cross
# origins: a viewer elsewhere sends its user's token in the Authorization header. A
# preflight is answered before authentication (browsers send it without the token).
CORS_URLS_REGEX = r"^/dicomweb/(?!$).*$"  # the service, not its token page
CORS_ALLOW_ALL_ORIGINS = "*" in GANTRY_DICOMWEB_CORS_ORIGINS
CORS_ALLOWED_ORIGINS = [o.rstrip("/") for o in GANTRY_DICOMWEB_CORS_ORIGINS if o != "*"]
CORS_ALLOW_METHODS = ("GET", "HEAD", "POST", "OPTIONS")
CORS_EXPOSE_HEADERS = (
    "Content-Length",
    "Content-Location",
    "Location",
    "Warning",
    "WWW-Authenticate",
)
CORS_PREFLIGHT_MAX_AGE = 3600
# "cuda", "cpu", or "auto" (CUDA when present).
GANTRY_DEVICE = env.str("GANTRY_DEVICE", default="auto")
# CPU threads torch may use in a worker (0: torch's default, one per core). On a busy
# machine, 1 avoids oversubscription that slows small models by an order of magnitude.
GANTRY_TORCH_THREADS = env.int("GANTRY_TORCH_THREADS", default=0)
# Scale-out: a job runs as chunks of this many cases, one gpu-queue task each; a worker holds
# a chunk under a lease it renews after every generator batch, and a chunk whose worker died
# is taken over once the lease runs out. The lease must outlast the slowest batch.
GANTRY_CHUNK_CASES = env.int("GANTRY_CHUNK_CASES", default=8)
GANTRY_CHUNK_LEASE_S = env.int("GANTRY_CHUNK_LEASE_S", default=300)
# Images per generator call (0: 256 on a GPU, 8 on a CPU). A chunk with room to spare also
# takes queued chunks of other jobs on the same generator into its batches; a batch that
# runs out of GPU memory is retried at half the size.
GANTRY_BATCH_IMAGES = env.int("GANTRY_BATCH_IMAGES", default=0)
# Threads per worker that write cases (DICOM, files, rows) while the next batch samples;
# 0 writes them in the sampling thread, one after another.
GANTRY_WRITER_THREADS = env.int("GANTRY_WRITER_THREADS", default=2)
# Compile each generator's synthesis network (torch.compile; CUDA graphs on a GPU) when a
# worker loads it (genworker.compiled). On the CPU 0.7-2x eager's images/s by model, after a
# compile of up to a minute (seconds once cached); off until measured on a GPU.
GANTRY_COMPILE_GENERATOR = env.bool("GANTRY_COMPILE_GENERATOR", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"highdicom": {"level": "WARNING"}},
}
