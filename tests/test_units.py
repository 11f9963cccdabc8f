import pytest

from sxtseg.errors import VoxelSizeError
from sxtseg.units import convert_length, normalize_unit, unit_family


@pytest.mark.parametrize(
    "name, expected",
    [("nanometer", "nm"), ("µm", "um"), ("μm", "um"), ("micron", "um"), ("millimetre", "mm"), ("NM", "nm")],
)
def test_normalize_unit(name, expected):
    assert normalize_unit(name) == expected


@pytest.mark.parametrize("bad", ["parsec", "", "pixel", "angstrom"])
def test_normalize_unit_refuses_unknown_or_scaled(bad):
    with pytest.raises(VoxelSizeError):
        normalize_unit(bad)


def test_convert_length():
    assert convert_length(12.0, "angstrom", "nm") == pytest.approx(1.2)
    assert convert_length(0.03, "micrometer", "nm") == pytest.approx(30.0)
    assert convert_length(2.5, "cm", "mm") == pytest.approx(25.0)
    assert unit_family("angstrom") == "nm" and unit_family("meter") == "mm"
