"""fhir_server.core.models: the one door to fhir.resources' R4B models."""

from __future__ import annotations

from fhir_server.core import models


def test_r4b_is_pinned() -> None:
    assert models.R4B_FHIR_VERSION == "4.3.0"


def test_model_class_of_resource_types() -> None:
    patient = models.model_class("Patient")
    assert patient is not None and patient.__name__ == "Patient"
    assert models.model_class("Patient") is patient
    assert models.model_class("MedicinalProduct") is None  # dropped by R4B
    assert models.model_class("HumanName") is None  # a datatype, not a resource
    assert models.model_class("Resource") is None
    assert models.model_class("NoSuchType") is None
    assert models.has_model("HumanName") and not models.has_model("NoSuchType")


def test_validate_returns_neutral_errors() -> None:
    assert models.validate("Patient", {"resourceType": "Patient"}) == []
    [error] = models.validate("Patient", {"resourceType": "Patient", "foo": 1})
    assert (error.type, error.loc, error.input) == ("extra_forbidden", ("foo",), 1)
    [error] = models.validate("Observation", {"resourceType": "Observation", "status": "final"})
    assert (error.type, error.loc) == ("missing", ("code",))


def test_unknown_nested_resource_types_do_not_raise() -> None:
    data = {"resourceType": "Patient", "contained": [{"resourceType": "NoSuchType"}]}
    [error] = models.validate("Patient", data)
    assert error.type == "unresolvable_content"


def test_fields_describe_each_json_property() -> None:
    fields = models.fields("Observation")
    assert fields["status"] == models.FieldSpec("status", "code", None, False, True, None, True)
    assert fields["valueQuantity"].choice == "value"
    assert fields["valueQuantity"].target == "Quantity"
    assert fields["component"].is_list and fields["component"].target == "ObservationComponent"
    assert fields["contained"].type_code == "Resource" and fields["contained"].is_primitive is False
    assert "fhir_comments" not in fields and "_status" not in fields
    assert models.fields("StructureMap")["import"].primitive_extension  # keyword-renamed field
    assert not models.fields("Extension")["valueString"].primitive_extension  # R4B defect
