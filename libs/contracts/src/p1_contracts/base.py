"""The base class of every generated contract model.

Strict on purpose: pydantic's lax mode would take ``false`` for a float or ``0`` for a date-time, which
the contract does not allow. JSON input must be parsed with ``Model.model_validate_json`` (strict mode
accepts RFC 3339 strings for date-times only from JSON). NaN and infinity are never valid readings.
"""

from pydantic import BaseModel, ConfigDict


class ContractModel(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")
