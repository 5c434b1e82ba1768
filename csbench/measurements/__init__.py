"""Registry of measurement models (each a batched operator plus a link and noise)."""
from __future__ import annotations

from csbench.errors import CsbenchError
from csbench.measurements.base import DenseOperator, LinearOperator, MeasurementModel, dottest
from csbench.measurements.gaussian import Gaussian
from csbench.measurements.inpaint import Inpaint, InpaintBlock
from csbench.measurements.nonlinear import OneBit, Phaseless
from csbench.measurements.rademacher import Rademacher
from csbench.measurements.subsampled_dct import SubsampledDCT
from csbench.measurements.superres import SuperResolution

MEASUREMENTS: dict[str, type[MeasurementModel]] = {
    cls.name: cls
    for cls in (Gaussian, Rademacher, SubsampledDCT, Inpaint, InpaintBlock, SuperResolution,
                OneBit, Phaseless)
}


def get_measurement(name: str) -> MeasurementModel:
    if name not in MEASUREMENTS:
        raise CsbenchError(f"unknown measurement {name!r}; known: {', '.join(sorted(MEASUREMENTS))}")
    return MEASUREMENTS[name]()


__all__ = ["MEASUREMENTS", "get_measurement", "LinearOperator", "DenseOperator", "MeasurementModel", "dottest"]
