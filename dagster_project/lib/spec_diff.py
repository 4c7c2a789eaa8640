"""Structural diff of two API specifications (OpenAPI 3.0/3.1, AsyncAPI 2.x/3.0).

Spec drift is an approved spec (e.g. at an approval tag) that no longer matches the one
on the default branch. A text diff cannot tell it: the same spec may be YAML or JSON,
reordered, reformatted or re-documented. So both texts are parsed, local ``$ref``s are
inlined (a recursive schema stops at the cycle and compares by ref name; refs to other
files or URLs are not fetched but listed in ``unresolved_refs``), and each spec becomes
a *model* of what a client depends on:

* OpenAPI: operations by (method, path template), so ``/pets/{id}`` and
  ``/pets/{petId}`` are one path and path parameters match by position; parameters by
  (in, name) with required-ness and schema; the request body (required-ness, media
  types, schema); responses by status code (media types, schema); each operation's
  effective security requirements; the security schemes; ``info.version``.
* AsyncAPI: channels by address template; per channel its actions (``send``: the
  application publishes, consumers read it like a response; ``receive``: clients
  publish, like a request; 2.x ``subscribe``/``publish`` map to those) and messages
  (payload, headers, content type); the security schemes.
* Schemas: type (3.0 ``nullable: true`` is 3.1 ``type: [x, "null"]``), enum/const,
  required, properties, items, additionalProperties, oneOf/anyOf, format, pattern and
  numeric bounds; allOf is flattened; in 3.1 the siblings of a ``$ref`` apply with it.

Not compared: descriptions, summaries, examples, titles, ``x-`` extensions, tags,
servers, deprecation, defaults, readOnly/writeOnly, response headers, links, callbacks,
webhooks. Orderless lists (required, enum, type, security alternatives, oneOf) compare
as sets. ``spec_fingerprint`` hashes the model: equal fingerprints, no change.

``breaking`` (see ``_BREAKING``) follows oasdiff: breaking is what oasdiff reports at
level ERR or WARN, i.e. what ``oasdiff breaking`` prints. So removing a parameter or a
request property (WARN) is breaking, and so is adding an enum value to a response
(clients with closed enums fail on it: WARN, ERR in recent oasdiff); removing a non-2xx
response status (INFO) is not. Where this module differs from oasdiff:

* every ``type_changed`` is breaking (oasdiff lets a request type widen, e.g. integer
  to number);
* oasdiff reports security changes as INFO. Here no longer accepting a requirement
  alternative is breaking (unless anonymous calls now are), and so is requiring
  security where anonymous calls were accepted; a removed or changed scheme is breaking;
* ``request_body_removed`` is breaking; deprecation is ignored (removing a deprecated
  operation is still breaking);
* AsyncAPI, which oasdiff does not read: a message of a ``receive`` channel is judged
  like a request body, of a ``send`` channel like a response, of a channel with both
  (or neither) as breaking if either would be.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import unquote

import yaml

# libyaml's safe loader where PyYAML was built with it (the same documents, several
# times faster on large specs), else the pure-Python one.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_REF_DEPTH = 16
_NODE_BUDGET = 2_000_000  # nodes after inlining; guards against ref blow-up
_REF_KEY = "x-driftgate-ref"  # component a resolved mapping came from (x-: never compared)
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_CONSTRAINTS = (*_UPPER_BOUNDS, *_LOWER_BOUNDS, "format", "pattern", "multipleOf", "uniqueItems")

# Verdict per category. Schema changes depend on the side: (request, response). Their
# "property_*" categories are named after where the schema sits: request_property_removed,
# response_property_added, parameter_property_*, message_payload_property_*, ...
_BREAKING: dict[str, Any] = {
    **dict.fromkeys(
        "operation_removed parameter_removed parameter_added_required parameter_became_required"
        " request_body_removed request_body_added_required request_body_became_required"
        " request_media_type_removed response_media_type_removed security_scheme_removed"
        " security_scheme_changed channel_removed message_removed message_content_type_changed"
        " security_requirement_removed".split(),  # False when anonymous calls now are accepted
        True,
    ),
    **dict.fromkeys(
        "version_changed operation_added parameter_added parameter_became_optional"
        " request_body_added request_body_became_optional request_media_type_added"
        " response_status_added response_media_type_added security_scheme_added channel_added"
        " message_added security_requirement_added".split(),  # True when anonymous calls were
        False,
    ),
    "response_status_removed": lambda status: status.startswith("2"),  # as oasdiff
    "type_changed": (True, True),
    "schema_changed": (True, True),  # a $ref stub (cycle, external) on either side
    "became_nullable": (False, True),
    "became_not_nullable": (True, False),
    "enum_value_removed": (True, False),
    "enum_value_added": (False, True),
    "enum_added": (True, False),
    "enum_removed": (False, True),
    "required_added": (True, False),
    "required_removed": (False, True),
    "constraint_tightened": (True, False),
    "constraint_loosened": (False, True),
    "constraint_changed": (True, True),
    "variant_removed": (True, False),
    "variant_added": (False, True),
    "property_removed": (True, True),
    "property_added": (False, False),
    "property_added_required": (True, False),
}


@dataclass(frozen=True)
class Change:
    category: str
    breaking: bool
    location: str
    before: Any = None
    after: Any = None
    detail: str = ""


@dataclass(frozen=True)
class SpecDiff:
    changes: list[Change] = field(default_factory=list)
    error: str | None = None
    kind: str | None = None  # "openapi" | "asyncapi"
    version: str | None = None  # the current spec's openapi/asyncapi version
    unresolved_refs: tuple[str, ...] = ()  # refs not followed: other files, URLs, missing

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def has_breaking(self) -> bool:
        return any(c.breaking for c in self.changes)


class _SpecError(ValueError):
    """A spec that cannot be compared; the message is one line."""


class _Spec(NamedTuple):
    kind: str
    version: str
    model: dict
    display: dict  # model keys -> names as the spec writes them (not hashed)
    unresolved: set


def diff_specs(approved_text: str, current_text: str) -> SpecDiff:
    """Changes from the approved spec to the current one; never raises."""
    try:
        a, b = _load(approved_text, "approved"), _load(current_text, "current")
        if a.kind != b.kind:
            raise _SpecError(f"spec kind changed from {a.kind} to {b.kind}")
        out = _Changes()
        if a.model["version"] != b.model["version"]:
            out.add("version_changed", "info.version", a.model["version"], b.model["version"])
        out.each(
            a.model["security_schemes"],
            b.model["security_schemes"],
            lambda name: f"security scheme {name}",
            "security_scheme",
            lambda loc, x, y: out.add("security_scheme_changed", loc, x, y),
        )
        (_diff_openapi if a.kind == "openapi" else _diff_asyncapi)(out, a, b)
        out.sort(key=lambda c: (c.location, c.category, _canon(c.before), _canon(c.after)))
        refs = tuple(sorted(a.unresolved | b.unresolved))
        return SpecDiff(list(out), None, b.kind, b.version, refs)
    except _SpecError as exc:
        return SpecDiff(error=str(exc))
    except RecursionError:
        return SpecDiff(error="spec is nested too deeply (or refers to itself) to compare")
    except Exception as exc:  # malformed input becomes a result, never an exception
        return SpecDiff(error=f"spec could not be compared: {type(exc).__name__}: {_line(exc)}")


def spec_fingerprint(text: str) -> str | None:
    """SHA-256 of the normalised, ref-resolved model; None when the text is no spec."""
    try:
        model = _load(text, "spec").model
    except Exception:
        return None
    return hashlib.sha256(_canon(model).encode()).hexdigest()


# --- loading and $ref resolution --------------------------------------------------------


def _load(text: Any, side: str) -> _Spec:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise _SpecError(f"{side} spec is {_what(text)}, not text")
    try:
        doc = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 -- a safe loader
    except yaml.YAMLError as exc:
        raise _SpecError(f"{side} spec is not valid YAML or JSON: {_line(exc)}") from None
    if not isinstance(doc, dict):
        raise _SpecError(f"{side} spec is {_what(doc)}, not a mapping")
    kind = next((k for k in ("openapi", "asyncapi") if k in doc), None)
    if kind is None:
        swagger = " (OpenAPI 2.0 'swagger' is not supported)" if "swagger" in doc else ""
        raise _SpecError(f"{side} spec has no top-level 'openapi' or 'asyncapi' key{swagger}")
    version = str(doc[kind])
    if not version.startswith(("3.0", "3.1") if kind == "openapi" else ("2.", "3.0")):
        raise _SpecError(f"{side} spec: {kind} {version} is not supported")
    unresolved: set[str] = set()
    try:
        merge = kind == "openapi" and version.startswith("3.1")
        doc = _resolve(doc, doc, (), unresolved, [_NODE_BUDGET], merge)
        version_of_api = _mapping(doc.get("info"), "info").get("version")
        model = {
            "kind": kind,
            "version": None if version_of_api is None else str(version_of_api),
            "security_schemes": _security_schemes(doc),
        }
        display: dict = {}
        if kind == "openapi":
            model["operations"] = _openapi_operations(doc, display)
        else:
            model["channels"] = _asyncapi_channels(doc, version.startswith("2."), display)
    except _SpecError as exc:
        raise _SpecError(f"{side} spec: {exc}") from None
    return _Spec(kind, version, model, display, unresolved)


def _resolve(node: Any, root: dict, stack: tuple, unresolved: set, budget: list, merge: bool):
    """Inline local refs. A ref already being resolved (a cycle) or past the depth stays a
    ``{"$ref": ...}`` stub, so a recursive schema compares by ref name."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _SpecError("spec is too large once its $refs are resolved")
    if isinstance(node, list):
        return [_resolve(item, root, stack, unresolved, budget, merge) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return {
            str(k): _resolve(v, root, stack, unresolved, budget, merge) for k, v in node.items()
        }
    if ref in stack or len(stack) >= _MAX_REF_DEPTH:
        return {"$ref": ref}
    target: Any = root if ref.startswith("#/") else None  # other files and URLs: not fetched
    for part in map(_unescape, ref[2:].split("/") if target is not None else []):
        if isinstance(target, dict):
            target = target.get(part)
        else:
            ok = isinstance(target, list) and part.isdigit() and int(part) < len(target)
            target = target[int(part)] if ok else None
    if target is None:
        unresolved.add(ref)
        return {"$ref": ref}
    resolved = _resolve(target, root, (*stack, ref), unresolved, budget, merge)
    if isinstance(resolved, dict):
        resolved = {**resolved, _REF_KEY: _unescape(ref.rsplit("/", 1)[-1])}
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if siblings and merge:
            resolved = _merge(resolved, _resolve(siblings, root, stack, unresolved, budget, merge))
    return resolved


def _unescape(part: str) -> str:
    return unquote(part).replace("~1", "/").replace("~0", "~")


def _merge(base: dict, extra: dict) -> dict:
    """allOf and ref-sibling merge: properties and required add up, the rest overrides."""
    out = dict(base)
    for key, value in extra.items():
        if key == "required" and isinstance(out.get(key), list) and isinstance(value, list):
            out[key] = [*out[key], *value]
        elif key == "properties" and isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = {**out[key], **value}
        elif key != "$ref":
            out[key] = value
    return out


# --- the model -----------------------------------------------------------------------------


def _schema(s: Any) -> Any:
    """A schema reduced to the compared keywords, sets sorted, allOf flattened."""
    if s is False:
        return False
    if s is None or s is True:
        return {}
    if not isinstance(s, dict):
        raise _SpecError(f"a schema is {_what(s)}, not a mapping")
    if "$ref" in s:
        return {"$ref": s["$ref"]}
    s = _flatten(s)
    types = s.get("type")
    types = set(types) if isinstance(types, list) else set() if types is None else {types}
    if not types and ("properties" in s or "items" in s):
        types = {"object" if "properties" in s else "array"}
    if s.get("nullable") is True and types:
        types.add("null")
    out: dict = {"type": sorted(map(str, types))} if types else {}
    enum = s["enum"] if isinstance(s.get("enum"), list) else [s["const"]] if "const" in s else None
    if enum is not None:
        out["enum"] = [json.loads(v) for v in sorted({_canon(v) for v in enum})]
    if isinstance(s.get("required"), list):
        out["required"] = sorted({str(r) for r in s["required"]})
    if props := _mapping(s.get("properties"), "schema properties"):
        out["properties"] = {str(k): _schema(v) for k, v in props.items()}
    if "items" in s and not isinstance(s["items"], list):
        out["items"] = _schema(s["items"])
    if isinstance(s.get("additionalProperties"), dict | bool):
        out["additionalProperties"] = _schema(s["additionalProperties"])
    for kw in ("oneOf", "anyOf"):
        if isinstance(s.get(kw), list):
            out[kw] = sorted((_schema(v) for v in s[kw]), key=_canon)
    return out | {kw: s[kw] for kw in _CONSTRAINTS if kw in s}


def _flatten(s: dict) -> dict:
    if not isinstance(s.get("allOf"), list):
        return s
    merged: dict = {}
    for part in s["allOf"]:
        merged = _merge(merged, _flatten(part) if isinstance(part, dict) else {})
    return _merge(merged, {k: v for k, v in s.items() if k != "allOf"})


def _security_schemes(doc: dict) -> dict:
    schemes = _mapping(
        _mapping(doc.get("components"), "components").get("securitySchemes"), "securitySchemes"
    )
    out = {}
    for name, s in schemes.items():
        s = _mapping(s, f"security scheme {name}")
        out[name] = {
            k: s[k] for k in ("type", "in", "name", "scheme", "openIdConnectUrl") if k in s
        }
        for flow_name, flow in _mapping(s.get("flows"), f"security scheme {name} flows").items():
            flow = _mapping(flow, f"security scheme {name} flow {flow_name}")
            urls = {k: flow[k] for k in ("authorizationUrl", "tokenUrl", "refreshUrl") if k in flow}
            scopes = flow.get("scopes") or flow.get("availableScopes") or {}
            out[name][f"flow {flow_name}"] = urls | {"scopes": sorted(map(str, scopes))}
    return out


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _openapi_operations(doc: dict, display: dict) -> dict:
    ops = {}
    for path, item in _mapping(doc.get("paths"), "paths").items():
        if path.startswith("x-"):
            continue
        item, tpl, names = _mapping(item, f"path {path}"), _template(path), _path_names(path)
        shared = _parameters(item.get("parameters"), names, tpl, display)
        for method in (m.upper() for m in _METHODS if m in item):
            where = display[f"{method} {tpl}"] = f"{method} {path}"
            op = _mapping(item[method.lower()], where)
            body = op.get("requestBody")
            if body is not None:
                body = _mapping(body, f"{where} requestBody")
                body = {"required": body.get("required") is True, "content": _content(body, where)}
            responses = _mapping(op.get("responses"), f"{where} responses")
            ops[f"{method} {tpl}"] = {
                "parameters": shared | _parameters(op.get("parameters"), names, tpl, display),
                "request_body": body,
                "responses": {
                    status.upper() if len(status) == 3 else status: _content(resp, where)
                    for status, resp in responses.items()
                    if not status.startswith("x-")
                },
                "security": _requirements(op.get("security", doc.get("security")), where),
            }
    return ops


def _path_names(path: str) -> list[str]:
    return re.findall(r"\{([^}]*)\}", path)


def _parameters(params: Any, names: list[str], tpl: str, display: dict) -> dict:
    if not isinstance(params, list | None):
        raise _SpecError(f"parameters of {tpl} are {_what(params)}, not a list")
    out = {}
    for p in params or []:
        p = _mapping(p, f"a parameter of {tpl}")
        name, where = p.get("name"), p.get("in")
        if not isinstance(name, str) or not isinstance(where, str):
            raise _SpecError(f"a parameter of {tpl} has no name or no 'in'")
        key = f"{where} {name.lower() if where == 'header' else name}"
        if where == "path" and name in names:
            key = f"path #{names.index(name)}"  # path parameters match by position
        display[(tpl, key)] = f"{where} {name}"
        schema = p.get("schema")
        if schema is None and isinstance(p.get("content"), dict) and p["content"]:
            schema = _mapping(p["content"][min(p["content"])], f"{tpl} {name}").get("schema")
        required = where == "path" or p.get("required") is True
        out[key] = {"required": required, "schema": _schema(schema)}
    return out


def _content(holder: Any, where: str) -> dict:
    return {
        mt.lower(): _schema(_mapping(media, f"{where} media type {mt}").get("schema"))
        for mt, media in _mapping(_mapping(holder, where).get("content"), where).items()
    }


def _requirements(reqs: Any, where: str) -> list:
    """Security alternatives, each a sorted list of "scheme[scopes]"; [] is anonymous.
    Without ``security`` on the operation the spec-wide one applies."""
    if not isinstance(reqs, list | None):
        raise _SpecError(f"security of {where} is {_what(reqs)}, not a list")
    alternatives = set()
    for req in reqs or []:
        req = _mapping(req, f"security of {where}")
        alternatives.add(tuple(sorted(_scoped(name, scopes) for name, scopes in req.items())))
    return sorted(map(list, alternatives or {()}))


def _scoped(name: str, scopes: Any) -> str:
    scopes = sorted(map(str, scopes)) if isinstance(scopes, list) else []
    return f"{name}[{','.join(scopes)}]" if scopes else name


def _asyncapi_channels(doc: dict, v2: bool, display: dict) -> dict:
    channels: dict = {}
    by_id: dict = {}
    for cid, ch in _mapping(doc.get("channels"), "channels").items():
        ch = _mapping(ch, f"channel {cid}")
        address = ch["address"] if isinstance(ch.get("address"), str) and not v2 else cid
        key = by_id[cid] = _template(address)
        display[key] = address
        entry = channels.setdefault(key, {"actions": [], "messages": {}})
        messages = _mapping(ch.get("messages"), f"channel {cid} messages")
        for verb, action in (("publish", "receive"), ("subscribe", "send")) if v2 else ():
            if verb in ch:
                entry["actions"] = sorted({*entry["actions"], action})
                msg = _mapping(_mapping(ch[verb], f"channel {cid} {verb}").get("message"), verb)
                one_of = msg.get("oneOf")
                for i, m in enumerate(one_of if isinstance(one_of, list) else [msg] if msg else []):
                    m = _mapping(m, f"a message of channel {cid}")
                    ids = ("messageId", "name", _REF_KEY, "title")
                    messages[next((m[k] for k in ids if isinstance(m.get(k), str)), f"#{i}")] = m
        for mid, m in messages.items():
            entry["messages"][mid] = _message(_mapping(m, f"message {mid}"), doc)
    for oid, op in ({} if v2 else _mapping(doc.get("operations"), "operations")).items():
        op = _mapping(op, f"operation {oid}")
        if op.get("action") not in ("send", "receive"):
            raise _SpecError(f"operation {oid} has no action send or receive")
        key = by_id.get(_mapping(op.get("channel"), f"operation {oid} channel").get(_REF_KEY))
        if key is not None:
            channels[key]["actions"] = sorted({*channels[key]["actions"], op["action"]})
    return channels


def _message(m: dict, doc: dict) -> dict:
    payload = m.get("payload")
    if isinstance(payload, dict) and "schemaFormat" in payload and "schema" in payload:
        payload = payload["schema"]  # 3.0 multi-format schema
    return {
        "content_type": m.get("contentType", doc.get("defaultContentType")),
        "payload": _schema(payload),
        "headers": _schema(m.get("headers")),
    }


# --- comparison ----------------------------------------------------------------------------


class _Changes(list):
    def add(self, cat, loc, before=None, after=None, side="", breaking=None) -> None:
        if breaking is None:
            rule = _BREAKING[cat if cat in _BREAKING else "property" + cat.split("_property")[-1]]
            rule = rule(before) if callable(rule) else rule
            if isinstance(rule, tuple):
                breaking = {"request": rule[0], "response": rule[1]}.get(side, any(rule))
            else:
                breaking = rule
        shown = [_canon(v) for v in (before, after) if v is not None]
        detail = cat.replace("_", " ").replace(" added required", " added (required)")
        detail = f"{detail.capitalize()} at {loc}" + (": " + " -> ".join(shown) if shown else "")
        detail += f" ({side} side)." if side and not cat.startswith(side) else "."
        self.append(Change(cat, bool(breaking), loc, before, after, detail))

    def each(self, a: dict, b: dict, loc, what: str, common=None, name=str, required=None):
        """Keys only in ``a`` are ``<what>_removed``, only in ``b`` ``<what>_added`` (or
        ``_added_required`` when ``required(value)``); ``common(loc, x, y)`` compares the rest."""
        for key in sorted(a.keys() | b.keys()):
            if key not in b:
                self.add(f"{what}_removed", loc(key), name(key))
            elif key not in a:
                needed = required is not None and required(b[key])
                self.add(_added(what, needed), loc(key), after=name(key))
            elif common is not None and a[key] != b[key]:
                common(loc(key), a[key], b[key])


def _diff_openapi(out: _Changes, a: _Spec, b: _Spec) -> None:
    def show(key: Any) -> str:
        return b.display.get(key) or a.display[key]

    def operation(op: str, x: dict, y: dict) -> None:
        tpl = _template(op.split(" ", 1)[1])
        out.each(
            x["parameters"],
            y["parameters"],
            lambda k: f"{op} {show((tpl, k))}",
            "parameter",
            lambda loc, p, q: _diff_parameter(out, loc, p, q),
            name=lambda k: show((tpl, k)),
            required=lambda p: p["required"],
        )
        _diff_body(out, f"{op} request body", x["request_body"], y["request_body"])
        out.each(
            x["responses"],
            y["responses"],
            lambda status: f"{op} response {status}",
            "response_status",
            lambda loc, p, q: _diff_content(out, f"{loc} body", p, q, "response"),
        )
        _diff_security(out, f"{op} security", x["security"], y["security"])

    out.each(a.model["operations"], b.model["operations"], show, "operation", operation, show)


def _added(what: str, required: bool) -> str:
    return f"{what}_added_required" if required else f"{what}_added"


def _diff_parameter(out: _Changes, loc: str, a: dict, b: dict) -> None:
    if a["required"] != b["required"]:
        became = "required" if b["required"] else "optional"
        out.add(f"parameter_became_{became}", loc, a["required"], b["required"])
    _diff_schema(out, a["schema"], b["schema"], loc, "request", "parameter_property")


def _diff_body(out: _Changes, loc: str, a: dict | None, b: dict | None) -> None:
    if a is None or b is None:
        if a is not None:
            out.add("request_body_removed", loc, before="body")
        elif b is not None:
            out.add(_added("request_body", b["required"]), loc, after="body")
        return
    if a["required"] != b["required"]:
        became = "required" if b["required"] else "optional"
        out.add(f"request_body_became_{became}", loc, a["required"], b["required"])
    _diff_content(out, loc, a["content"], b["content"], "request")


def _diff_content(out: _Changes, loc: str, a: dict, b: dict, side: str) -> None:
    out.each(
        a,
        b,
        lambda mt: loc if mt == "application/json" else f"{loc}[{mt}]",
        f"{side}_media_type",
        lambda where, x, y: _diff_schema(out, x, y, where, side, f"{side}_property"),
    )


def _diff_security(out: _Changes, loc: str, a: list, b: list) -> None:
    def show(alt: list) -> str:
        return " + ".join(alt) or "anonymous"

    removed, added = [x for x in a if x not in b], [x for x in b if x not in a]
    if [] in removed:  # anonymous calls were accepted and no longer are
        for alt in added:
            out.add("security_requirement_added", loc, "anonymous", show(alt), breaking=True)
        return
    for alt in removed:
        out.add("security_requirement_removed", loc, show(alt), breaking=[] not in b)
    for alt in (alt for alt in added if alt):
        out.add("security_requirement_added", loc, after=show(alt))


def _diff_asyncapi(out: _Changes, a: _Spec, b: _Spec) -> None:
    def show(key: str) -> str:
        return b.display.get(key) or a.display[key]

    def channel(loc: str, x: dict, y: dict) -> None:
        actions_a, actions_b = dict.fromkeys(x["actions"]), dict.fromkeys(y["actions"])
        out.each(actions_a, actions_b, lambda act: f"{loc} {act}", "operation")
        actions = {*x["actions"], *y["actions"]}
        side = {"receive": "request", "send": "response"}.get("".join(actions), "both")

        def message(mloc: str, ma: dict, mb: dict) -> None:
            if ma["content_type"] != mb["content_type"]:
                out.add(
                    "message_content_type_changed", mloc, ma["content_type"], mb["content_type"]
                )
            for part, prefix in (("payload", "message_payload"), ("headers", "message_header")):
                _diff_schema(out, ma[part], mb[part], f"{mloc} {part}", side, f"{prefix}_property")

        out.each(x["messages"], y["messages"], lambda m: f"{loc} message {m}", "message", message)

    out.each(
        a.model["channels"],
        b.model["channels"],
        lambda k: f"channel {show(k)}",
        "channel",
        channel,
        show,
    )


def _diff_schema(out: _Changes, a: Any, b: Any, loc: str, side: str, prefix: str) -> None:
    if a == b:
        return

    def emit(cat: str, where: str, before: Any = None, after: Any = None) -> None:
        cat = prefix + cat.removeprefix("property") if cat.startswith("property_") else cat
        out.add(cat, where, before, after, side)

    if not (isinstance(a, dict) and isinstance(b, dict)) or "$ref" in a or "$ref" in b:
        return emit("schema_changed", loc, _brief(a), _brief(b))
    ta, tb = a.get("type", []), b.get("type", [])
    if [t for t in ta if t != "null"] != [t for t in tb if t != "null"]:
        return emit("type_changed", loc, ta, tb)
    if ("null" in ta) != ("null" in tb):
        emit("became_nullable" if "null" in tb else "became_not_nullable", loc, ta, tb)
    ea, eb = a.get("enum"), b.get("enum")
    if (ea is None) != (eb is None):
        emit("enum_added" if ea is None else "enum_removed", loc, ea, eb)
    for v in (v for v in ea or [] if eb is not None and v not in eb):
        emit("enum_value_removed", loc, v)
    for v in (v for v in eb or [] if ea is not None and v not in ea):
        emit("enum_value_added", loc, after=v)
    for kw in (kw for kw in _CONSTRAINTS if a.get(kw) != b.get(kw)):
        x, y, cat = a.get(kw), b.get(kw), "constraint_changed"
        if kw in _UPPER_BOUNDS + _LOWER_BOUNDS and {type(x), type(y)} <= {int, float, type(None)}:
            tighter = x is None or (y is not None and (y < x if kw in _UPPER_BOUNDS else y > x))
            cat = "constraint_tightened" if tighter else "constraint_loosened"
        emit(cat, loc, {kw: x}, {kw: y})
    pa, pb = a.get("properties", {}), b.get("properties", {})
    ra, rb = set(a.get("required", [])), set(b.get("required", []))
    for name in sorted(pa.keys() | pb.keys() | ra ^ rb):
        where = f"{loc}.{name}"
        if name in pa and name not in pb:
            emit("property_removed", where, name)
        elif name in pb and name not in pa:
            emit(_added("property", name in rb and side != "response"), where, after=name)
        elif (name in ra) != (name in rb):
            cat = "required_added" if name in rb else "required_removed"
            emit(cat, where, name in ra, name in rb)
        if name in pa and name in pb:
            _diff_schema(out, pa[name], pb[name], where, side, prefix)
    _diff_schema(out, a.get("items", {}), b.get("items", {}), f"{loc}[]", side, prefix)
    xa, xb = a.get("additionalProperties", {}), b.get("additionalProperties", {})
    if xa != xb and False in (xa, xb):
        cat = "constraint_tightened" if xb is False else "constraint_loosened"
        emit(cat, loc, {"additionalProperties": _brief(xa)}, {"additionalProperties": _brief(xb)})
    else:
        _diff_schema(out, xa, xb, f"{loc}.*", side, prefix)
    for kw in ("oneOf", "anyOf"):
        va, vb = a.get(kw, []), b.get(kw, [])
        gone, new = [v for v in va if v not in vb], [v for v in vb if v not in va]
        if len(gone) == len(new) == 1:  # one variant changed: compare inside it
            _diff_schema(out, gone[0], new[0], f"{loc}({kw})", side, prefix)
            continue
        for v in gone:
            emit("variant_removed", f"{loc}({kw})", _brief(v))
        for v in new:
            emit("variant_added", f"{loc}({kw})", after=_brief(v))


# --- small helpers -------------------------------------------------------------------------


def _mapping(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _SpecError(f"{what} is {_what(value)}, not a mapping")
    return value


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _brief(schema: Any) -> Any:
    if isinstance(schema, dict):
        return schema.get("$ref") or schema.get("type") or sorted(schema)
    return schema


def _what(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", int: "a number", bool: "a boolean"}
    return "empty" if value is None else names.get(type(value), f"a {type(value).__name__}")


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
