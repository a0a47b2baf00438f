"""Pages for reference pools: list and create pools, upload files or a zip (imported in the
background), see the images."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from cases.models import Operation, ReferencePool
from cases.reference.pool_import import IMPORT_TASK, launch_import


class PoolForm(forms.ModelForm):
    class Meta:
        model = ReferencePool
        fields = ("name", "description", "modality", "holds_synthetic")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data: object, initial: object = None) -> list:
        items = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in items]


class UploadForm(forms.Form):
    IMAGES, TEACHING_FILE = "images", "teaching_file"

    files = MultipleFileField(
        help_text="DICOM files or zip archives of them (use a zip for more than 100 files).",
    )
    kind = forms.ChoiceField(
        choices=[
            (IMAGES, "DICOM images"),
            (
                TEACHING_FILE,
                "a teaching file: the images its 'For Teaching' manifest selects, "
                "each with its key from the SR",
            ),
        ],
        initial=IMAGES,
        required=False,  # images, unless a teaching file is asked for
        widget=forms.RadioSelect,
        label="What the files are",
    )


@permission_required("cases.view_referencepool", raise_exception=True)
def pool_list(request: HttpRequest) -> HttpResponse:
    form = PoolForm(request.POST or None)
    if request.method == "POST":
        if not request.user.has_perm("cases.add_referenceimage"):
            raise PermissionDenied
        if form.is_valid():
            pool = form.save(commit=False)
            pool.created_by = request.user
            pool.save()
            return redirect("reference-pool", pk=pool.pk)
    pools = ReferencePool.objects.visible_to(request.user)
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request, "cases/reference_pool_list.html", {"pools": pools, "form": form}, status=status
    )


@permission_required("cases.view_referencepool", raise_exception=True)
def pool_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The pool's images and, for educators, the upload form; an upload is imported in the
    background and the page answers at once with the import's status page."""
    pool = get_object_or_404(ReferencePool.objects.visible_to(request.user), pk=pk)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if not request.user.has_perm("cases.add_referenceimage"):
            raise PermissionDenied
        if form.is_valid():
            operation = launch_import(
                pool,
                request.FILES.getlist("files"),
                teaching_file=form.cleaned_data["kind"] == UploadForm.TEACHING_FILE,
                user=request.user,
            )
            return redirect(operation)
    imports = Operation.objects.filter(task=IMPORT_TASK, params__pool=pool.pk)
    return render(
        request,
        "cases/reference_pool_detail.html",
        {
            "pool": pool,
            "images": pool.images.all(),
            "form": form,
            "imports": imports.filter(requested_by=request.user)[:5],
        },
        status=400 if form.errors else 200,
    )
