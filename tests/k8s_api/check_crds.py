#!/usr/bin/env python3
"""Checks the checked-in CRDs (deploy/crds) and samples (deploy/samples) without an apiserver.

  check_crds.py CRD_DIR SAMPLE_DIR

CRDs: openAPIV3Schema is structural (every node has a type, except int-or-string and
preserve-unknown nodes), no CEL (x-kubernetes-validations, 1.25+), no default "" (refused by
1.20), and every printer column's jsonPath names a field of the schema.
Samples: each validates against its kind's schema (types, required, enum, bounds, pattern,
and no field the apiserver would prune), so they apply unchanged.
Prints every problem and exits 1 if there is any.
"""
import glob
import os
import re
import sys

import yaml

problems = []


def walk_schema(node, where):
    if not isinstance(node, dict):
        return
    if "x-kubernetes-validations" in node:
        problems.append(f"{where}: x-kubernetes-validations (CEL) does not install on 1.20")
    if node.get("default") == "":
        problems.append(f'{where}: default "" is refused by a 1.20 apiserver')
    exempt = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    if "type" not in node and not exempt:
        problems.append(f"{where}: no type (not structural)")
    for name, child in (node.get("properties") or {}).items():
        walk_schema(child, f"{where}.{name}")
    if "items" in node:
        walk_schema(node["items"], f"{where}[]")
    if isinstance(node.get("additionalProperties"), dict):
        walk_schema(node["additionalProperties"], f"{where}{{}}")
    for i, alt in enumerate(node.get("anyOf") or []):
        if set(alt) - {"type"}:
            problems.append(f"{where}.anyOf[{i}]: only types may appear under anyOf in a structural schema")


def resolve(schema, json_path):
    """The schema node a printer column's simple JSONPath names, or None."""
    if json_path.startswith(".metadata."):
        return {"type": "string"} if json_path.count(".") == 2 else None
    node = schema
    for part in re.findall(r"\.([^.\[]+)|\[\*\]", json_path):
        if part == "":  # [*]
            if node.get("type") != "array":
                return None
            node = node["items"]
            continue
        if node.get("type") == "array":
            return None  # a list needs [*] before its items' fields
        props = node.get("properties") or {}
        if part not in props:
            return None
        node = props[part]
    return node


def validate(value, schema, where):
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object")
        return
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            problems.append(f"{where}: expected an integer or a string")
        elif isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{where}: {value!r} does not match the quantity pattern")
        return
    t = schema.get("type")
    ok = {"object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
          "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
          "integer": lambda v: isinstance(v, int) and not isinstance(v, bool)}[t](value)
    if not ok:
        problems.append(f"{where}: expected {t}, got {type(value).__name__}")
        return
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{where}: {value} is below {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        problems.append(f"{where}: {value} is above {schema['maximum']}")
    if t == "string" and "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if t == "array":
        for i, item in enumerate(value):
            validate(item, schema["items"], f"{where}[{i}]")
    if t == "object" and "properties" in schema:
        for req in schema.get("required", []):
            if req not in value:
                problems.append(f"{where}: required field {req} is missing")
        for key, item in value.items():
            if key not in schema["properties"]:
                problems.append(f"{where}.{key}: not in the schema (the apiserver would drop it)")
            else:
                validate(item, schema["properties"][key], f"{where}.{key}")
    elif t == "object" and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            validate(item, schema["additionalProperties"], f"{where}[{key}]")


class TextTimesLoader(yaml.SafeLoader):
    pass


TextTimesLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in rs if tag != "tag:yaml.org,2002:timestamp"]
    for ch, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def main(crd_dir, sample_dir):
    schemas = {}
    crd_files = sorted(glob.glob(os.path.join(crd_dir, "*.yaml")))
    if len(crd_files) != 12:
        problems.append(f"{crd_dir}: {len(crd_files)} CRDs, expected the 12 tensor-fusion.ai kinds")
    for path in crd_files:
        crd = yaml.safe_load(open(path))
        name = os.path.basename(path)
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            walk_schema(schema, f"{name}:{version['name']}")
            for col in version.get("additionalPrinterColumns", []):
                if resolve(schema, col["jsonPath"]) is None:
                    problems.append(f"{name}: printer column {col['name']!r} points at "
                                    f"{col['jsonPath']}, which is not in the schema")
            schemas[crd["spec"]["names"]["kind"]] = schema
    samples = sorted(glob.glob(os.path.join(sample_dir, "*.yaml")))
    seen = set()
    for path in samples:
        doc = yaml.load(open(path), Loader=TextTimesLoader)
        kind = doc.get("kind")
        if kind not in schemas:
            problems.append(f"{path}: kind {kind!r} has no CRD")
            continue
        seen.add(kind)
        validate(doc, schemas[kind], os.path.basename(path))
    for kind in sorted(set(schemas) - seen):
        problems.append(f"{sample_dir}: no sample of {kind}")
    for p in problems:
        print(p)
    print(f"check_crds: {len(crd_files)} CRDs, {len(samples)} samples, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
