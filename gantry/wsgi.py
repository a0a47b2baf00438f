"""WSGI entry point (gunicorn gantry.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gantry.settings")
application = get_wsgi_application()

from gantry.local import make_local_folders  # noqa: E402  (needs the settings)

make_local_folders()
