#!/usr/bin/env python
"""Django's command-line utility for Gantry."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gantry.settings")
    import django
    from django.core.management import execute_from_command_line

    django.setup()
    from gantry.local import make_local_folders

    make_local_folders()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
