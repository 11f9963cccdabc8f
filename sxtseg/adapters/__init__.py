"""Clinical images into the sxtseg pipeline: chest CT (:mod:`.ct`) and chest X-ray (:mod:`.cxr`).

Both need the ``ct`` extra (``pip install "sxtseg[ct]"``: pydicom, nibabel and
the JPEG / JPEG 2000 decoders of compressed DICOM).  Nothing here is imported
by ``import sxtseg``; import the module you need::

    from sxtseg.adapters import ct
    scan = ct.open_ct("series_folder/")

Volumes from these adapters have their voxel size in millimetres (unit ``"mm"``),
as DICOM gives it.
"""
