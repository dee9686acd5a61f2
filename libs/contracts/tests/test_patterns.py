"""The device-id pattern is the contract's, read from the generated model, and checked whole: a trailing
newline (which ``re.match`` with ``$`` lets through) is refused by every way the project checks it."""

import re
from pathlib import Path
from typing import Annotated

import msgspec
import pytest
import yaml
from pydantic import BaseModel, Field, ValidationError

from p1_contracts.patterns import DEVICE_ID, DEVICE_ID_PATTERN, DEVICE_ID_SEARCH, field_pattern, is_device_id

SPEC = Path(__file__).resolve().parents[3] / "openapi.yaml"
GOOD = ["a", "3c39e7aabbcc", "A.b_c-9", "x" * 64]
BAD = ["", "dev\n", "\ndev", "-dev", ".dev", "dev ice", "dév", "x" * 65, "dev/1", "dev\x00"]


def test_the_pattern_is_the_one_openapi_yaml_writes() -> None:
    schemas = yaml.safe_load(SPEC.read_text())["components"]["schemas"]
    assert schemas["DeviceIdString"]["pattern"] == DEVICE_ID_PATTERN


def test_a_field_without_a_pattern_is_an_error() -> None:
    class Plain(BaseModel):
        name: str

    with pytest.raises(LookupError):
        field_pattern(Plain, "name")


@pytest.mark.parametrize("value", GOOD)
def test_device_ids_the_contract_accepts(value: str) -> None:
    assert is_device_id(value)
    assert DEVICE_ID.fullmatch(value)
    assert re.search(DEVICE_ID_SEARCH, value)


@pytest.mark.parametrize("value", BAD)
def test_device_ids_the_contract_refuses(value: str) -> None:
    assert not is_device_id(value)
    assert re.search(DEVICE_ID_SEARCH, value) is None


def test_the_search_form_holds_for_msgspec() -> None:
    """The ingest fast parser's engine searches: the anchored form must refuse what fullmatch refuses."""
    checked = msgspec.json.Decoder(Annotated[str, msgspec.Meta(pattern=DEVICE_ID_SEARCH)])
    assert checked.decode(b'"dev"') == "dev"
    with pytest.raises(msgspec.ValidationError):
        checked.decode(b'"dev\\n"')


def test_the_spec_form_holds_for_pydantic() -> None:
    """What the edge's DEVICE_ID setting and FastAPI's path parameter use: pydantic's ``pattern=``."""

    class Setting(BaseModel):
        device_id: str = Field(pattern=DEVICE_ID_PATTERN)

    assert Setting(device_id="dev").device_id == "dev"
    for value in ("dev\n", "-dev"):
        with pytest.raises(ValidationError):
            Setting(device_id=value)
