"""The models of the cases app, a module per concept.

Generators, versioned case templates, generation jobs and their chunks, the synthetic cases
they make (patients, studies, series, instances, lesion ground truth), reference pools of
real images, DICOMweb access tokens, and the background operations pages hand to the cpu
queue.

Migrations name ``validate_progression`` and ``new_job_seed`` by their path here.
"""

from cases.models.generators import (
    GeneratorFigure,
    GeneratorModel,
    GeneratorSample,
    TaughtDirection,
)
from cases.models.hiding import Hidden, register_hidden_filter
from cases.models.jobs import (
    GENERATE_TASK,
    GenerationChunk,
    GenerationJob,
    JobQuerySet,
    new_job_seed,
)
from cases.models.operations import CPU_QUEUE, AlreadyFinished, Operation
from cases.models.patients import (
    Instance,
    LesionGroundTruth,
    PatientQuerySet,
    Series,
    Study,
    SyntheticPatient,
    instances_visible_to,
    register_case_access,
)
from cases.models.reference import ReferenceImage, ReferencePool
from cases.models.templates import (
    PROGRESSION_METHODS,
    CaseTemplate,
    TemplateVersion,
    validate_progression,
)
from cases.models.tokens import AccessToken, token_digest

__all__ = [
    "CPU_QUEUE",
    "GENERATE_TASK",
    "PROGRESSION_METHODS",
    "AccessToken",
    "AlreadyFinished",
    "CaseTemplate",
    "GenerationChunk",
    "GenerationJob",
    "GeneratorFigure",
    "GeneratorModel",
    "GeneratorSample",
    "Hidden",
    "Instance",
    "JobQuerySet",
    "LesionGroundTruth",
    "Operation",
    "PatientQuerySet",
    "ReferenceImage",
    "ReferencePool",
    "Series",
    "Study",
    "SyntheticPatient",
    "TaughtDirection",
    "TemplateVersion",
    "instances_visible_to",
    "new_job_seed",
    "register_case_access",
    "register_hidden_filter",
    "token_digest",
    "validate_progression",
]
