"""DICOMweb (PS3.18) service: QIDO-RS search, WADO-RS retrieval, STOW-RS storage.

One archive is presented under ``/dicomweb/``: the synthetic cases the user may see and, for
educators and experts, the reference pools. ``/dicomweb/pools/<id>/`` is the same service
scoped to one pool, and is where STOW-RS stores.
"""
