"""Published reference values the report compares with and quotes (data only: no framework
imports, so that the renderer can quote them without torch)."""

from __future__ import annotations

#: SU(3) Wilson-action plaquette ⟨Re tr U_P⟩/3: β → (value, error or None, source)
PUBLISHED_SU3_PLAQUETTE = {
    6.0: (
        0.59368,
        None,
        "large volume (16⁴–32⁴), Wilson action; e.g. G. Boyd et al., Nucl. Phys. B469 (1996) 419, "
        "hep-lat/9602007 (zero-temperature plaquettes), quoted to 5 digits",
    ),
}
