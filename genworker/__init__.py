"""Gantry's generation engine: cohorts, networks, training, sampling, metrics, DICOM.

Pure Python and PyTorch, importable without Django. Only ``genworker.tasks``
talks to Celery and the Django apps.
"""
