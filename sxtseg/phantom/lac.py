"""Linear absorption coefficients (LAC, 1/µm) of every material the phantom draws.

The grey values of a cryo-SXT reconstruction are linear absorption
coefficients in the water window (~510-517 eV).  The values below lie inside
the published ranges for cryo-SXT of eukaryotic cells:

* vitreous ice ~0.109 /µm at 517 eV (Weiss et al. 2000, Ultramicroscopy
  84:185; Le Gros, McDermott & Larabell 2005, Curr. Opin. Struct. Biol.
  15:593);
* cytoplasm ~0.20-0.25, nucleus slightly above it, nucleolus and mitochondria
  ~0.30-0.40, lipid droplets the highest (~0.55-0.75) (Parkinson et al. 2008,
  J. Struct. Biol. 162:380, "Quantitative 3-D imaging of eukaryotic cells
  using soft X-ray tomography"; Uchida et al. 2009, PNAS 106:19375);
* DMVs in SARS-CoV-2-infected cells: dense membranes around a lumen slightly
  denser than cytoplasm (Loconte et al. 2021, Cell Rep. Methods 1:100117,
  "Using soft X-ray tomography for rapid whole-cell quantitative imaging of
  SARS-CoV-2-infected cells").

The decoy vesicles and the surroundings are representative values, not
measurements:

* lysosomes and late endosomes appear as dense, uniform vesicles in cryo-SXT
  of mammalian cells; 0.30-0.40 /µm is chosen to overlap the DMVs on purpose
  (they are decoys for a DMV detector);
* multivesicular bodies: a limiting membrane as dense as a DMV membrane
  around a lumen slightly denser than cytoplasm, holding small dense vesicles;
* vacuoles: mostly water, between ice and cytoplasm (~0.15 /µm);
* gold fiducials: the attenuation length of gold near 517 eV is of the order
  of 0.1 µm (Henke, Gullikson & Davis 1993, At. Data Nucl. Data Tables 54:181),
  so its LAC is of the order of 10 /µm, about 100 times that of ice;
* glass (a capillary wall): silicon absorbs strongly below the oxygen edge,
  a LAC of a few /µm; 2.0 is used.

Each paper reports a spread that depends on cell type, photon energy and
reconstruction.  Objects of one kind vary around these values (see
:mod:`sxtseg.phantom.scene` and :mod:`sxtseg.phantom.decoys`).

Examples
--------
>>> from sxtseg.phantom import LAC
>>> LAC["ice"] < LAC["cytoplasm"] < LAC["lipid_droplet"] < LAC["gold"]
True
"""

from __future__ import annotations

__all__ = ["LAC"]

#: Linear absorption coefficient (1/µm, water window ~510-517 eV) of each
#: material drawn by :func:`sxtseg.phantom.make_infected_cell`; sources in
#: :mod:`sxtseg.phantom.lac`.
LAC: dict[str, float] = {
    "ice": 0.109,
    "cytoplasm": 0.22,
    "nucleus": 0.25,
    "nucleolus": 0.36,
    "mitochondrion": 0.33,
    "lipid_droplet": 0.65,
    "dmv_membrane": 0.40,
    "dmv_lumen": 0.28,
    # decoys (class OTHER_VESICLE) and surroundings: representative values
    "lysosome": 0.35,  # each one drawn in 0.30-0.40
    "mvb_membrane": 0.38,
    "mvb_lumen": 0.25,
    "mvb_vesicle": 0.34,  # the small internal vesicles, membrane-dominated
    "vacuole": 0.15,  # each one drawn in 0.13-0.17
    "gold": 10.0,
    "glass": 2.0,
}
