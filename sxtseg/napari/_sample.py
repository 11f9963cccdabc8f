"""napari sample data: the SARS-CoV-2-infected cell phantom (image, classes, instances), generated offline.

A 64x128x128 cell at 30 nm (a nucleus, mitochondria, lipid droplets and a
DMV cluster near the nucleus), made by :func:`sxtseg.make_infected_cell` in
about a second; nothing is downloaded.
"""

from __future__ import annotations

__all__ = ["infected_cell", "SAMPLE_SHAPE"]

#: Shape (z, y, x voxels) of the sample cell.  The phantom fits the whole cell into the field, so
#: a field 32 voxels deep drew a cell 1 um thick with a flattened nucleus, which the shipped default
#: model, trained on cells about 2.0-3.2 um thick, missed (nucleus Dice 0.12; 0.94-0.96 with 64 slices:
#: docs/models.md, model card).
SAMPLE_SHAPE = (64, 128, 128)


def infected_cell(seed: int = 0) -> list[tuple]:
    """Layer data tuples of a small phantom cell: the image (LAC), its classes and its instances.

    Examples
    --------
    >>> [(kwargs["name"], kind) for _, kwargs, kind in infected_cell()]
    [('infected cell (phantom)', 'image'), ('classes', 'labels'), ('instances', 'labels')]
    """
    from sxtseg import make_infected_cell

    from ._reader import image_layer, labels_layer

    image, classes, instances, objects = make_infected_cell(SAMPLE_SHAPE, voxel_size_nm=30.0, seed=seed)
    image, classes, instances = image.compute(), classes.compute(), instances.compute()
    layers = [image_layer(image, name="infected cell (phantom)"), labels_layer(classes, name="classes")]
    table = objects.rename(columns={"instance_id": "label"}) if "instance_id" in objects else None
    layer = labels_layer(instances, name="instances", features=table)
    layer[1].pop("colormap", None)  # napari's random colours tell neighbouring instances apart
    layer[1].update(opacity=0.5, visible=False)  # shown on demand: the classes layer is the overview
    layers.append(layer)
    return layers
