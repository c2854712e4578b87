"""DescribeSObjectResult and DescribeGlobalResult JSON, rendered from ``schema`` data."""

from __future__ import annotations

from typing import Any

from .schema import FieldSpec, ObjectSpec

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
}
_NUMERIC = {"double": (18, 0), "currency": (18, 2), "percent": (3, 0)}


def describe_field(spec: FieldSpec) -> dict[str, Any]:
    """One entry of ``fields[]`` with the keys clients read (and a realistic rest)."""
    precision, scale = _NUMERIC.get(spec.type, (0, 0))
    is_text = spec.type not in _SOAP_TYPES
    return {
        "aggregatable": spec.type not in {"textarea"},
        "autoNumber": spec.auto_number,
        "byteLength": spec.length * 3 if is_text or spec.type in {"id", "reference"} else 0,
        "calculated": spec.calculated,
        "caseSensitive": False,
        "cascadeDelete": False,
        "compoundFieldName": "Name"
        if spec.name in {"FirstName", "LastName", "Salutation"}
        else None,
        "createable": spec.createable,
        "custom": spec.custom,
        "defaultValue": spec.default if spec.type != "picklist" else None,
        "defaultedOnCreate": spec.defaulted_on_create,
        "deprecatedAndHidden": False,
        "digits": 9 if spec.type == "int" else 0,
        "externalId": spec.external_id,
        "filterable": spec.type != "textarea" or spec.length <= 255,
        "groupable": spec.type not in {"textarea", "double", "currency", "percent", "datetime"},
        "htmlFormatted": False,
        "idLookup": spec.name == "Id" or spec.external_id or spec.type == "email",
        "inlineHelpText": None,
        "label": spec.display_label,
        "name": spec.name,
        "length": spec.length if is_text or spec.type in {"id", "reference"} else 0,
        "nameField": spec.name == "Name" or spec.name == "CaseNumber",
        "namePointing": spec.name == "OwnerId",
        "nillable": spec.nillable,
        "permissionable": spec.nillable and spec.createable,
        "picklistValues": [
            {
                "active": True,
                "defaultValue": value == spec.default,
                "label": value,
                "validFor": None,
                "value": value,
            }
            for value in spec.picklist
        ],
        "polymorphicForeignKey": False,
        "precision": precision,
        "referenceTo": list(spec.reference_to),
        "relationshipName": spec.relationship_name,
        "restrictedPicklist": spec.restricted,
        "scale": scale,
        "soapType": _SOAP_TYPES.get(spec.type, "xsd:string"),
        "sortable": spec.type != "textarea" or spec.length <= 255,
        "type": spec.type,
        "unique": spec.unique,
        "updateable": spec.updateable,
    }


def object_urls(spec: ObjectSpec, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{spec.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def describe_object_summary(spec: ObjectSpec, version: str) -> dict[str, Any]:
    """The short form used by the global describe and ``GET /sobjects/{T}``."""
    return {
        "activateable": False,
        "createable": spec.createable,
        "custom": False,
        "customSetting": False,
        "deletable": spec.deletable,
        "deprecatedAndHidden": False,
        "feedEnabled": spec.name in {"Lead", "Contact", "Account", "Opportunity", "Case"},
        "keyPrefix": spec.key_prefix,
        "label": spec.label,
        "labelPlural": spec.label_plural,
        "layoutable": spec.createable,
        "mergeable": spec.name in {"Lead", "Contact", "Account"},
        "name": spec.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": spec.createable,
        "triggerable": spec.createable,
        "undeletable": spec.deletable,
        "updateable": spec.updateable,
        "urls": object_urls(spec, version),
    }


def describe_object(spec: ObjectSpec, version: str) -> dict[str, Any]:
    """The full DescribeSObjectResult for ``GET /sobjects/{T}/describe``."""
    result = describe_object_summary(spec, version)
    result.update(
        {
            "childRelationships": [],
            "fields": [describe_field(f) for f in spec.fields],
            "recordTypeInfos": [],
            "supportedScopes": [{"label": "All", "name": "everything"}],
        }
    )
    return dict(sorted(result.items()))


def describe_global(schema: dict[str, ObjectSpec], version: str) -> dict[str, Any]:
    """``GET /sobjects/``: encoding, the 200-record batch limit and every object's summary."""
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [describe_object_summary(s, version) for s in schema.values()],
    }


def attributes(sobject: str, record_id: str | None, version: str) -> dict[str, str]:
    """The ``attributes`` object every record in a response carries."""
    attrs = {"type": sobject}
    if record_id:
        attrs["url"] = f"/services/data/v{version}/sobjects/{sobject}/{record_id}"
    return attrs


def render_record(
    spec: ObjectSpec, record: dict[str, Any], version: str, fields: list[str] | None = None
) -> dict[str, Any]:
    """A record as ``GET /sobjects/{T}/{id}`` returns it: attributes, then fields (null if empty)."""
    names = [f.name for f in spec.fields] if fields is None else fields
    out: dict[str, Any] = {"attributes": attributes(spec.name, record["Id"], version)}
    for name in names:
        out[name] = record.get(name)
    return out
