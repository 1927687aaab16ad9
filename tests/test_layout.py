"""The shared library is importable exactly as Lambda imports it: from the layer's package folder."""

from pathlib import Path

import multus_ipam

ROOT = Path(__file__).resolve().parents[1]


def test_shared_library_is_imported_from_the_layer_folder() -> None:
    assert Path(multus_ipam.__file__).resolve().parent == ROOT / "layers" / "multus_ipam" / "multus_ipam"
