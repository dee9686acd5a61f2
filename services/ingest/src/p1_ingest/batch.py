"""A validated batch held column-wise: what the parser produces and the store writes.

Column-wise because that is what both the database (unnest arrays / COPY) and the validation of a
whole column at once with C-level builtins want; a list of per-reading objects would be built only
to be taken apart again.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from p1_contracts.models import Meter, Sample, SampleBatch

from .fields import FIELD_NAMES

Value = float | int | datetime | None


@dataclass
class ColumnBatch:
    """Readings of one device, sorted by ``ts`` and without repeated ``ts`` (the first one is kept;
    the others are counted in ``repeated``)."""

    device_id: str
    meter: Meter | None
    columns: dict[str, list[Value]]  # every name of FIELD_NAMES, each as long as ``ts``
    repeated: int = 0

    @property
    def ts(self) -> list[datetime]:
        return self.columns["ts"]  # type: ignore[return-value]  # ts is never None once validated

    def __len__(self) -> int:
        return len(self.columns["ts"])

    def row(self, i: int) -> Sample:
        """Reading ``i`` as a contract model (not revalidated: the batch is valid)."""
        values: dict[str, Any] = {name: col[i] for name, col in self.columns.items()}
        return Sample.model_construct(**values)


def sorted_unique(device_id: str, meter: Meter | None, columns: dict[str, list[Value]]) -> ColumnBatch:
    """Puts the readings in ``ts`` order and drops repeated timestamps (first occurrence wins)."""
    ts: Sequence[datetime] = columns["ts"]  # type: ignore[assignment]
    n = len(ts)
    # The common case — an edge uploads its spool in order — costs one pass and no copy.
    if all(a < b for a, b in itertools.pairwise(ts)):
        return ColumnBatch(device_id, meter, columns, 0)
    order = sorted(range(n), key=ts.__getitem__)  # stable: the first of equal timestamps comes first
    keep = [order[0]] if n else []
    for i in order[1:]:
        if ts[i] != ts[keep[-1]]:
            keep.append(i)
    reordered = {name: [col[i] for i in keep] for name, col in columns.items()}
    return ColumnBatch(device_id, meter, reordered, n - len(keep))


def model_columns(batch: SampleBatch) -> dict[str, list[Value]]:
    """The readings of a batch validated by the contract model, column-wise, in body order."""
    return {name: [getattr(s, name) for s in batch.samples] for name in FIELD_NAMES}


def from_model(batch: SampleBatch) -> ColumnBatch:
    return sorted_unique(batch.device_id, batch.meter, model_columns(batch))
