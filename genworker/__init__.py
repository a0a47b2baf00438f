"""Gantry's generation engine: cohorts, networks, training, sampling, metrics, DICOM.

Pure Python and PyTorch: it imports nothing from Django, Celery or Gantry's apps (a test
holds it). The ``cases`` app runs it in Celery workers (``cases.generation``) and stores
what it makes.
"""
