#!/usr/bin/env python3
"""Generates the tensor-fusion.ai/v1 API from its one description (tensor-fusion.ai_v1.yaml).

  gen_api.py crds DESCRIPTION OUT_DIR         CRDs, one tensor-fusion.ai_<plural>.yaml per kind
  gen_api.py cpp DESCRIPTION OUT_H OUT_CPP     C++ types and their JSON conversion
  gen_api.py json IN_YAML OUT_JSON             a YAML manifest as JSON (for the C++ tests)

The CRDs install on Kubernetes 1.20 and on current releases: structural schemas, no CEL, no
empty-string defaults. The description is checked as it is read; any mistake stops the build
with the type and field named.
"""
import json
import os
import re
import sys

import yaml

QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")

# Builtin scalar: (openAPI schema, C++ type)
SCALARS = {
    "string": ({"type": "string"}, "std::string"),
    "bool": ({"type": "boolean"}, "bool"),
    "int": ({"type": "integer"}, "int64_t"),
    "int32": ({"type": "integer", "format": "int32"}, "int32_t"),
    "int64": ({"type": "integer", "format": "int64"}, "int64_t"),
    "uint32": ({"type": "integer", "format": "int32"}, "uint32_t"),
    "uint64": ({"type": "integer", "format": "int64"}, "uint64_t"),
    "quantity": ({"anyOf": [{"type": "integer"}, {"type": "string"}], "pattern": QUANTITY_PATTERN,
                  "x-kubernetes-int-or-string": True}, "Quantity"),
    "time": ({"type": "string", "format": "date-time"}, "std::string"),
    "duration": ({"type": "string"}, "std::string"),
    "raw": ({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, "nlohmann::json"),
}
FIELD_KEYS = {"type", "required", "description", "default", "enum", "minimum", "maximum", "pattern",
              "format", "minLength", "maxLength", "cpp"}
SCHEMA_KEYS = ["description", "default", "enum", "minimum", "maximum", "pattern", "format",
               "minLength", "maxLength"]
TYPE_KEYS = {"description", "fields", "scalar", "enum", "raw", "mapType", "crd", "keepUnknown"}
KIND_KEYS = {"kind", "cpp", "plural", "singular", "scope", "spec", "status", "printerColumns",
             "statusSubresource"}
CPP_KEYWORDS = {"namespace", "continue", "default", "class", "template", "delete", "new",
                "operator", "private", "public", "register", "union", "virtual", "auto"}


class DescriptionError(Exception):
    pass


def fail(where, why):
    raise DescriptionError(f"{where}: {why}")


def load(path):
    with open(path) as f:
        api = yaml.safe_load(f)
    types = api.get("types") or {}
    for name, t in types.items():
        extra = set(t) - TYPE_KEYS
        if extra:
            fail(name, f"unknown keys {sorted(extra)}")
        if sum(k in t for k in ("fields", "scalar", "raw")) != 1:
            fail(name, "needs exactly one of fields, scalar, raw")
        if "scalar" in t and t["scalar"] not in SCALARS:
            fail(name, f"unknown scalar {t['scalar']}")
        for fname, f in (t.get("fields") or {}).items():
            where = f"{name}.{fname}"
            if not isinstance(f, dict) or "type" not in f:
                fail(where, "needs a type")
            extra = set(f) - FIELD_KEYS
            if extra:
                fail(where, f"unknown keys {sorted(extra)}")
            parse_type(f["type"], types, where)
            if f.get("default") == "":
                fail(where, 'default "" is refused by a 1.20 apiserver; leave the default out')
    names = set()
    for k in api["kinds"]:
        extra = set(k) - KIND_KEYS
        if extra:
            fail(k.get("kind", "?"), f"unknown keys {sorted(extra)}")
        if k["scope"] not in ("Cluster", "Namespaced"):
            fail(k["kind"], "scope must be Cluster or Namespaced")
        for part in ("spec", "status"):
            if part in k and "fields" not in types.get(k[part], {}):
                fail(k["kind"], f"{part} type {k[part]} is not a struct")
        if k["cpp"] in names:
            fail(k["kind"], "duplicate C++ name")
        names.add(k["cpp"])
    return api


def parse_type(expr, types, where):
    """'[]T' → ('list', inner); 'map[T]' → ('map', inner); scalar or named → ('name', expr)."""
    if expr.startswith("[]"):
        return ("list", parse_type(expr[2:], types, where))
    m = re.fullmatch(r"map\[(.+)\]", expr)
    if m:
        return ("map", parse_type(m.group(1), types, where))
    if expr not in SCALARS and expr not in types:
        fail(where, f"unknown type {expr}")
    return ("name", expr)


# ------------------------------------------------------------------------------------ CRDs

def schema_of(t, types):
    kind, inner = t
    if kind == "list":
        return {"type": "array", "items": schema_of(inner, types)}
    if kind == "map":
        return {"type": "object", "additionalProperties": schema_of(inner, types)}
    if inner in SCALARS:
        return json.loads(json.dumps(SCALARS[inner][0]))
    td = types[inner]
    if "scalar" in td:
        s = json.loads(json.dumps(SCALARS[td["scalar"]][0]))
        for key in ("enum", "description"):
            if key in td:
                s[key] = td[key]
        return s
    if td.get("raw"):
        s = json.loads(json.dumps(SCALARS["raw"][0]))
        if "description" in td:
            s["description"] = td["description"]
        return s
    return struct_schema(inner, types)


def struct_schema(name, types):
    td = types[name]
    s = {"type": "object"}
    if td.get("description"):
        s["description"] = td["description"]
    props, required = {}, []
    for fname, f in (td.get("fields") or {}).items():
        fs = schema_of(parse_type(f["type"], types, f"{name}.{fname}"), types)
        for key in SCHEMA_KEYS:
            if key in f:
                fs[key] = f[key]
        props[fname] = fs
        if f.get("required"):
            required.append(fname)
    if props:
        s["properties"] = props
    if required:
        s["required"] = sorted(required)
    if td.get("mapType"):
        s["x-kubernetes-map-type"] = td["mapType"]
    return s


def crd_of(k, api):
    types = api["types"]
    props = {
        "apiVersion": {"type": "string", "description": "The API version of this object."},
        "kind": {"type": "string", "description": "The kind of this object."},
        "metadata": {"type": "object"},
    }
    for part in ("spec", "status"):
        if part in k:
            props[part] = struct_schema(k[part], types)
    version = {
        "name": api["version"],
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": {
            "description": f"{k['kind']} of {api['group']}/{api['version']}: see docs/api.md.",
            "type": "object", "properties": props}},
    }
    if k.get("statusSubresource", True):
        version["subresources"] = {"status": {}}
    if k.get("printerColumns"):
        version["additionalPrinterColumns"] = [
            {"name": c["name"], "type": c["type"], "jsonPath": c["jsonPath"]} for c in k["printerColumns"]]
    singular = k.get("singular", k["kind"].lower())
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{k['plural']}.{api['group']}"},
        "spec": {
            "group": api["group"],
            "names": {"kind": k["kind"], "listKind": k["kind"] + "List", "plural": k["plural"],
                      "singular": singular},
            "scope": k["scope"],
            "versions": [version],
        },
    }


class _TextTimesLoader(yaml.SafeLoader):
    """Reads times as the text they are, as the apiserver does."""


_TextTimesLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in rs if tag != "tag:yaml.org,2002:timestamp"]
    for ch, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def write_crds(api, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for k in api["kinds"]:
        text = yaml.dump(crd_of(k, api), Dumper=_Dumper, sort_keys=True, default_flow_style=False,
                         width=100)
        path = os.path.join(out_dir, f"{api['group']}_{k['plural']}.yaml")
        with open(path, "w") as f:
            f.write("# Generated by src/k8s/api/gen_api.py from src/k8s/api/tensor-fusion.ai_v1.yaml;"
                    " do not edit.\n---\n" + text)


# ------------------------------------------------------------------------------------ C++

def cpp_member(fname, f):
    if "cpp" in f:
        return f["cpp"]
    name = re.sub(r"[^A-Za-z0-9]+(.)", lambda m: m.group(1).upper(), fname)
    return name + "_" if name in CPP_KEYWORDS else name


def cpp_type(t, types):
    kind, inner = t
    if kind == "list":
        return f"std::vector<{cpp_type(inner, types)}>"
    if kind == "map":
        return f"std::map<std::string, {cpp_type(inner, types)}>"
    return SCALARS[inner][1] if inner in SCALARS else inner


def referenced(t):
    kind, inner = t
    return referenced(inner) if kind in ("list", "map") else {inner}


def struct_order(api):
    """Structs so that each comes after the ones it holds by value."""
    types = api["types"]
    structs = [n for n, t in types.items() if "fields" in t]
    done, order, visiting = set(), [], set()

    def visit(n):
        if n in done:
            return
        if n in visiting:
            fail(n, "types refer to each other in a cycle")
        visiting.add(n)
        for fname, f in types[n]["fields"].items():
            for r in referenced(parse_type(f["type"], types, f"{n}.{fname}")):
                if r in types and "fields" in types[r]:
                    visit(r)
        visiting.discard(n)
        done.add(n)
        order.append(n)

    for n in structs:
        visit(n)
    return order


def comment(text, indent=""):
    return "".join(f"{indent}// {line}\n" for line in text.strip().splitlines()) if text else ""


def write_cpp(api, out_h, out_cpp):
    types = api["types"]
    order = struct_order(api)
    h = ["// Generated by src/k8s/api/gen_api.py from src/k8s/api/tensor-fusion.ai_v1.yaml; do not edit.",
         "// The tensor-fusion.ai/v1 kinds as C++ structs, with nlohmann::json conversion that keeps the",
         "// JSON field names and omits unset optional fields. Decode with tf::k8s::api::decode<T>().",
         "#pragma once", "",
         "#include <cstdint>", "#include <map>", "#include <optional>", "#include <string>",
         "#include <string_view>", "#include <vector>", "",
         "#include <nlohmann/json.hpp>", "",
         '#include "k8s/api/codec.h"', '#include "k8s/api/quantity.h"', '#include "k8s/api/resource_ref.h"',
         "", "namespace tf::k8s::api::v1 {", "",
         f'inline constexpr std::string_view kGroup = "{api["group"]}";',
         f'inline constexpr std::string_view kVersion = "{api["version"]}";',
         f'inline constexpr std::string_view kApiVersion = "{api["group"]}/{api["version"]}";', ""]
    for name, td in types.items():
        if "scalar" in td:
            note = f"  // one of: {', '.join(map(str, td['enum']))}" if "enum" in td else ""
            h.append(f"using {name} = {SCALARS[td['scalar']][1]};{note}")
        elif td.get("raw"):
            h.append(f"using {name} = nlohmann::json;  // {td.get('description', 'free-form')}")
    h.append("")
    c = ["// Generated by src/k8s/api/gen_api.py from src/k8s/api/tensor-fusion.ai_v1.yaml; do not edit.",
         f'#include "{os.path.basename(out_h)}"', "", "namespace tf::k8s::api::v1 {", ""]

    for name in order:
        td = types[name]
        h.append(comment(td.get("description", "")).rstrip("\n") or f"// {name}")
        h.append(f"struct {name} {{")
        for fname, f in td["fields"].items():
            t = cpp_type(parse_type(f["type"], types, name), types)
            if not f.get("required"):
                t = f"std::optional<{t}>"
            doc = f"  // {f['description']}" if f.get("description") else ""
            h.append(f"  {t} {cpp_member(fname, f)};{doc}")
        if td.get("keepUnknown"):
            h.append("  nlohmann::json extra = nlohmann::json::object();  // fields not named above, kept as read")
        h.append(f"  bool operator==(const {name}&) const = default;")
        h.append("};")
        h.append(f"void to_json(nlohmann::json& j, const {name}& v);")
        h.append(f"void from_json(const nlohmann::json& j, {name}& v);")
        h.append("")
        c.append(f"void to_json(nlohmann::json& j, const {name}& v) {{")
        c.append("  j = nlohmann::json::object();" if not td.get("keepUnknown") else "  j = v.extra;")
        for fname, f in td["fields"].items():
            c.append(f'  putField(j, "{fname}", v.{cpp_member(fname, f)});')
        c.append("}")
        c.append(f"void from_json(const nlohmann::json& j, {name}& v) {{")
        c.append("  expectObject(j);")
        for fname, f in td["fields"].items():
            c.append(f'  getField(j, "{fname}", v.{cpp_member(fname, f)});')
        if td.get("keepUnknown"):
            known = ", ".join(f'"{fname}"' for fname in td["fields"])
            c.append(f"  v.extra = unknownFields(j, {{{known}}});")
        c.append("}")
        c.append("")

    for k in api["kinds"]:
        n = k["cpp"]
        ns = "true" if k["scope"] == "Namespaced" else "false"
        h.append(f"// {k['kind']} ({k['plural']}, {k['scope']}-scoped).")
        h.append(f"struct {n} {{")
        h.append("  static const ResourceRef kResource;")
        h.append(f'  std::string apiVersion = "{api["group"]}/{api["version"]}";')
        h.append(f'  std::string kind = "{k["kind"]}";')
        h.append("  ObjectMeta metadata;")
        for part in ("spec", "status"):
            if part in k:
                h.append(f"  std::optional<{k[part]}> {part};")
        h.append(f"  bool operator==(const {n}&) const = default;")
        h.append("};")
        h.append(f"void to_json(nlohmann::json& j, const {n}& v);")
        h.append(f"void from_json(const nlohmann::json& j, {n}& v);")
        h.append(f"struct {n}List {{")
        h.append(f'  std::string apiVersion = "{api["group"]}/{api["version"]}";')
        h.append(f'  std::string kind = "{k["kind"]}List";')
        h.append("  ListMeta metadata;")
        h.append(f"  std::vector<{n}> items;")
        h.append("};")
        h.append(f"void to_json(nlohmann::json& j, const {n}List& v);")
        h.append(f"void from_json(const nlohmann::json& j, {n}List& v);")
        h.append("")
        c.append(f'const ResourceRef {n}::kResource{{"{api["group"]}", "{api["version"]}", "{k["plural"]}", '
                 f'"{k["kind"]}", {ns}}};')
        for suffix, fields in (("", ["metadata"] + [p for p in ("spec", "status") if p in k]),
                               ("List", ["metadata", "items"])):
            c.append(f"void to_json(nlohmann::json& j, const {n}{suffix}& v) {{")
            c.append("  j = nlohmann::json::object();")
            c.append('  putField(j, "apiVersion", v.apiVersion);')
            c.append('  putField(j, "kind", v.kind);')
            for p in fields:
                c.append(f'  putField(j, "{p}", v.{p});')
            c.append("}")
            c.append(f"void from_json(const nlohmann::json& j, {n}{suffix}& v) {{")
            c.append("  expectObject(j);")
            c.append(f'  expectKind(j, kApiVersion, "{k["kind"]}{suffix}");')
            for p in fields:
                c.append(f'  getFieldOrDefault(j, "{p}", v.{p});' if p in ("metadata", "items")
                         else f'  getField(j, "{p}", v.{p});')
            c.append("}")
        c.append("")

    h.append("// Every kind: X(CppName). TF_K8S_API_V1_KINDS(X) expands X once per kind.")
    h.append("#define TF_K8S_API_V1_KINDS(X) " + " ".join(f"X({k['cpp']})" for k in api["kinds"]))
    h.append("")
    h.append("}  // namespace tf::k8s::api::v1")
    c.append("}  // namespace tf::k8s::api::v1")
    for path, lines in ((out_h, h), (out_cpp, c)):
        text = "\n".join(lines) + "\n"
        if not os.path.exists(path) or open(path).read() != text:
            with open(path, "w") as f:
                f.write(text)


def main(argv):
    try:
        if len(argv) == 4 and argv[1] == "crds":
            write_crds(load(argv[2]), argv[3])
        elif len(argv) == 5 and argv[1] == "cpp":
            write_cpp(load(argv[2]), argv[3], argv[4])
        elif len(argv) == 4 and argv[1] == "json":
            with open(argv[2]) as f:
                doc = yaml.load(f, Loader=_TextTimesLoader)
            with open(argv[3], "w") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
        else:
            sys.stderr.write(__doc__)
            return 2
    except DescriptionError as e:
        sys.stderr.write(f"gen_api.py: {argv[2]}: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
