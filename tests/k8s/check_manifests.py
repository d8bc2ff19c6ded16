"""Reads Kubernetes manifests as the API server does and validates them
against the upstream CustomResourceDefinitions in tests/k8s/crds/
(SOURCES.txt says where each comes from).

Kubernetes reads YAML 1.1 (go-yaml v2 under sigs.k8s.io/yaml): an unquoted
all-digit value is an integer, `on`/`yes` are booleans. PyYAML resolves
plain scalars by the same YAML 1.1 rules, so a digest written as
`sha256: 0000...` is read here as the integer 0, as the API server reads it,
and refused where the schema wants a string.

Each custom resource is checked as the API server checks it on create:
the version must be served; the schema's defaults are applied; the object
must match the version's openAPIV3Schema (types, enums, patterns, bounds,
required fields), with every field the schema does not declare refused,
as `kubectl apply` (strict field validation) refuses it; list-type map and
set entries must be unique; and every x-kubernetes-validations CEL rule
must hold (transition rules, which compare with the old object, are for
updates only). The CEL rules run on cel-python, with the few functions of
the Kubernetes CEL library the vendored CRDs use added below.

Built-in kinds have no CRD: networking.k8s.io/v1 Ingress is checked
against the handful of its fields the shipped examples use. IstioOperator
is read by istioctl, not the API server, and is checked the same way.

Usage: check_manifests.py FILE...   (prints `ok FILE` or every problem; exit 1 on any)
"""

import copy
import os
import re
import sys
from urllib.parse import urlparse

import celpy
import jsonschema
import yaml
from celpy import celtypes

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CRD_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crds")

# A DNS-1123 subdomain: what most kinds' metadata.name must be.
SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def load_crds():
    """(group, kind) -> {version: (schema, served)}, scope."""
    table = {}
    for root, _, files in os.walk(CRD_DIR):
        for name in sorted(files):
            if not name.endswith(".yaml"):
                continue
            with open(os.path.join(root, name), encoding="utf-8") as f:
                for doc in yaml.load_all(f, Loader=LOADER):
                    if not doc or doc.get("kind") != "CustomResourceDefinition":
                        continue
                    spec = doc["spec"]
                    versions = {
                        v["name"]: (v.get("schema", {}).get("openAPIV3Schema", {}), v.get("served", False))
                        for v in spec["versions"]
                    }
                    table[(spec["group"], spec["names"]["kind"])] = (versions, spec["scope"])
    return table


# --- The structural schema as JSON Schema (draft 4: OpenAPI 3.0's dialect) ---


def json_schema(node):
    """An OpenAPI v3 structural schema as a JSON Schema draft 4 one: unknown
    fields refused where the schema declares its fields, `nullable` and
    x-kubernetes-int-or-string spelled as JSON Schema spells them."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [json_schema(v) for v in value]
        elif key.startswith("x-kubernetes-") or key in ("description", "default", "example", "format"):
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = out.get("anyOf", []) + [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and "additionalProperties" not in node and not preserve:
        out["additionalProperties"] = False
    return out


def apply_defaults(value, schema):
    """Fills in the schema's defaults, as the API server does before it
    validates (and so before CEL rules read the object)."""
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        for name, prop in (schema.get("properties") or {}).items():
            if name not in value and isinstance(prop, dict) and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                apply_defaults(value[name], prop)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in value:
                if name not in (schema.get("properties") or {}):
                    apply_defaults(value[name], extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])


# --- CEL, with the Kubernetes library functions the vendored CRDs call ---


def _split(text, separator, limit=None):
    parts = str(text).split(str(separator)) if limit is None else str(text).split(str(separator), int(limit) - 1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _url_scheme(text):
    return celtypes.StringType(urlparse(str(text)).scheme)


def _is_url(text):
    parsed = urlparse(str(text))
    return celtypes.BoolType(bool(parsed.scheme) and (bool(parsed.netloc) or parsed.scheme == "file"))


K8S_FUNCTIONS = {
    "split": _split,
    "trim": lambda s: celtypes.StringType(str(s).strip()),
    "substring": lambda s, a, b=None: celtypes.StringType(str(s)[int(a) :] if b is None else str(s)[int(a) : int(b)]),
    "lowerAscii": lambda s: celtypes.StringType(str(s).lower()),
    "upperAscii": lambda s: celtypes.StringType(str(s).upper()),
    "indexOf": lambda s, sub: celtypes.IntType(str(s).find(str(sub))),
    "isURL": _is_url,
    # url(s) stands for the URL itself; its accessors parse it.
    "url": lambda s: celtypes.StringType(str(s)),
    "getScheme": _url_scheme,
}

CEL = celpy.Environment()
PROGRAMS = {}


def cel_program(rule):
    if rule not in PROGRAMS:
        PROGRAMS[rule] = CEL.program(CEL.compile(rule), functions=K8S_FUNCTIONS)
    return PROGRAMS[rule]


def check_cel(value, schema, at, problems, path=""):
    """Every x-kubernetes-validations rule on the way down, with `self`
    the value at its node (`path` names it)."""
    if not isinstance(schema, dict) or value is None:
        return
    for validation in schema.get("x-kubernetes-validations") or []:
        rule = validation["rule"]
        if "oldSelf" in rule:
            continue
        try:
            held = cel_program(rule).evaluate({"self": celpy.json_to_cel(value)})
        except Exception as err:  # pylint: disable=broad-except
            problems.append(f"{at} {path or '(root)'}: the CRD's rule {rule!r} could not be evaluated here: {err}")
            continue
        if held is not True and held != celtypes.BoolType(True):
            problems.append(f"{at} {path or '(root)'}: {validation.get('message') or 'fails ' + repr(rule)}")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            sub = props.get(name, extra if isinstance(extra, dict) else None)
            check_cel(item, sub, at, problems, f"{path}.{name}".lstrip("."))
        for keyword in ("allOf", "anyOf", "oneOf"):
            for alternative in schema.get(keyword) or []:
                if isinstance(alternative, dict) and alternative.get("x-kubernetes-validations"):
                    check_cel(value, {"x-kubernetes-validations": alternative["x-kubernetes-validations"]}, at, problems, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_cel(item, schema.get("items"), at, problems, f"{path}[{i}]")
        check_list_type(value, schema, f"{at} {path}", problems)


def check_list_type(items, schema, at, problems):
    """x-kubernetes-list-type: a `map` list's keys and a `set` list's items
    are unique."""
    kind = schema.get("x-kubernetes-list-type")
    if kind == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen = set()
        for i, item in enumerate(items):
            key = tuple(repr(item.get(k)) if isinstance(item, dict) else None for k in keys)
            if key in seen:
                problems.append(f"{at}[{i}]: a second entry with the same {', '.join(keys)}")
            seen.add(key)
    elif kind == "set":
        seen = []
        for i, item in enumerate(items):
            if item in seen:
                problems.append(f"{at}[{i}]: a duplicate in a set")
            seen.append(item)


# --- Built-in kinds: the fields the shipped examples use ---

STRING = {"type": "string"}
STRING_MAP = {"type": "object", "additionalProperties": STRING}
BACKEND = {
    "type": "object",
    "properties": {
        "service": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": STRING,
                "port": {"type": "object", "properties": {"number": {"type": "integer"}, "name": STRING}},
            },
        },
    },
}
BUILT_IN = {
    ("networking.k8s.io", "Ingress"): ({"v1": ({
        "type": "object",
        "properties": {
            "apiVersion": STRING,
            "kind": STRING,
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {
                    "ingressClassName": STRING,
                    "defaultBackend": BACKEND,
                    "tls": {"type": "array", "items": {"type": "object", "properties": {
                        "hosts": {"type": "array", "items": STRING}, "secretName": STRING}}},
                    "rules": {"type": "array", "items": {"type": "object", "properties": {
                        "host": STRING,
                        "http": {"type": "object", "required": ["paths"], "properties": {"paths": {
                            "type": "array", "items": {"type": "object", "required": ["pathType", "backend"], "properties": {
                                "path": STRING,
                                "pathType": {"type": "string", "enum": ["Exact", "Prefix", "ImplementationSpecific"]},
                                "backend": BACKEND,
                            }}}}},
                    }}},
                },
            },
        },
    }, True)}, "Namespaced"),
    ("install.istio.io", "IstioOperator"): ({"v1alpha1": ({
        "type": "object",
        "properties": {
            "apiVersion": STRING,
            "kind": STRING,
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "meshConfig": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            }},
        },
    }, True)}, "Namespaced"),
}


def check_metadata(metadata, scope, at, problems):
    if not isinstance(metadata, dict):
        problems.append(f"{at} metadata: missing")
        return
    name = metadata.get("name")
    if not isinstance(name, str) or len(name) > 253 or not SUBDOMAIN.match(name):
        problems.append(f"{at} metadata.name: {name!r} is not a DNS-1123 subdomain")
    namespace = metadata.get("namespace")
    if scope == "Namespaced" and not namespace:
        problems.append(f"{at} metadata: no namespace: say where it goes")
    if namespace is not None and (not isinstance(namespace, str) or not LABEL.match(namespace)):
        problems.append(f"{at} metadata.namespace: {namespace!r} is not a DNS-1123 label")
    for field in ("labels", "annotations"):
        for key, value in (metadata.get(field) or {}).items():
            if not isinstance(value, str):
                problems.append(f"{at} metadata.{field}.{key}: {value!r} is not a string (YAML 1.1: quote it)")
    known = {"name", "namespace", "labels", "annotations", "generateName", "finalizers", "ownerReferences"}
    for key in sorted(set(metadata) - known):
        problems.append(f"{at} metadata: unknown field {key!r}")


def where(error):
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def check_document(doc, at, crds):
    if not isinstance(doc, dict):
        return [f"{at}: not a mapping"]
    group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
    kind = doc.get("kind")
    found = crds.get((group, kind)) or BUILT_IN.get((group, kind))
    if found is None:
        return [f"{at}: no CRD here for {doc.get('apiVersion')} {kind}"]
    versions, scope = found
    if version not in versions or not versions[version][1]:
        served = sorted(v for v, (_, s) in versions.items() if s)
        return [f"{at}: {group}/{version} does not serve {kind} (served: {', '.join(served)})"]
    schema = versions[version][0]
    problems = []
    check_metadata(doc.get("metadata"), scope, at, problems)
    obj = copy.deepcopy(doc)
    obj["metadata"] = {}
    apply_defaults(obj, schema)
    # Every object has these at its root, whatever its schema lists.
    root = dict(schema)
    root["properties"] = {"apiVersion": STRING, "kind": STRING, "metadata": {"type": "object"}}
    root["properties"].update(schema.get("properties") or {})
    validator = jsonschema.Draft4Validator(json_schema(root))
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            declared = error.schema.get("properties") or {}
            unknown = sorted(k for k in error.instance if k not in declared)
            message = "unknown field " + ", ".join(f"`{k}`" for k in unknown)
        elif error.validator == "type" and isinstance(error.instance, (int, float, bool)) and "string" in str(
            error.validator_value
        ):
            message += " (YAML 1.1: quote it)"
        problems.append(f"{at} {where(error).lstrip('.') or '(root)'}: {message}")
    # The API server runs the CEL rules as well; on an object whose shape
    # is already wrong, a rule that cannot run says nothing more.
    structural = bool(problems)
    rules = []
    check_cel(obj, schema, at, rules)
    problems += [p for p in rules if not (structural and "could not be evaluated" in p)]
    return problems


def main(files):
    crds = load_crds()
    failed = False
    for file in files:
        with open(file, encoding="utf-8") as f:
            docs = [d for d in yaml.load_all(f, Loader=LOADER) if d is not None]
        problems = []
        for i, doc in enumerate(docs):
            items = doc.get("items", []) if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
            for j, item in enumerate(items):
                at = f"{file} document {i + 1}" + (f" item {j + 1}" if len(items) > 1 else "")
                problems += check_document(item, at, crds)
        if problems:
            failed = True
            print("\n".join(problems))
        else:
            print(f"ok {file}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
