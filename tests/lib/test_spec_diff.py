"""Structural spec diff: one pair per change class, formats, $refs and malformed input."""

import copy
import json

import pytest
import yaml

from dagster_project.lib.spec_diff import diff_specs, spec_fingerprint


def y(spec: dict) -> str:
    return yaml.safe_dump(spec, sort_keys=False)


def node(spec: dict, *path):
    for key in path:
        spec = spec[key]
    return spec


def schema(ref: str) -> dict:
    return {"schema": {"$ref": f"#/components/schemas/{ref}"}}


OPENAPI_30 = {
    "openapi": "3.0.3",
    "info": {"title": "Payments", "version": "1.0.0", "description": "Moves money."},
    "security": [{"oauth": ["payments:write"]}],
    "paths": {
        "/payments/{id}": {
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": {
                "summary": "Read a payment",
                "parameters": [
                    {
                        "name": "expand",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["customer", "lines"]},
                    },
                ],
                "security": [{"oauth": ["payments:read"]}],
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {"application/json": schema("Payment")},
                    },
                    "404": {"description": "missing"},
                },
            },
        },
        "/payments": {
            "get": {
                "security": [],
                "parameters": [
                    {
                        "name": "account",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100}},
                ],
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Payment"},
                                }
                            }
                        },
                    }
                },
            },
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {"application/json": schema("NewPayment")},
                },
                "responses": {
                    "201": {
                        "description": "made",
                        "content": {"application/json": schema("Payment")},
                    }
                },
            },
        },
    },
    "components": {
        "schemas": {
            "Payment": {
                "type": "object",
                "required": ["id", "amount", "status"],
                "properties": {
                    "id": {"type": "string"},
                    "amount": {"type": "integer"},
                    "status": {"type": "string", "enum": ["pending", "settled"]},
                    "note": {"type": "string", "example": "rent"},
                    "customer": {"$ref": "#/components/schemas/Customer"},
                },
            },
            "Customer": {"type": "object", "properties": {"email": {"type": "string"}}},
            "NewPayment": {
                "type": "object",
                "required": ["amount"],
                "properties": {
                    "amount": {"type": "integer", "minimum": 1},
                    "currency": {"type": "string", "enum": ["EUR", "USD"]},
                    "note": {"type": "string"},
                },
            },
        },
        "securitySchemes": {
            "oauth": {
                "type": "oauth2",
                "flows": {
                    "clientCredentials": {
                        "tokenUrl": "https://auth.example/token",
                        "scopes": {"payments:read": "read", "payments:write": "write"},
                    }
                },
            },
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        },
    },
}

ITEM = ("paths", "/payments/{id}", "get")
LIST = ("paths", "/payments", "get")
POST = ("paths", "/payments", "post")
SCHEMAS = ("components", "schemas")


def diff_after(mutate, base=OPENAPI_30, reverse=False):
    current = copy.deepcopy(base)
    mutate(current)
    approved, current = (current, base) if reverse else (base, current)
    result = diff_specs(y(approved), y(current))
    assert result.error is None, result.error
    return result


# (id, mutation, category, a location where it shows, breaking, compare the other way round)
CASES = [
    (
        "op-removed",
        lambda s: node(s, *ITEM[:2]).pop("get"),
        "operation_removed",
        "GET /payments/{id}",
        True,
        False,
    ),
    (
        "op-added",
        lambda s: node(s, *ITEM[:2]).update(delete={"responses": {"204": {"description": "gone"}}}),
        "operation_added",
        "DELETE /payments/{id}",
        False,
        False,
    ),
    (
        "param-added-required",
        lambda s: node(s, *ITEM, "parameters").append(
            {"name": "X-Tenant", "in": "header", "required": True, "schema": {"type": "string"}}
        ),
        "parameter_added_required",
        "GET /payments/{id} header X-Tenant",
        True,
        False,
    ),
    (
        "param-added-optional",
        lambda s: node(s, *ITEM, "parameters").append({"name": "fields", "in": "query"}),
        "parameter_added",
        "GET /payments/{id} query fields",
        False,
        False,
    ),
    (
        "param-removed",
        lambda s: node(s, *ITEM, "parameters").pop(),
        "parameter_removed",
        "GET /payments/{id} query expand",
        True,
        False,
    ),
    (
        "param-became-required",
        lambda s: node(s, *ITEM, "parameters", 0).update(required=True),
        "parameter_became_required",
        "GET /payments/{id} query expand",
        True,
        False,
    ),
    (
        "param-became-optional",
        lambda s: node(s, *LIST, "parameters", 0).update(required=False),
        "parameter_became_optional",
        "GET /payments query account",
        False,
        False,
    ),
    (
        "param-enum-narrowed",
        lambda s: node(s, *ITEM, "parameters", 0, "schema", "enum").remove("lines"),
        "enum_value_removed",
        "GET /payments/{id} query expand",
        True,
        False,
    ),
    (
        "param-type-changed",
        lambda s: node(s, *LIST, "parameters", 1, "schema").update(type="string"),
        "type_changed",
        "GET /payments query limit",
        True,
        False,
    ),
    (
        "body-became-optional",
        lambda s: node(s, *POST, "requestBody").update(required=False),
        "request_body_became_optional",
        "POST /payments request body",
        False,
        False,
    ),
    (
        "body-became-required",
        lambda s: node(s, *POST, "requestBody").update(required=False),
        "request_body_became_required",
        "POST /payments request body",
        True,
        True,
    ),
    (
        "body-removed",
        lambda s: node(s, *POST).pop("requestBody"),
        "request_body_removed",
        "POST /payments request body",
        True,
        False,
    ),
    (
        "request-media-type-removed",
        lambda s: node(s, *POST, "requestBody", "content").update({"text/csv": {}}),
        "request_media_type_removed",
        "POST /payments request body[text/csv]",
        True,
        True,
    ),
    (
        "request-property-added-required",
        lambda s: (
            node(s, *SCHEMAS, "NewPayment", "properties").update(reference={"type": "string"}),
            node(s, *SCHEMAS, "NewPayment", "required").append("reference"),
        ),
        "request_property_added_required",
        "POST /payments request body.reference",
        True,
        False,
    ),
    (
        "request-property-added-optional",
        lambda s: node(s, *SCHEMAS, "NewPayment", "properties").update(tags={"type": "array"}),
        "request_property_added",
        "POST /payments request body.tags",
        False,
        False,
    ),
    (
        "request-property-removed",
        lambda s: node(s, *SCHEMAS, "NewPayment", "properties").pop("note"),
        "request_property_removed",
        "POST /payments request body.note",
        True,
        False,
    ),
    (
        "request-type-changed",
        lambda s: node(s, *SCHEMAS, "NewPayment", "properties", "amount").update(type="string"),
        "type_changed",
        "POST /payments request body.amount",
        True,
        False,
    ),
    (
        "request-enum-value-removed",
        lambda s: node(s, *SCHEMAS, "NewPayment", "properties", "currency", "enum").remove("USD"),
        "enum_value_removed",
        "POST /payments request body.currency",
        True,
        False,
    ),
    (
        "request-enum-value-added",
        lambda s: node(s, *SCHEMAS, "NewPayment", "properties", "currency", "enum").append("GBP"),
        "enum_value_added",
        "POST /payments request body.currency",
        False,
        False,
    ),
    (
        "request-required-added",
        lambda s: node(s, *SCHEMAS, "NewPayment", "required").append("currency"),
        "required_added",
        "POST /payments request body.currency",
        True,
        False,
    ),
    (
        "request-required-removed",
        lambda s: node(s, *SCHEMAS, "NewPayment", "required").remove("amount"),
        "required_removed",
        "POST /payments request body.amount",
        False,
        False,
    ),
    (
        "request-constraint-tightened",
        lambda s: node(s, *SCHEMAS, "NewPayment", "properties", "amount").update(minimum=10),
        "constraint_tightened",
        "POST /payments request body.amount",
        True,
        False,
    ),
    (
        "response-status-removed-success",
        lambda s: node(s, *ITEM, "responses").pop("200"),
        "response_status_removed",
        "GET /payments/{id} response 200",
        True,
        False,
    ),
    (
        "response-status-removed-error",
        lambda s: node(s, *ITEM, "responses").pop("404"),
        "response_status_removed",
        "GET /payments/{id} response 404",
        False,
        False,
    ),
    (
        "response-status-added",
        lambda s: node(s, *POST, "responses").update({"409": {"description": "duplicate"}}),
        "response_status_added",
        "POST /payments response 409",
        False,
        False,
    ),
    (
        "response-property-removed",
        lambda s: node(s, *SCHEMAS, "Payment", "properties").pop("note"),
        "response_property_removed",
        "GET /payments/{id} response 200 body.note",
        True,
        False,
    ),
    (
        "response-property-added",
        lambda s: node(s, *SCHEMAS, "Payment", "properties").update(fee={"type": "integer"}),
        "response_property_added",
        "GET /payments response 200 body[].fee",
        False,
        False,
    ),
    (
        "response-type-changed",
        lambda s: node(s, *SCHEMAS, "Payment", "properties", "amount").update(type="number"),
        "type_changed",
        "POST /payments response 201 body.amount",
        True,
        False,
    ),
    (
        "response-enum-value-added",
        lambda s: node(s, *SCHEMAS, "Payment", "properties", "status", "enum").append("refunded"),
        "enum_value_added",
        "GET /payments/{id} response 200 body.status",
        True,
        False,
    ),
    (
        "response-enum-value-removed",
        lambda s: node(s, *SCHEMAS, "Payment", "properties", "status", "enum").remove("settled"),
        "enum_value_removed",
        "GET /payments/{id} response 200 body.status",
        False,
        False,
    ),
    (
        "response-required-removed",
        lambda s: node(s, *SCHEMAS, "Payment", "required").remove("status"),
        "required_removed",
        "GET /payments/{id} response 200 body.status",
        True,
        False,
    ),
    (
        "response-required-added",
        lambda s: node(s, *SCHEMAS, "Payment", "required").append("note"),
        "required_added",
        "GET /payments/{id} response 200 body.note",
        False,
        False,
    ),
    (
        "response-media-type-removed",
        lambda s: node(s, *ITEM, "responses", "200", "content").pop("application/json"),
        "response_media_type_removed",
        "GET /payments/{id} response 200 body",
        True,
        False,
    ),
    (
        "security-scheme-removed",
        lambda s: node(s, "components", "securitySchemes").pop("apiKey"),
        "security_scheme_removed",
        "security scheme apiKey",
        True,
        False,
    ),
    (
        "security-scheme-added",
        lambda s: node(s, "components", "securitySchemes").update(
            basic={"type": "http", "scheme": "basic"}
        ),
        "security_scheme_added",
        "security scheme basic",
        False,
        False,
    ),
    (
        "security-scheme-changed",
        lambda s: node(s, "components", "securitySchemes", "apiKey").update({"in": "query"}),
        "security_scheme_changed",
        "security scheme apiKey",
        True,
        False,
    ),
    (
        "security-required-on-open-operation",
        lambda s: node(s, *LIST).update(security=[{"apiKey": []}]),
        "security_requirement_added",
        "GET /payments security",
        True,
        False,
    ),
    (
        "security-alternative-added",
        lambda s: node(s, *ITEM, "security").append({"apiKey": []}),
        "security_requirement_added",
        "GET /payments/{id} security",
        False,
        False,
    ),
    (
        "security-alternative-removed",
        lambda s: node(s, *ITEM, "security").append({"apiKey": []}),
        "security_requirement_removed",
        "GET /payments/{id} security",
        True,
        True,
    ),
    (
        "global-security-scope-changed",
        lambda s: s.update(security=[{"oauth": ["payments:read"]}]),
        "security_requirement_removed",
        "POST /payments security",
        True,
        False,
    ),
    (
        "info-version",
        lambda s: node(s, "info").update(version="1.1.0"),
        "version_changed",
        "info.version",
        False,
        False,
    ),
]


@pytest.mark.parametrize(
    "mutate, category, location, breaking, reverse",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_each_change_class(mutate, category, location, breaking, reverse):
    result = diff_after(mutate, reverse=reverse)
    found = [c for c in result.changes if c.category == category and c.location == location]
    assert len(found) == 1, result.changes
    assert found[0].breaking is breaking
    assert result.has_breaking is any(c.breaking for c in result.changes)
    assert found[0].detail.endswith(".") and location in found[0].detail


def test_a_change_class_comes_alone_and_everywhere_its_component_is_used():
    result = diff_after(lambda s: node(s, *SCHEMAS, "Payment", "properties").pop("note"))
    assert [(c.category, c.location, c.breaking) for c in result.changes] == [
        ("response_property_removed", "GET /payments response 200 body[].note", True),
        ("response_property_removed", "GET /payments/{id} response 200 body.note", True),
        ("response_property_removed", "POST /payments response 201 body.note", True),
    ]
    assert result.breaking == result.changes
    assert (result.kind, result.version) == ("openapi", "3.0.3")


def test_a_change_two_refs_deep_shows_at_the_operation():
    result = diff_after(
        lambda s: node(s, *SCHEMAS, "Customer", "properties", "email").update(type="integer")
    )
    locations = [c.location for c in result.changes]
    assert "GET /payments/{id} response 200 body.customer.email" in locations
    assert {c.category for c in result.changes} == {"type_changed"}
    assert "(response side)" in result.changes[0].detail
    assert not any("components" in loc for loc in locations)


def test_type_change_notes_the_side():
    result = diff_after(
        lambda s: node(s, *SCHEMAS, "NewPayment", "properties", "amount").update(type="string")
    )
    (change,) = result.changes
    assert change.before == ["integer"] and change.after == ["string"]
    assert change.detail.endswith("(request side).")


def test_renamed_path_parameter_is_the_same_path():
    def rename(s):
        item = s["paths"].pop("/payments/{id}")
        item["parameters"][0]["name"] = "paymentId"
        s["paths"]["/payments/{paymentId}"] = item

    assert diff_after(rename).changes == []
    # ... and a change there is reported under the current name
    result = diff_after(
        lambda s: (rename(s), node(s, "paths", "/payments/{paymentId}", "get").pop("security"))
    )
    assert {c.location for c in result.changes} == {"GET /payments/{paymentId} security"}


def test_documentation_and_extensions_are_not_changes():
    def redocument(s):
        s["info"].update(title="Payments API", description="Other words.", contact={"name": "x"})
        node(s, *ITEM).update(
            summary="Fetch", description="Long text", tags=["payments"], **{"x-owner": "team"}
        )
        node(s, *SCHEMAS, "Payment", "properties", "note").update(
            example="gas", description="free text"
        )
        s["servers"] = [{"url": "https://api.example"}]
        s["x-audience"] = "public"

    assert diff_after(redocument).changes == []


def test_yaml_and_reordered_json_are_the_same_spec():
    def reordered(value):
        if isinstance(value, dict):
            return {k: reordered(value[k]) for k in reversed(list(value))}
        if isinstance(value, list):
            return [reordered(v) for v in reversed(value)]  # required, enum, parameters, security
        return value

    as_json = json.dumps(reordered(OPENAPI_30), indent=4)
    yaml_text = "# approved at tag v1\n" + y(OPENAPI_30).replace("\n", "   # trailing\n", 3)
    result = diff_specs(yaml_text, as_json)
    assert result.error is None and result.changes == []
    assert spec_fingerprint(yaml_text) == spec_fingerprint(as_json) is not None


def test_changes_are_sorted_by_location_then_category():
    def many(s):
        node(s, *SCHEMAS, "Payment", "properties").pop("note")
        node(s, *SCHEMAS, "NewPayment", "required").append("currency")
        node(s, *ITEM, "parameters").pop()
        s["info"]["version"] = "2.0.0"

    changes = diff_after(many).changes
    assert len(changes) == 6
    assert changes == sorted(changes, key=lambda c: (c.location, c.category))


def test_nullable_30_equals_type_null_31():
    spec31 = copy.deepcopy(OPENAPI_30)
    spec31["openapi"] = "3.1.0"
    node(spec31, *SCHEMAS, "Payment", "properties", "note")["type"] = ["string", "null"]
    spec30 = copy.deepcopy(OPENAPI_30)
    node(spec30, *SCHEMAS, "Payment", "properties", "note")["nullable"] = True
    assert diff_specs(y(spec30), y(spec31)).changes == []


OPENAPI_31 = copy.deepcopy(OPENAPI_30)
OPENAPI_31["openapi"] = "3.1.0"
node(OPENAPI_31, *SCHEMAS, "Payment", "properties", "note")["type"] = ["string", "null"]
node(OPENAPI_31, *SCHEMAS, "NewPayment", "properties", "note")["type"] = ["string", "null"]
node(OPENAPI_31, *SCHEMAS)["Amount"] = {"type": "integer", "minimum": 1}
node(OPENAPI_31, *SCHEMAS, "NewPayment", "properties")["amount"] = {
    "$ref": "#/components/schemas/Amount",
    "description": "In cents.",
    "maximum": 1000,
}


@pytest.mark.parametrize(
    "mutate, category, location, breaking",
    [
        (
            lambda s: node(s, *SCHEMAS, "Payment", "properties", "note").update(type=["null", "string"]),
            None,
            None,
            None,
        ),
        (
            lambda s: node(s, *SCHEMAS, "Payment", "properties", "note").update(type="string"),
            "became_not_nullable",
            "GET /payments/{id} response 200 body.note",
            False,
        ),
        (
            lambda s: node(s, *SCHEMAS, "NewPayment", "properties", "note").update(type="string"),
            "became_not_nullable",
            "POST /payments request body.note",
            True,
        ),
        (
            lambda s: node(s, *SCHEMAS, "Payment", "properties", "amount").update(type=["integer", "null"]),
            "became_nullable",
            "POST /payments response 201 body.amount",
            True,
        ),
        (
            lambda s: node(s, *SCHEMAS, "NewPayment", "properties", "amount").update(description="Cents."),
            None,
            None,
            None,
        ),
        (  # a sibling of $ref applies alongside the referenced schema
            lambda s: node(s, *SCHEMAS, "NewPayment", "properties", "amount").update(maximum=500),
            "constraint_tightened",
            "POST /payments request body.amount",
            True,
        ),
        (  # ... and the referenced schema still counts
            lambda s: node(s, *SCHEMAS, "Amount").update(type="string"),
            "type_changed",
            "POST /payments request body.amount",
            True,
        ),
    ],
    ids=["type-list-order", "resp-not-nullable", "req-not-nullable", "resp-nullable", "ref-sibling-doc",
         "ref-sibling-max", "ref-target-type"],
)  # fmt: skip
def test_openapi_31(mutate, category, location, breaking):
    result = diff_after(mutate, base=OPENAPI_31)
    if category is None:
        assert result.changes == []
        return
    found = [c for c in result.changes if c.category == category and c.location == location]
    assert [c.breaking for c in found] == [breaking], result.changes
    assert result.version == "3.1.0"


def test_ref_siblings_are_ignored_in_30_as_the_spec_says():
    spec = copy.deepcopy(OPENAPI_31)
    spec["openapi"] = "3.0.3"
    assert (
        diff_after(
            lambda s: node(s, *SCHEMAS, "NewPayment", "properties", "amount").update(maximum=5),
            spec,
        ).changes
        == []
    )


ASYNCAPI_26 = """
asyncapi: 2.6.0
info: {title: Users, version: 1.0.0}
channels:
  user/signedup:
    subscribe:
      message:
        $ref: '#/components/messages/UserSignedUp'
  user/{userId}/delete:
    parameters:
      userId: {schema: {type: string}}
    publish:
      message:
        name: DeleteUser
        payload:
          type: object
          required: [reason]
          properties:
            reason: {type: string, enum: [request, fraud]}
components:
  messages:
    UserSignedUp:
      contentType: application/json
      payload:
        type: object
        required: [email]
        properties:
          email: {type: string, format: email}
          name: {type: string}
"""


@pytest.mark.parametrize(
    "old, new, category, location, breaking",
    [
        (
            "email: {type: string, format: email}\n          name: {type: string}",
            "name: {type: string}",
            "message_payload_property_removed",
            "channel user/signedup message UserSignedUp payload.email",
            True,
        ),
        (
            "name: {type: string}",
            "name: {type: string}\n          plan: {type: string}",
            "message_payload_property_added",
            "channel user/signedup message UserSignedUp payload.plan",
            False,
        ),
        (  # clients publish to this channel: a new required property breaks them
            "required: [reason]",
            "required: [reason, actor]\n          ",
            "required_added",
            "channel user/{userId}/delete message DeleteUser payload.actor",
            True,
        ),
        (
            "enum: [request, fraud]",
            "enum: [request]",
            "enum_value_removed",
            "channel user/{userId}/delete message DeleteUser payload.reason",
            True,
        ),
        (
            "  user/signedup:\n    subscribe:\n      message:\n        $ref: '#/components/messages/UserSignedUp'\n",
            "",
            "channel_removed",
            "channel user/signedup",
            True,
        ),
        ("    subscribe:", "    publish:", "operation_removed", "channel user/signedup send", True),
        ("name: DeleteUser", "name: EraseUser", "message_removed", "channel user/{userId}/delete message DeleteUser", True),
        ("contentType: application/json", "contentType: application/avro", "message_content_type_changed",
         "channel user/signedup message UserSignedUp", True),
    ],
    ids=["payload-property-removed", "payload-property-added", "required-added", "enum-narrowed",
         "channel-removed", "operation-removed", "message-removed", "content-type"],
)  # fmt: skip
def test_asyncapi_26(old, new, category, location, breaking):
    assert old in ASYNCAPI_26
    result = diff_specs(ASYNCAPI_26, ASYNCAPI_26.replace(old, new))
    assert result.error is None and result.kind == "asyncapi"
    found = [c for c in result.changes if c.category == category and c.location == location]
    assert [c.breaking for c in found] == [breaking], result.changes


def test_asyncapi_26_renamed_channel_parameter_is_no_change():
    renamed = ASYNCAPI_26.replace("{userId}", "{id}").replace("userId:", "id:")
    assert diff_specs(ASYNCAPI_26, renamed).changes == []


ASYNCAPI_30 = """
asyncapi: 3.0.0
info: {title: Users, version: 1.0.0}
channels:
  userSignedup:
    address: user/signedup
    messages:
      UserSignedUp:
        $ref: '#/components/messages/UserSignedUp'
  userDeletions:
    address: user/{userId}/delete
    messages:
      DeleteUser:
        payload: {type: object, properties: {reason: {type: string}}}
operations:
  publishSignup:
    action: send
    channel: {$ref: '#/channels/userSignedup'}
    messages: [{$ref: '#/channels/userSignedup/messages/UserSignedUp'}]
  onDelete:
    action: receive
    channel: {$ref: '#/channels/userDeletions'}
components:
  messages:
    UserSignedUp:
      payload:
        type: object
        properties:
          email: {type: string}
          plan: {type: string, enum: [free, pro]}
"""


@pytest.mark.parametrize(
    "old, new, category, location, breaking",
    [
        ("email: {type: string}", "email: {type: integer}", "type_changed",
         "channel user/signedup message UserSignedUp payload.email", True),
        ("enum: [free, pro]", "enum: [free, pro, team]", "enum_value_added",  # consumers read it
         "channel user/signedup message UserSignedUp payload.plan", True),
        ("reason: {type: string}", "reason: {type: string}, note: {type: string}",
         "message_payload_property_added", "channel user/{userId}/delete message DeleteUser payload.note", False),
        ("  onDelete:\n    action: receive\n    channel: {$ref: '#/channels/userDeletions'}\n", "",
         "operation_removed", "channel user/{userId}/delete receive", True),
        ("      DeleteUser:", "      RemoveUser:", "message_added", "channel user/{userId}/delete message RemoveUser",
         False),
        ("address: user/signedup", "address: users/signedup", "channel_added", "channel users/signedup", False),
    ],
    ids=["type-changed", "send-enum-added", "property-added", "operation-removed", "message-added", "channel-moved"],
)  # fmt: skip
def test_asyncapi_30(old, new, category, location, breaking):
    assert old in ASYNCAPI_30
    result = diff_specs(ASYNCAPI_30, ASYNCAPI_30.replace(old, new))
    assert result.error is None and result.version == "3.0.0"
    found = [c for c in result.changes if c.category == category and c.location == location]
    assert [c.breaking for c in found] == [breaking], result.changes


def test_asyncapi_30_channel_keyed_by_address_not_id():
    renamed = ASYNCAPI_30.replace("userSignedup", "signups")
    assert diff_specs(ASYNCAPI_30, renamed).changes == []


RECURSIVE = """
openapi: 3.0.3
info: {title: Tree, version: '1'}
paths:
  /tree:
    get:
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Node'}
components:
  schemas:
    Node:
      type: object
      properties:
        name: {type: string}
        children: {type: array, items: {$ref: '#/components/schemas/Node'}}
        parent: {$ref: '#/components/schemas/Parent'}
    Parent:
      type: object
      properties:
        child: {$ref: '#/components/schemas/Node'}
"""


@pytest.mark.timeout(10)
def test_recursive_schema_does_not_loop():
    assert diff_specs(RECURSIVE, RECURSIVE).changes == []
    result = diff_specs(
        RECURSIVE, RECURSIVE.replace("name: {type: string}", "name: {type: integer}")
    )
    # the cycle (Node > children > Node, Node > parent > child > Node) is cut at the ref
    assert [(c.category, c.location) for c in result.changes] == [
        ("type_changed", "GET /tree response 200 body.name")
    ]
    retyped = diff_specs(RECURSIVE, RECURSIVE.replace("child: {$ref", "sibling: {$ref"))
    assert [(c.category, c.location) for c in retyped.changes] == [
        ("response_property_removed", "GET /tree response 200 body.parent.child"),
        ("response_property_added", "GET /tree response 200 body.parent.sibling"),
    ]
    assert spec_fingerprint(RECURSIVE) is not None


def test_external_refs_are_reported_not_fetched():
    spec = RECURSIVE.replace(
        "'#/components/schemas/Parent'", "'common.yaml#/components/schemas/Parent'"
    )
    result = diff_specs(spec, spec)
    assert result.error is None and result.changes == []
    assert result.unresolved_refs == ("common.yaml#/components/schemas/Parent",)
    moved = diff_specs(spec, spec.replace("common.yaml", "https://schemas.example/common.yaml"))
    assert [(c.category, c.location, c.breaking) for c in moved.changes] == [
        ("schema_changed", "GET /tree response 200 body.parent", True)
    ]


def test_a_missing_local_ref_is_unresolved_not_an_error():
    spec = RECURSIVE.replace("'#/components/schemas/Parent'", "'#/components/schemas/Nope'")
    result = diff_specs(RECURSIVE, spec)
    assert result.error is None
    assert result.unresolved_refs == ("#/components/schemas/Nope",)
    assert [c.category for c in result.changes] == ["schema_changed"]


VALID = y(OPENAPI_30)


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("openapi: [3.0.3\ninfo: {", "not valid YAML or JSON"),
        ("- openapi: 3.0.3\n- paths: {}\n", "is a list, not a mapping"),
        ("info: {title: x, version: '1'}\npaths: {}\n", "no top-level 'openapi' or 'asyncapi' key"),
        ("swagger: '2.0'\ninfo: {title: x, version: '1'}\npaths: {}\n", "'swagger' is not supported"),
        ("openapi: 3.0.3\ninfo: {title: x, version: '1'}\npaths: 5\n", "paths is a number, not a mapping"),
        ("openapi: 4.0.0\npaths: {}\n", "openapi 4.0.0 is not supported"),
        ("openapi: 3.0.3\npaths:\n  /a:\n    get: nope\n", "GET /a is a string, not a mapping"),
        ("openapi: 3.0.3\npaths:\n  /a:\n    get:\n      parameters: {a: 1}\n", "parameters of /a are a mapping"),
        ("openapi: 3.0.3\npaths:\n  /a:\n    get:\n      parameters: [{name: a}]\n", "has no name or no 'in'"),
        ("openapi: 3.0.3\npaths:\n  /a:\n    get:\n      responses: [200]\n", "responses is a list"),
        ("openapi: 3.0.3\npaths:\n  /a:\n    post:\n      requestBody:\n        content:\n"
         "          application/json: {schema: string}\n", "a schema is a string"),
        ("asyncapi: 3.0.0\noperations:\n  x: {action: fly}\n", "no action send or receive"),
        ("", "is empty, not a mapping"),
        ("openapi: 3.0.3\ninfo: &a {title: x, self: *a}\npaths: {}\n", "refers to itself"),
    ],
    ids=["bad-yaml", "top-level-list", "no-openapi-key", "swagger", "paths-5", "openapi-4", "op-string",
         "params-mapping", "param-no-in", "responses-list", "schema-string", "asyncapi-action", "empty",
         "self-alias"],
)  # fmt: skip
def test_malformed_input_returns_an_error(bad, reason):
    for approved, current, side in ((bad, VALID, "approved"), (VALID, bad, "current")):
        result = diff_specs(approved, current)
        assert result.error is not None and reason in result.error, result.error
        assert result.error.startswith(side) or "refers to itself" in reason
        assert "\n" not in result.error
        assert result.changes == [] and not result.has_breaking
    assert spec_fingerprint(bad) is None


def test_non_text_and_kind_mismatch_are_errors():
    assert diff_specs(None, VALID).error == "approved spec is empty, not text"
    assert diff_specs(VALID.encode(), VALID).changes == []
    assert "kind changed from openapi to asyncapi" in diff_specs(VALID, ASYNCAPI_30).error


def test_fingerprint_same_for_equivalent_specs_and_different_otherwise():
    base = spec_fingerprint(VALID)
    assert len(base) == 64
    assert spec_fingerprint(json.dumps(OPENAPI_30)) == base
    documented = copy.deepcopy(OPENAPI_30)
    documented["info"]["description"] = "Something else entirely."
    assert spec_fingerprint(y(documented)) == base
    changed = copy.deepcopy(OPENAPI_30)
    node(changed, *SCHEMAS, "Payment", "properties").pop("note")
    assert spec_fingerprint(y(changed)) != base
    bumped = copy.deepcopy(OPENAPI_30)
    bumped["info"]["version"] = "9"
    assert spec_fingerprint(y(bumped)) != base
    assert spec_fingerprint(ASYNCAPI_26) != spec_fingerprint(ASYNCAPI_30)
    assert spec_fingerprint("{not: [valid") is None


def test_asyncapi_30_multi_format_payload_is_compared_inside():
    multi = ASYNCAPI_30.replace(
        "payload: {type: object, properties: {reason: {type: string}}}",
        "payload: {schemaFormat: application/schema+json, schema: {type: object, properties: {reason: {type: string}}}}",
    )
    assert diff_specs(ASYNCAPI_30, multi).changes == []
    result = diff_specs(multi, multi.replace("reason: {type: string}", "reason: {type: boolean}"))
    assert [(c.category, c.location) for c in result.changes] == [
        ("type_changed", "channel user/{userId}/delete message DeleteUser payload.reason")
    ]
