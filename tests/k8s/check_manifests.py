"""Reads Kubernetes manifests as the API server does and checks them.

Kubernetes reads YAML 1.1 (go-yaml v2 under sigs.k8s.io/yaml): an unquoted
all-digit value is an integer, `on`/`yes` are booleans. PyYAML resolves
plain scalars by the same YAML 1.1 rules, so a digest written as
`sha256: 0000...` is read here as the integer 0, as the API server reads it,
and refused where the kind's schema wants a string.

Each kind's schema below is the subset of its documented API that the
project's manifests use, with the field types and required fields of the
published CRD or built-in type; a field not in it is refused, as
`kubectl apply` (strict field validation) refuses an unknown field.

Usage: check_manifests.py FILE...   (prints `ok FILE` or every problem; exit 1 on any)
"""

import sys

import yaml

STR, INT, BOOL, NUM = "string", "integer", "boolean", "number"
ANY = "any"  # x-kubernetes-preserve-unknown-fields: checked by `canary-router check`


def obj(fields, required=()):
    return {"type": "object", "fields": fields, "required": set(required)}


def lst(item):
    return {"type": "array", "items": item}


def smap(value=STR):
    return {"type": "map", "values": value}


METADATA = obj({"name": STR, "namespace": STR, "labels": smap(), "annotations": smap()}, ["name"])
SELECTOR = obj({"matchLabels": smap()})
TARGET_REF = obj({"group": STR, "kind": STR, "name": STR, "namespace": STR}, ["kind", "name"])
STRING_MATCH = obj({"exact": STR, "prefix": STR, "regex": STR})
DESTINATION = obj({"host": STR, "subset": STR, "port": obj({"number": INT})}, ["host"])

SCHEMAS = {
    # extensions.istio.io/v1alpha1 WasmPlugin
    ("extensions.istio.io", "WasmPlugin"): obj({
        "selector": SELECTOR,
        "targetRef": TARGET_REF,
        "targetRefs": lst(TARGET_REF),
        "url": STR,
        "sha256": STR,
        "imagePullPolicy": {"enum": ["UNSPECIFIED_POLICY", "IfNotPresent", "Always"]},
        "imagePullSecret": STR,
        "pluginConfig": ANY,
        "pluginName": STR,
        "phase": {"enum": ["UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"]},
        "priority": INT,
        "failStrategy": {"enum": ["FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"]},
        "vmConfig": obj({"env": lst(obj({"name": STR, "value": STR, "valueFrom": STR}, ["name"]))}),
        "type": {"enum": ["UNSPECIFIED_PLUGIN_TYPE", "HTTP", "NETWORK"]},
    }, ["url"]),
    # networking.istio.io/v1 VirtualService
    ("networking.istio.io", "VirtualService"): obj({
        "hosts": lst(STR),
        "gateways": lst(STR),
        "http": lst(obj({
            "name": STR,
            "match": lst(obj({
                "name": STR,
                "uri": STRING_MATCH,
                "headers": smap(STRING_MATCH),
                "queryParams": smap(STRING_MATCH),
            })),
            "route": lst(obj({"destination": DESTINATION, "weight": INT}, ["destination"])),
            "mirror": DESTINATION,
        })),
    }),
    # networking.istio.io/v1 DestinationRule
    ("networking.istio.io", "DestinationRule"): obj({
        "host": STR,
        "subsets": lst(obj({"name": STR, "labels": smap()}, ["name"])),
    }, ["host"]),
    # networking.istio.io/v1 Gateway
    ("networking.istio.io", "Gateway"): obj({
        "selector": smap(),
        "servers": lst(obj({
            "port": obj({"number": INT, "name": STR, "protocol": STR}, ["number", "protocol"]),
            "hosts": lst(STR),
        }, ["port", "hosts"])),
    }),
    # gateway.networking.k8s.io/v1 Gateway
    ("gateway.networking.k8s.io", "Gateway"): obj({
        "gatewayClassName": STR,
        "listeners": lst(obj({
            "name": STR, "port": INT, "protocol": STR, "hostname": STR,
            "allowedRoutes": obj({"namespaces": obj({"from": {"enum": ["All", "Same", "Selector"]}})}),
        }, ["name", "port", "protocol"])),
    }, ["gatewayClassName", "listeners"]),
    # gateway.networking.k8s.io/v1 HTTPRoute
    ("gateway.networking.k8s.io", "HTTPRoute"): obj({
        "parentRefs": lst(obj({"group": STR, "kind": STR, "name": STR, "namespace": STR, "sectionName": STR,
                               "port": INT}, ["name"])),
        "hostnames": lst(STR),
        "rules": lst(obj({
            "matches": lst(obj({
                "path": obj({"type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]}, "value": STR}),
                "headers": lst(obj({"type": {"enum": ["Exact", "RegularExpression"]}, "name": STR, "value": STR},
                                   ["name", "value"])),
            })),
            "backendRefs": lst(obj({"group": STR, "kind": STR, "name": STR, "namespace": STR, "port": INT,
                                    "weight": INT}, ["name"])),
        })),
    }),
    # gateway.networking.k8s.io/v1 GatewayClass (cluster-scoped)
    ("gateway.networking.k8s.io", "GatewayClass"): obj({
        "controllerName": STR,
        "description": STR,
        "parametersRef": obj({"group": STR, "kind": STR, "name": STR, "namespace": STR}, ["group", "kind", "name"]),
    }, ["controllerName"]),
    # gateway.envoyproxy.io/v1alpha1 EnvoyProxy (its bootstrap part)
    ("gateway.envoyproxy.io", "EnvoyProxy"): obj({
        "bootstrap": obj({"type": {"enum": ["Merge", "Replace", "JSONPatch"]}, "value": STR}),
    }),
    # gateway.networking.k8s.io/v1beta1 ReferenceGrant
    ("gateway.networking.k8s.io", "ReferenceGrant"): obj({
        "from": lst(obj({"group": STR, "kind": STR, "namespace": STR}, ["group", "kind", "namespace"])),
        "to": lst(obj({"group": STR, "kind": STR, "name": STR}, ["group", "kind"])),
    }, ["from", "to"]),
    # gateway.envoyproxy.io/v1alpha1 EnvoyExtensionPolicy (its wasm part)
    ("gateway.envoyproxy.io", "EnvoyExtensionPolicy"): obj({
        "targetRefs": lst(obj({"group": STR, "kind": STR, "name": STR}, ["group", "kind", "name"])),
        "wasm": lst(obj({
            "name": STR,
            "rootID": STR,
            "code": obj({
                "type": {"enum": ["HTTP", "Image", "ConfigMap"]},
                "http": obj({"url": STR}, ["url"]),
                "image": obj({"url": STR, "pullSecretRef": obj({"name": STR, "namespace": STR, "kind": STR},
                                                                ["name"])}, ["url"]),
                "sha256": STR,
                "pullPolicy": {"enum": ["IfNotPresent", "Always"]},
            }, ["type"]),
            "config": ANY,
            "failOpen": BOOL,
            "env": obj({"hostKeys": lst(STR)}),
        }, ["code"])),
    }),
    # install.istio.io/v1alpha1 IstioOperator (the mesh config part)
    ("install.istio.io", "IstioOperator"): obj({
        "meshConfig": obj({"defaultConfig": obj({"extraStatTags": lst(STR)})}),
    }),
    # networking.k8s.io/v1 Ingress
    ("networking.k8s.io", "Ingress"): obj({
        "ingressClassName": STR,
        "defaultBackend": obj({"service": obj({"name": STR, "port": obj({"number": INT, "name": STR})}, ["name"])}),
        "rules": lst(obj({
            "host": STR,
            "http": obj({"paths": lst(obj({
                "path": STR,
                "pathType": {"enum": ["Exact", "Prefix", "ImplementationSpecific"]},
                "backend": obj({"service": obj({
                    "name": STR, "port": obj({"number": INT, "name": STR})}, ["name"])}),
            }, ["pathType", "backend"]))}, ["paths"]),
        })),
    }),
    # monitoring.coreos.com/v1 PrometheusRule
    ("monitoring.coreos.com", "PrometheusRule"): obj({
        "groups": lst(obj({
            "name": STR,
            "interval": STR,
            "rules": lst(obj({
                "alert": STR, "record": STR, "expr": STR, "for": STR,
                "labels": smap(), "annotations": smap(),
            }, ["expr"])),
        }, ["name"])),
    }),
}

API_VERSIONS = {
    "extensions.istio.io": {"v1alpha1"},
    "networking.istio.io": {"v1", "v1beta1", "v1alpha3"},
    "install.istio.io": {"v1alpha1"},
    "networking.k8s.io": {"v1"},
    "monitoring.coreos.com": {"v1"},
    "gateway.networking.k8s.io": {"v1", "v1beta1"},
    "gateway.envoyproxy.io": {"v1alpha1"},
}
CLUSTER_SCOPED = {"GatewayClass"}

def type_name(value):
    return {str: STR, bool: BOOL, int: INT, float: NUM, type(None): "null"}.get(type(value), type(value).__name__)


def article(name):
    return ("an " if name[0] in "aeiou" else "a ") + name


def check(value, schema, at, problems):
    if schema == ANY:
        return
    if isinstance(schema, str):
        ok = (
            (schema == STR and isinstance(value, str))
            or (schema == BOOL and isinstance(value, bool))
            or (schema == INT and isinstance(value, int) and not isinstance(value, bool))
            or (schema == NUM and isinstance(value, (int, float)) and not isinstance(value, bool))
        )
        if not ok:
            problems.append(f"{at}: {value!r} is {article(type_name(value))}, not {article(schema)} (YAML 1.1: quote it)")
        return
    if "enum" in schema:
        if value not in schema["enum"]:
            problems.append(f"{at}: {value!r} is not one of {', '.join(schema['enum'])}")
        return
    kind = schema["type"]
    if kind == "array":
        if not isinstance(value, list):
            problems.append(f"{at}: {article(type_name(value))}, not a list")
            return
        for i, item in enumerate(value):
            check(item, schema["items"], f"{at}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{at}: {article(type_name(value))}, not a map")
            return
        for key, item in value.items():
            check(key, STR, f"{at} key", problems)
            check(item, schema["values"], f"{at}.{key}", problems)
    else:
        if not isinstance(value, dict):
            problems.append(f"{at}: {article(type_name(value))}, not an object")
            return
        for key in sorted(schema["required"] - set(value)):
            problems.append(f"{at}: required field {key} is missing")
        for key, item in value.items():
            if key not in schema["fields"]:
                problems.append(f"{at}: unknown field {key!r}")
            else:
                check(item, schema["fields"][key], f"{at}.{key}", problems)


def check_document(doc, where):
    problems = []
    if not isinstance(doc, dict):
        return [f"{where}: not a mapping"]
    group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
    kind = doc.get("kind")
    schema = SCHEMAS.get((group, kind))
    if schema is None:
        return [f"{where}: no schema here for {doc.get('apiVersion')} {kind}"]
    if version not in API_VERSIONS[group]:
        problems.append(f"{where}: {group}/{version} does not serve {kind}")
    check(doc.get("metadata"), METADATA, f"{where} metadata", problems)
    if kind not in CLUSTER_SCOPED and not (doc.get("metadata") or {}).get("namespace"):
        problems.append(f"{where} metadata: no namespace: say where it goes")
    unknown = set(doc) - {"apiVersion", "kind", "metadata", "spec"}
    problems += [f"{where}: unknown field {key!r}" for key in sorted(unknown)]
    check(doc.get("spec"), schema, f"{where} spec", problems)
    return problems


def main(files):
    failed = False
    for file in files:
        with open(file, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        problems = []
        for i, doc in enumerate(docs):
            items = doc.get("items", []) if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
            for j, item in enumerate(items):
                where = f"{file} document {i + 1}" + (f" item {j + 1}" if len(items) > 1 else "")
                problems += check_document(item, where)
        if problems:
            failed = True
            print("\n".join(problems))
        else:
            print(f"ok {file}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
