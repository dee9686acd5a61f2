"""The contract itself: a valid OpenAPI 3.1 document, and generated models that match it."""

import difflib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate
from pydantic import ValidationError

import p1_contracts
from p1_contracts.models import Sample, SampleBatch

ROOT = Path(__file__).resolve().parents[3]
MODELS = ROOT / "libs/contracts/src/p1_contracts/models.py"


def test_openapi_yaml_is_a_valid_openapi_31_document() -> None:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    validate(spec)
    assert spec["openapi"].startswith("3.1")


def test_every_operation_has_an_id_a_tag_and_examples() -> None:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    ids = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            ids.append(op["operationId"])
            assert op.get("tags"), f"{method} {path} has no tag"
            body = op.get("requestBody", {}).get("content", {})
            for media in body.values():
                assert "example" in media, f"{method} {path}: request without example"
            for status, resp in op["responses"].items():
                if "$ref" in resp or status == "304":
                    continue
                for mtype, media in resp.get("content", {}).items():
                    assert "example" in media, f"{method} {path} {status} {mtype}: no example"
    assert len(ids) == len(set(ids))


def test_packaged_spec_is_the_repository_spec() -> None:
    assert p1_contracts.openapi_text() == (ROOT / "openapi.yaml").read_text(), (
        "libs/contracts carries a stale copy of openapi.yaml: run `make contracts`"
    )


def test_generated_models_are_current(tmp_path: Path) -> None:
    fresh = tmp_path / "models.py"
    codegen = Path(sys.executable).with_name("datamodel-codegen")
    subprocess.run([str(codegen), "--output", str(fresh)], cwd=ROOT, check=True, timeout=120)
    committed = MODELS.read_text().splitlines(keepends=True)
    regenerated = fresh.read_text().splitlines(keepends=True)
    diff = "".join(difflib.unified_diff(committed, regenerated, "committed", "from openapi.yaml"))
    assert not diff, f"libs/contracts is stale; run `make contracts`:\n{diff}"


VALID = b'{"ts":"2026-11-29T14:12:34+01:00","power_w":5,"import_kwh":1.5,"export_kwh":0}'


def test_a_reading_parses_from_json_and_ignores_unknown_fields() -> None:
    s = Sample.model_validate_json(VALID[:-1] + b',"from_a_newer_edge":1,"power_l2_w":null}')
    assert s.power_w == 5.0
    assert s.power_l2_w is None
    assert s.ts.utcoffset() is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (VALID.replace(b'"power_w":5', b'"power_w":false'), "power_w"),
        (VALID.replace(b'"power_w":5', b'"power_w":NaN'), "power_w"),
        (VALID.replace(b'"power_w":5', b'"power_w":Infinity'), "power_w"),
        (VALID.replace(b'"import_kwh":1.5', b'"import_kwh":-1'), "import_kwh"),
        (VALID.replace(b"+01:00", b""), "ts"),
        (VALID.replace(b'"2026-11-29T14:12:34+01:00"', b"0"), "ts"),
        (VALID.replace(b'"power_w":5,', b""), "power_w"),
    ],
)
def test_invalid_readings_are_rejected_naming_the_field(body: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Sample.model_validate_json(body)
    assert [e["loc"][0] for e in info.value.errors()] == [field]


def test_a_batch_holds_1_to_5000_readings() -> None:
    one = VALID.decode()
    SampleBatch.model_validate_json(f'{{"device_id":"d1","samples":[{one}]}}')
    for n in (0, 5001):
        with pytest.raises(ValidationError):
            SampleBatch.model_validate_json(f'{{"device_id":"d1","samples":[{",".join([one] * n)}]}}')
