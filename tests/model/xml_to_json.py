#!/usr/bin/env python3
"""Convert FHIR R4 XML resources to FHIR JSON (test-fixture helper, not product code).

Made the fixtures in tests/model/examples/official/ from the official FHIRPath test-suite inputs
that are published only as XML (../shared/fhir-r4/test-cases/fhirpath/*.xml). Repeating elements,
primitive JSON types, choice names and `_name` extension forms follow Hearth's generated model
(fhir/generated/r4_model_data.cpp). Check the output against the official JSON schema too
(tests/schema/validate.mjs).

Usage: python3 tests/model/xml_to_json.py --out tests/model/examples/official FILE.xml...
"""
import argparse
import json
import os
import re
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "..", "fhir", "generated", "r4_model_data.cpp")
FHIR_NS = "{http://hl7.org/fhir}"


class Model:
    def __init__(self, path):
        self.types, self.children = {}, {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = re.sub(r'^    std::string_view\(R"HEARTH\(', "", line.rstrip("\n"))
                fields = line.split("\t")
                if fields[0] == "T" and len(fields) == 5:
                    self.types[fields[1]] = fields[2]
                elif fields[0] == "E" and len(fields) == 8:
                    self.children.setdefault(fields[1].rsplit(".", 1)[0], []).append(fields)

    @staticmethod
    def type_code(token):
        token = token.split("(")[0]
        return "Quantity" if token == "SimpleQuantity" else token

    def is_primitive(self, type_name):
        return self.types.get(type_name) == "primitive"

    def find(self, node, name):
        """(element record, chosen type, child node) for XML element `name` under `node`."""
        for rec in self.children.get(node, []):
            elem = rec[1].rsplit(".", 1)[1]
            types = [self.type_code(t) for t in rec[5].split(",")] if rec[5] else []
            if elem == name and not elem.endswith("[x]"):
                chosen = types[0] if types else "BackboneElement"
                if rec[7]:
                    return rec, chosen, rec[7]
                return rec, chosen, rec[1] if chosen in ("BackboneElement", "Element") else chosen
            if elem.endswith("[x]") and name.startswith(elem[:-3]):
                for t in types:
                    if elem[:-3] + t[0].upper() + t[1:] == name:
                        return rec, t, t
        raise KeyError("%s.%s is not in the model" % (node, name))


def primitive_value(type_name, text):
    if type_name == "boolean":
        return text == "true"
    if type_name in ("integer", "unsignedInt", "positiveInt"):
        return int(text)
    if type_name == "decimal":
        return float(text) if any(c in text for c in ".eE") else int(text)
    return text


def xhtml(element):
    element.tail = None
    text = ET.tostring(element, encoding="unicode")
    text = re.sub(r"\s*xmlns(:\w+)?=\"[^\"]*\"", "", text)
    text = re.sub(r"<(/?)[A-Za-z_][\w.-]*:", r"<\1", text)  # drop namespace prefixes (html:, ns0:)
    return text.replace("<div", '<div xmlns="http://www.w3.org/1999/xhtml"', 1)


def convert_children(model, element, node, out):
    for child in element:
        if not isinstance(child.tag, str) or not child.tag.startswith("{"):
            continue  # comments, processing instructions
        name = child.tag.split("}", 1)[1]
        if name == "div":
            out["div"] = xhtml(child)
            continue
        rec, type_name, child_node = model.find(node, name)
        repeats = rec[3] != "1"
        if model.is_primitive(type_name):
            value = child.get("value")
            value = primitive_value(type_name, value) if value is not None else None
            ext = {}
            if child.get("id"):
                ext["id"] = child.get("id")
            if any(isinstance(c.tag, str) for c in child):
                convert_children(model, child, "Element", ext)
            if repeats:
                out.setdefault(name, []).append(value)
                out.setdefault("_" + name, []).append(ext or None)
            else:
                if value is not None:
                    out[name] = value
                if ext:
                    out["_" + name] = ext
            continue
        if type_name == "Resource":
            inner = next(c for c in child if isinstance(c.tag, str) and c.tag.startswith("{"))
            value = convert_resource(model, inner)
        else:
            value = {}
            for attr in ("id", "url"):
                if child.get(attr):
                    value[attr] = child.get(attr)
            convert_children(model, child, child_node, value)
        if repeats:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    for key in [k for k in out if k.startswith("_") and isinstance(out[k], list)]:
        if all(x is None for x in out[key]):
            del out[key]
        elif key[1:] in out and all(x is None for x in out[key[1:]]):
            del out[key[1:]]


def convert_resource(model, element):
    resource_type = element.tag[len(FHIR_NS):]
    out = {"resourceType": resource_type}
    convert_children(model, element, resource_type, out)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    model = Model(MODEL)
    os.makedirs(args.out, exist_ok=True)
    for path in args.files:
        resource = convert_resource(model, ET.parse(path).getroot())
        target = os.path.join(args.out, os.path.basename(path)[:-4] + ".json")
        with open(target, "w", encoding="utf-8") as f:
            json.dump(resource, f, indent=2, ensure_ascii=False)
            f.write("\n")
        print("wrote", target)


if __name__ == "__main__":
    main()
