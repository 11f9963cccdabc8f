"""The class codes of an SXT segmentation: one small integer per compartment.

Every class label volume in sxtseg (the phantom's ground truth, a model's
prediction, a user's annotation) stores one of these codes per voxel, as
``uint8``.  :data:`CLASS_NAMES` gives the lowercase name used in tables and
file metadata, :data:`CLASS_COLORS` the RGBA colour used for OME-Zarr label
metadata and napari layers.

Codes 0-6 are the compartments the shipped models predict; 7 (other
vesicles, decoys for a DMV detector) and 8 (gold fiducials) are drawn by the
phantom only when asked for.  A model's own classes are those in its
checkpoint metadata, not ``len(SXTClass)``.

Examples
--------
>>> from sxtseg.classes import CLASS_COLORS, CLASS_NAMES, SXTClass
>>> int(SXTClass.DMV), SXTClass.DMV.label
(6, 'dmv')
>>> SXTClass(5).name
'LIPID_DROPLET'
>>> CLASS_NAMES[4]
'mitochondrion'
>>> CLASS_COLORS[0]
(0, 0, 0, 0)
>>> SXTClass.from_label("lipid_droplet") is SXTClass.LIPID_DROPLET
True
"""

from __future__ import annotations

import enum

__all__ = ["SXTClass", "CLASS_NAMES", "CLASS_COLORS", "label_metadata"]


class SXTClass(enum.IntEnum):
    """Class code of a voxel in an SXT class label volume (stored as ``uint8``).

    Each member carries a one-line description as its docstring
    (``SXTClass.DMV.__doc__``) and a lowercase :attr:`label`.
    """

    # Each member is written as ``NAME = code, "description"``; __new__ below
    # stores the code as the member's value and the text as its docstring.
    def __new__(cls, value: int, description: str) -> "SXTClass":
        member = int.__new__(cls, value)
        member._value_ = value
        member.__doc__ = description
        return member

    BACKGROUND = 0, "Vitreous ice (or empty space) around the cell: everything outside it."
    CYTOPLASM = 1, "Cytoplasm: the cell body that no other class claims."
    NUCLEUS = 2, "Nucleus: nucleoplasm and chromatin inside the nuclear envelope, nucleoli excluded."
    NUCLEOLUS = 3, "Nucleolus: dense body inside the nucleus (always surrounded by NUCLEUS)."
    MITOCHONDRION = 4, "Mitochondrion: elongated tubular organelle, denser than cytoplasm."
    LIPID_DROPLET = 5, "Lipid droplet: round, the densest (most absorbing) compartment of the cell."
    DMV = 6, (
        "Double-membrane vesicle: the 200-400 nm vesicles (outer diameter) of the "
        "coronavirus replication organelle, whole body (both membranes and lumen)."
    )
    OTHER_VESICLE = 7, (
        "Other vesicles that are not DMVs: lysosomes and endosomes (dense, uniform, 200-800 nm), "
        "multivesicular bodies (a vesicle holding small vesicles), low-LAC vacuoles."
    )
    FIDUCIAL = 8, "Gold fiducial bead (100-250 nm), extremely absorbing; may sit in the ice or on the cell."

    @property
    def label(self) -> str:
        """Lowercase snake-case name used in tables and file metadata, e.g. ``"lipid_droplet"``."""
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> "SXTClass":
        """The member with this lowercase name (``"dmv"``) or upper-case name (``"DMV"``).

        Raises
        ------
        ValueError
            If no class has this name.
        """
        try:
            return cls[label.upper()]
        except KeyError:
            known = ", ".join(c.label for c in cls)
            raise ValueError(f"unknown SXT class {label!r}; known classes: {known}") from None


#: Lowercase name of each class code, e.g. ``CLASS_NAMES[5] == "lipid_droplet"``.
CLASS_NAMES: dict[int, str] = {int(c): c.label for c in SXTClass}

#: RGBA colour (0-255) of each class code; background is fully transparent, and the large
#: compartments are translucent (cytoplasm most), so that the grey values show through them in
#: napari and every OME-Zarr viewer; organelles are nearly opaque.
CLASS_COLORS: dict[int, tuple[int, int, int, int]] = {
    int(SXTClass.BACKGROUND): (0, 0, 0, 0),
    int(SXTClass.CYTOPLASM): (200, 200, 200, 40),  # light grey, a faint veil
    int(SXTClass.NUCLEUS): (65, 105, 225, 90),  # royal blue
    int(SXTClass.NUCLEOLUS): (148, 0, 211, 140),  # violet
    int(SXTClass.MITOCHONDRION): (220, 50, 47, 210),  # red
    int(SXTClass.LIPID_DROPLET): (255, 200, 0, 210),  # yellow
    int(SXTClass.DMV): (0, 190, 100, 230),  # green
    int(SXTClass.OTHER_VESICLE): (0, 170, 220, 210),  # cyan
    int(SXTClass.FIDUCIAL): (255, 105, 180, 230),  # pink
}


def label_metadata(codes=None) -> dict[str, dict[str, object]]:
    """``label_names`` and ``label_colors`` metadata of a class volume (what save_volume and napari show).

    Parameters
    ----------
    codes : iterable of int, optional
        The class codes present (a model's classes); default every class.
        A code sxtseg does not know gets its number as name and a grey colour.

    Examples
    --------
    >>> label_metadata([0, 6])["label_names"]
    {'0': 'background', '6': 'dmv'}
    """
    codes = list(CLASS_NAMES) if codes is None else [int(c) for c in codes]
    return {"label_names": {str(c): CLASS_NAMES.get(c, str(c)) for c in codes},
            "label_colors": {str(c): list(CLASS_COLORS.get(c, (128, 128, 128, 200))) for c in codes}}
