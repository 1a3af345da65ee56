"""Contract tests: schema files match the structs; examples validate; invalid examples are rejected."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import msgspec
import pytest

from em_service.contracts.schema_export import CONTRACTS, SCHEMA_DIR, drift, render

EXAMPLES = SCHEMA_DIR / "examples"


def _examples(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.examples.json").read_text())


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_schema_files_match_contracts() -> None:
    assert drift() == [], "run: python -m em_service.contracts.schema_export --write"


def test_drift_is_detected(tmp_path: Path) -> None:
    (tmp_path / "alert.schema.json").write_text(render("alert").replace("offender_id", "person"))
    assert "alert" in drift(tmp_path)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_every_contract_has_examples(name: str) -> None:
    examples = _examples(name)
    assert examples["valid"], f"{name}: at least one valid example"
    assert examples["invalid"], f"{name}: at least one invalid example"


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_valid_examples_pass_schema_and_decoder(name: str) -> None:
    validator = _validator(name)
    decoder = msgspec.json.Decoder(CONTRACTS[name])
    for example in _examples(name)["valid"]:
        validator.validate(example)
        decoded = decoder.decode(json.dumps(example))
        # Round trip: what we encode decodes to the same value and still validates.
        again = msgspec.json.decode(msgspec.json.encode(decoded))
        validator.validate(again)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_invalid_examples_are_rejected(name: str) -> None:
    validator = _validator(name)
    decoder = msgspec.json.Decoder(CONTRACTS[name])
    for case in _examples(name)["invalid"]:
        with pytest.raises(msgspec.ValidationError):
            decoder.decode(json.dumps(case["message"]))
        if not case.get("semantic"):
            # Structural faults are expressible in JSON Schema too; cross-field rules are not.
            errors = list(validator.iter_errors(case["message"]))
            assert errors, f"{name}: schema accepted invalid example: {case['why']}"


def test_schema_descriptions_do_not_depend_on_how_msgspec_dedents_docstrings() -> None:
    """msgspec < 0.23 kept a docstring's indentation, 0.23 strips it: the files must not care."""
    from em_service.contracts.schema_export import _normalise_descriptions

    indented = {"description": "Title.\n\n    Body line one;\n    body line two.", "x": [{}]}
    dedented = {"description": "Title.\n\nBody line one;\nbody line two.", "x": [{}]}
    nested = {"$defs": {"A": indented}, "anyOf": [indented]}
    assert _normalise_descriptions(indented) == dedented
    assert _normalise_descriptions(nested) == {"$defs": {"A": dedented}, "anyOf": [dedented]}
