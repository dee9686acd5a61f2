"""A validated batch: its readings column-wise, in body order, for the checks, the counter epochs and
the binary COPY to the database (``copybin.py``)."""

import itertools
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from p1_contracts.models import EdgeState, Meter, Sample, SampleBatch
from p1_ingest.fields import FIELD_NAMES

Value = float | int | datetime | str | None


@dataclass
class ColumnBatch:
    """Readings of one device in body order."""

    device_id: str
    meter: Meter | None
    columns: dict[str, list[Value]]  # every name of FIELD_NAMES, each as long as ``ts``
    edge: EdgeState | None = None  # the sending edge's report of itself, if it sent one

    @property
    def ts(self) -> list[datetime]:
        return self.columns["ts"]  # type: ignore[return-value]  # ts is never None once validated

    def __len__(self) -> int:
        return len(self.columns["ts"])

    @cached_property
    def order(self) -> list[int] | None:
        """Indexes of the readings in ts order, each ts once (its first occurrence in the body);
        None when the body is in strictly increasing ts order already (the usual case: one pass)."""
        ts = self.ts
        if all(a < b for a, b in itertools.pairwise(ts)):
            return None
        by_time = sorted(range(len(ts)), key=ts.__getitem__)  # stable: the first of equal ts first
        keep = by_time[:1]
        for i in by_time[1:]:
            if ts[i] != ts[keep[-1]]:
                keep.append(i)
        return keep

    @property
    def repeated(self) -> int:
        """Readings whose ts occurs earlier in the same body."""
        order = self.order
        return 0 if order is None else len(self) - len(order)

    def in_order(self, name: str) -> list[Value]:
        """A column in ts order, repeated ts left out."""
        col = self.columns[name]
        order = self.order
        return col if order is None else [col[i] for i in order]

    @property
    def newest_index(self) -> int:
        order = self.order
        return len(self) - 1 if order is None else order[-1]

    def row(self, i: int) -> Sample:
        """Reading ``i`` as a contract model (not revalidated: the batch is valid)."""
        values: dict[str, Any] = {name: col[i] for name, col in self.columns.items()}
        return Sample.model_construct(**values)


def model_columns(batch: SampleBatch) -> dict[str, list[Value]]:
    """The readings of a batch validated by the contract model, column-wise, in body order."""
    return {name: [getattr(s, name) for s in batch.samples] for name in FIELD_NAMES}
