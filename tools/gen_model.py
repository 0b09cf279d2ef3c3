#!/usr/bin/env python3
"""Generate Hearth's compiled-in FHIR R4 model from the official R4 (4.0.1) definitions.

Input (the official FHIR R4 4.0.1 definition bundles):
  profiles-resources.json, profiles-types.json  StructureDefinitions (differentials)
  search-parameters.json                        SearchParameters
  valuesets.json, v3-codesystems.json           ValueSets / CodeSystems for required bindings

Output: <out>/r4_model_data.cpp, a C++ source holding the model as a compact, line-oriented,
tab-separated text in raw string literals (chunks below 60 KB each). fhir/src/model.cpp parses it
once at start-up. Only definitions of FHIR version 4.0.1 are used (the input package also carries a
few later additions, e.g. SubscriptionStatus 4.3.0, which are skipped). Element lists are built
from each type's differential and its base type, because the input package's snapshots carry
vendor / R5 additions (see ElementBuilder and profiles/r4/README.md).

Record format (one record per line, fields separated by TAB):
  H  <fhirVersion> <source description>
  V  <vs-index> <url> <1|0 enumerable>          a required value set; followed by its codes:
  C  <system> <code> <code> ...                  codes of the set from one code system
  T  <name> <kind> <base-name> <1|0 abstract>    kind: primitive|complex|resource
  E  <path> <min> <max> <flags> <types> <binding> <contentReference>
       flags: S isSummary, M isModifier, A attribute (System.* type: no '_name' JSON form)
       types: ','-separated; 'Reference(Patient|Group)' / 'canonical(...)' carry target types;
              'SimpleQuantity' stands for Quantity constrained by the SimpleQuantity profile
       binding: vs-index of a required binding, or empty
       contentReference: the referenced element path (without '#'), or empty
  P  <bases ','> <code> <type> <url> <expression> <targets ','> <components>
       components (composite params): ';'-separated '<definition-url> <expression>'

Usage: python3 tools/gen_model.py --defs ../shared/fhir-r4 --out fhir/generated
"""
import argparse
import json
import os
import sys

FHIR_VERSION = "4.0.1"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
CHUNK_LIMIT = 60000
RAW_DELIM = "HEARTH"


def load_entries(defs, name):
    with open(os.path.join(defs, name), encoding="utf-8") as f:
        bundle = json.load(f)
    return [e["resource"] for e in bundle.get("entry", []) if "resource" in e]


def check_field(value):
    """Fields must not contain the record separators."""
    if "\t" in value or "\n" in value or "\r" in value:
        raise ValueError("field contains a tab or newline: %r" % value[:80])
    return value


# ---------------------------------------------------------------------------------------------
# Terminology: expansion of required value sets
# ---------------------------------------------------------------------------------------------
class Terminology:
    """Code systems and value sets of the spec, able to enumerate simple value sets."""

    def __init__(self, resources):
        self.code_systems = {}
        self.value_sets = {}
        for r in resources:
            url = r.get("url")
            if not url:
                continue
            if r["resourceType"] == "CodeSystem":
                # Keep the first definition of a URL; the R4 bundles carry each once.
                self.code_systems.setdefault(url, r)
            elif r["resourceType"] == "ValueSet":
                # Prefer the 4.0.1 edition when a later one was added to the package.
                if url not in self.value_sets or r.get("version") == FHIR_VERSION:
                    self.value_sets[url] = r
        self._hierarchy_cache = {}

    def hierarchy(self, system):
        """(all codes in definition order, children map) of a complete code system, or None."""
        if system in self._hierarchy_cache:
            return self._hierarchy_cache[system]
        cs = self.code_systems.get(system)
        result = None
        if cs is not None and cs.get("content") == "complete":
            codes = []
            children = {}

            def walk(concepts, parent):
                for c in concepts:
                    code = c["code"]
                    codes.append(code)
                    if parent is not None:
                        children.setdefault(parent, []).append(code)
                    for p in c.get("property", []):
                        # v3 systems may also state the hierarchy by properties.
                        if p.get("code") in ("subsumedBy", "parent") and "valueCode" in p:
                            children.setdefault(p["valueCode"], []).append(code)
                    walk(c.get("concept", []), code)

            walk(cs.get("concept", []), None)
            result = (codes, children)
        self._hierarchy_cache[system] = result
        return result

    def descendants(self, system, code):
        h = self.hierarchy(system)
        if h is None:
            return None
        _, children = h
        out = []
        seen = set()
        stack = list(reversed(children.get(code, [])))
        while stack:
            c = stack.pop()
            if c in seen:
                continue
            seen.add(c)
            out.append(c)
            stack.extend(reversed(children.get(c, [])))
        return out

    def expand_include(self, inc, depth):
        """{system: [codes]} for one compose.include / exclude, or None if not enumerable."""
        if "valueSet" in inc:
            if "system" in inc or "concept" in inc or "filter" in inc:
                return None  # intersections are not needed by the base spec
            merged = {}
            for vs_url in inc["valueSet"]:
                sub = self.expand(vs_url.split("|")[0], depth + 1)
                if sub is None:
                    return None
                for system, codes in sub.items():
                    merged.setdefault(system, [])
                    merged[system].extend(c for c in codes if c not in merged[system])
            return merged
        system = inc.get("system")
        if not system:
            return None
        if "concept" in inc:
            if "filter" in inc:
                return None
            return {system: [c["code"] for c in inc["concept"]]}
        h = self.hierarchy(system)
        if h is None:
            return None
        all_codes, _ = h
        if "filter" not in inc:
            return {system: list(all_codes)}
        selected = None
        for f in inc["filter"]:
            op, prop, value = f.get("op"), f.get("property"), f.get("value")
            if prop != "concept" or value is None:
                return None
            if op == "is-a":
                d = self.descendants(system, value)
                codes = [value] + d if d is not None and value in all_codes else None
            elif op == "descendent-of":
                codes = self.descendants(system, value)
            elif op == "is-not-a":
                d = self.descendants(system, value)
                excluded = set([value] + (d or []))
                codes = [c for c in all_codes if c not in excluded]
            else:
                return None
            if codes is None:
                return None
            selected = codes if selected is None else [c for c in selected if c in set(codes)]
        return {system: selected}

    def expand(self, url, depth=0):
        """{system: [codes]} for a value set, or None if it cannot be fully enumerated."""
        if depth > 10:
            return None
        vs = self.value_sets.get(url)
        if vs is None:
            return None
        compose = vs.get("compose")
        if not compose:
            return None
        result = {}
        for inc in compose.get("include", []):
            part = self.expand_include(inc, depth)
            if part is None:
                return None
            for system, codes in part.items():
                dst = result.setdefault(system, [])
                have = set(dst)
                for c in codes:
                    if c not in have:
                        dst.append(c)
                        have.add(c)
        for exc in compose.get("exclude", []):
            part = self.expand_include(exc, depth)
            if part is None:
                return None  # the true set is smaller than we could state: do not check it
            for system, codes in part.items():
                if system in result:
                    drop = set(codes)
                    result[system] = [c for c in result[system] if c not in drop]
        if not any(result.values()):
            return None
        return result


# ---------------------------------------------------------------------------------------------
# StructureDefinitions
# ---------------------------------------------------------------------------------------------
def type_code(t):
    """The FHIR type code of an ElementDefinition.type entry (System.* types map to their fhir-type)."""
    code = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext.get("url") == FHIR_TYPE_EXT:
                return ext.get("valueUrl") or ext.get("valueUri"), True
        raise ValueError("System type without fhir-type extension: %s" % code)
    return code, False


def type_token(t, code):
    profiles = t.get("profile", [])
    if code == "Quantity" and SD_PREFIX + "SimpleQuantity" in profiles:
        code = "SimpleQuantity"
    targets = [p[len(SD_PREFIX):] if p.startswith(SD_PREFIX) else p for p in t.get("targetProfile", [])]
    if targets:
        for tg in targets:
            if "|" in tg or "," in tg or "(" in tg or ")" in tg:
                raise ValueError("unexpected target profile %r" % tg)
        return "%s(%s)" % (code, "|".join(targets))
    return code


def element_record(el, vs_index, required_vs):
    path = el["path"]
    flags = ""
    if el.get("isSummary"):
        flags += "S"
    if el.get("isModifier"):
        flags += "M"
    tokens = []
    attribute = False
    for t in el.get("type", []):
        code, is_system = type_code(t)
        attribute = attribute or is_system
        tokens.append(type_token(t, code))
    # Resource.id is declared as System.String (fhir-type string) in the 4.0.1 definitions, but the
    # spec and the JSON schema define it as an 'id'.
    if path.endswith(".id") and path.count(".") == 1 and el.get("resource_id"):
        tokens = ["id"]
    if attribute:
        flags += "A"
    content_ref = el.get("contentReference", "")
    if content_ref:
        if not content_ref.startswith("#"):
            raise ValueError("unsupported contentReference %s" % content_ref)
        content_ref = content_ref[1:]
    elif not tokens:
        raise ValueError("element without type: %s" % path)
    binding = ""
    b = el.get("binding")
    if b and b.get("strength") == "required" and b.get("valueSet"):
        url = b["valueSet"].split("|")[0]
        if url not in vs_index:
            vs_index[url] = len(vs_index)
            required_vs.append(url)
        binding = str(vs_index[url])
    return "\t".join(["E", check_field(path), str(el["min"]), check_field(el["max"]), flags,
                      check_field(",".join(tokens)), binding, check_field(content_ref)])


def structure_definitions(defs):
    sds = []
    for name in ("profiles-types.json", "profiles-resources.json"):
        for r in load_entries(defs, name):
            if r["resourceType"] != "StructureDefinition":
                continue
            if r.get("fhirVersion") != FHIR_VERSION:
                print("skipping %s (FHIR %s)" % (r.get("name"), r.get("fhirVersion")), file=sys.stderr)
                continue
            if r.get("derivation") == "constraint" or r.get("kind") == "logical":
                continue  # profiles (SimpleQuantity, MoneyQuantity) and logical models
            sds.append(r)
    return sds


ELEMENT_FIELDS = ("min", "max", "type", "binding", "isSummary", "isModifier", "contentReference")


class ElementBuilder:
    """Builds the full element list ("snapshot") of each type from its differential and its base.

    The input package's snapshots carry non-R4 additions of its vendor (e.g. Meta.project,
    Binary.url, R5 elements of ResearchStudy / EvidenceVariable, extra reference targets), while
    the differentials are the published R4 ones (up to DROP_ELEMENTS / BINDING_FIXES below). A specialization's
    elements are those of its base type plus its differential; an inline BackboneElement / Element
    gets the id / extension (/ modifierExtension) of that type.
    """

    def __init__(self, sds):
        self.by_name = {sd["name"]: sd for sd in sds}
        self.cache = {}

    @staticmethod
    def base_name(sd):
        base = sd.get("baseDefinition", "")
        return base[len(SD_PREFIX):] if base.startswith(SD_PREFIX) else None

    @staticmethod
    def renamed(elements, old_prefix, new_prefix):
        out = []
        for e in elements:
            e = dict(e)
            assert e["path"].startswith(old_prefix + ".")
            e["path"] = new_prefix + e["path"][len(old_prefix):]
            out.append(e)
        return out

    def elements(self, name):
        if name in self.cache:
            return self.cache[name]
        sd = self.by_name[name]
        base = self.base_name(sd)
        els = self.renamed(self.elements(base), base, name) if base else []
        index = {e["path"]: e for e in els}
        for d in sd["differential"]["element"]:
            path = d["path"]
            if "." not in path:
                continue
            if path in DROP_ELEMENTS or path.rsplit(".", 1)[0] in DROP_ELEMENTS:
                continue
            fields = {k: d[k] for k in ELEMENT_FIELDS if k in d}
            if path in BINDING_FIXES:
                fields["binding"] = BINDING_FIXES[path]
            if path in index:
                index[path].update(fields)
                continue
            e = {"path": path, "isSummary": False, "isModifier": False}
            e.update(fields)
            els.append(e)
            index[path] = e
            codes = [t["code"] for t in e.get("type", [])]
            if codes in (["BackboneElement"], ["Element"]):
                for child in self.renamed(self.elements(codes[0]), codes[0], path):
                    els.append(child)
                    index[child["path"]] = child
        if name == "Resource":
            for e in els:
                if e["path"] == "Resource.id":
                    e["resource_id"] = True
        self.cache[name] = els
        return els


# Residual non-R4 content in the input package's differentials, restored to R4 4.0.1 (R4
# ResearchStudy has no studyDesign; its status is bound to research-study-status).
DROP_ELEMENTS = {"ResearchStudy.studyDesign"}
BINDING_FIXES = {
    "ResearchStudy.status": {"strength": "required",
                             "valueSet": "http://hl7.org/fhir/ValueSet/research-study-status|4.0.1"},
}


def generate(defs):
    lines = ["H\t%s\tGenerated from the official FHIR R4 %s definitions" % (FHIR_VERSION, FHIR_VERSION)]
    vs_index = {}
    required_vs = []
    type_lines = []
    resource_names = []
    sds = structure_definitions(defs)
    builder = ElementBuilder(sds)
    for sd in sds:
        kind = {"primitive-type": "primitive", "complex-type": "complex", "resource": "resource"}[sd["kind"]]
        base = sd.get("baseDefinition", "")
        base = base[len(SD_PREFIX):] if base.startswith(SD_PREFIX) else base
        abstract = "1" if sd.get("abstract") else "0"
        type_lines.append("\t".join(["T", sd["name"], kind, base, abstract]))
        if kind == "resource" and not sd.get("abstract"):
            resource_names.append(sd["name"])
        if kind == "primitive":
            continue  # a primitive's id/extension are those of Element; its value is the JSON value
        for el in builder.elements(sd["name"]):
            type_lines.append(element_record(el, vs_index, required_vs))

    terminology = Terminology(load_entries(defs, "valuesets.json") + load_entries(defs, "v3-codesystems.json"))
    vs_lines = []
    enumerable = 0
    for i, url in enumerate(required_vs):
        expansion = terminology.expand(url)
        vs_lines.append("\t".join(["V", str(i), check_field(url), "1" if expansion else "0"]))
        if expansion:
            enumerable += 1
            for system, codes in expansion.items():
                vs_lines.append("\t".join(["C", check_field(system)] + [check_field(c) for c in codes]))

    param_lines = []
    known = set(resource_names) | {"Resource", "DomainResource"}
    for sp in load_entries(defs, "search-parameters.json"):
        if sp["resourceType"] != "SearchParameter" or sp.get("version") != FHIR_VERSION:
            if sp.get("resourceType") == "SearchParameter":
                print("skipping search parameter %s (version %s)" % (sp.get("id"), sp.get("version")),
                      file=sys.stderr)
            continue
        bases = [b for b in sp.get("base", []) if b in known]
        if not bases:
            continue
        for c in sp.get("component", []):
            if ";" in c.get("expression", "") or " " in c["definition"]:
                raise ValueError("component of %s cannot be encoded" % sp["id"])
        components = ";".join("%s %s" % (c["definition"], c.get("expression", ""))
                              for c in sp.get("component", []))
        param_lines.append("\t".join([
            "P", ",".join(bases), check_field(sp["code"]), check_field(sp["type"]), check_field(sp["url"]),
            check_field(sp.get("expression", "")), ",".join(sp.get("target", [])), check_field(components)]))

    stats = {
        "resources": len(resource_names),
        "required_value_sets": len(required_vs),
        "enumerable_value_sets": enumerable,
        "search_parameters": len(param_lines),
    }
    return lines + vs_lines + type_lines + param_lines, stats


def write_cpp(lines, out_dir, defs_label):
    chunks = []
    current = []
    size = 0
    for line in lines:
        if ")" + RAW_DELIM + '"' in line:
            raise ValueError("data contains the raw-string delimiter")
        n = len(line.encode("utf-8")) + 1
        if size + n > CHUNK_LIMIT and current:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(line + "\n")
        size += n
    if current:
        chunks.append("".join(current))

    out = []
    out.append("// Generated by tools/gen_model.py from FHIR R4 4.0.1 (%s) -- do not edit.\n" % defs_label)
    out.append("// The R4 model (types, elements, required value sets, search parameters) as a compact\n")
    out.append("// tab-separated text; the record format is documented in tools/gen_model.py and parsed by\n")
    out.append("// fhir/src/model.cpp. Regenerate: python3 tools/gen_model.py --defs ../shared/fhir-r4 --out fhir/generated\n")
    out.append("#include <cstddef>\n#include <string_view>\n\n")
    out.append("namespace hearth::fhir::generated {\n\n")
    out.append("extern const std::string_view kR4ModelChunks[];\nextern const std::size_t kR4ModelChunkCount;\n\n")
    out.append("const std::string_view kR4ModelChunks[] = {\n")
    for c in chunks:
        out.append("    std::string_view(R\"%s(%s)%s\", %d),\n" % (RAW_DELIM, c, RAW_DELIM, len(c.encode("utf-8"))))
    out.append("};\n\n")
    out.append("const std::size_t kR4ModelChunkCount = sizeof(kR4ModelChunks) / sizeof(kR4ModelChunks[0]);\n\n")
    out.append("}  // namespace hearth::fhir::generated\n")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "r4_model_data.cpp")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(out))
    return path, len(chunks)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--defs", required=True, help="directory with the FHIR R4 4.0.1 definition bundles")
    ap.add_argument("--out", required=True, help="output directory (fhir/generated)")
    args = ap.parse_args()
    lines, stats = generate(args.defs)
    path, nchunks = write_cpp(lines, args.out, "profiles-resources.json, profiles-types.json, "
                              "search-parameters.json, valuesets.json, v3-codesystems.json")
    stats["chunks"] = nchunks
    stats["bytes"] = os.path.getsize(path)
    print("wrote %s: %s" % (path, ", ".join("%s=%s" % kv for kv in stats.items())))


if __name__ == "__main__":
    main()
