#!/usr/bin/env python3
"""Generate the code tables the v2 -> FHIR mapping (adapters/) compiles in.

Input (the official FHIR R4 4.0.1 terminology, ../shared/fhir-r4):
  v2-tables.json      HL7 v2 tables as FHIR CodeSystems (codes, displays, canonical system URLs)
  v3-codesystems.json HL7 v3 code systems (ObservationInterpretation, MaritalStatus, ActCode ...)
  conceptmaps.json    the FHIR <-> v2 ConceptMaps (administrative gender, name use, address use,
                      contact point use and system), used here in the v2 -> FHIR direction

Output: <out>/v2_tables.cpp: sorted arrays of (code, display) per table and of (v2 code, FHIR code)
per inverted ConceptMap, declared in adapters/src/v2_tables.h. The binary never reads
../shared at run time.

Only the tables the mapping uses are emitted (TABLES, V3_TABLES below). ConceptMaps are inverted:
a FHIR code mapped to several v2 codes gives each of them that FHIR code; a v2 code reached from
several FHIR codes keeps the first (the map's order: e.g. Internet -> email, not url). Where the
published maps have no entry for a v2 code the mapping must handle, SUPPLEMENTS adds one; each
supplement is listed (with its reason) in adapters/README.md.

Usage: python3 tools/gen_v2_tables.py --defs ../shared/fhir-r4 --out adapters/generated
"""
import argparse
import json
import os

# v2 tables used by the mapping (HL7 table numbers).
TABLES = [
    "0001",  # administrative sex (PID-8)
    "0002",  # marital status (PID-16)
    "0004",  # patient class (PV1-2)
    "0007",  # admission type (PV1-4)
    "0017",  # transaction type (FT1-6)
    "0023",  # admit source (PV1-14)
    "0038",  # order status (ORC-5)
    "0063",  # relationship (NK1-3, IN1-17)
    "0069",  # hospital service (PV1-10)
    "0074",  # diagnostic service section (OBR-24)
    "0078",  # abnormal flags (OBX-8)
    "0085",  # observation result status (OBX-11)
    "0119",  # order control (ORC-1)
    "0123",  # result status (OBR-25)
    "0127",  # allergen type (AL1-2)
    "0128",  # allergy severity (AL1-4)
    "0131",  # contact role (NK1-7)
    "0162",  # route of administration (RXR-1)
    "0163",  # body site (RXR-2)
    "0190",  # address type (XAD-7)
    "0200",  # name type (XPN-7)
    "0201",  # telecommunication use (XTN-2)
    "0202",  # telecommunication equipment type (XTN-3)
    "0203",  # identifier type (CX-5)
    "0276",  # appointment reason (SCH-7)
    "0277",  # appointment type (SCH-8)
    "0278",  # filler status (SCH-25)
    "0335",  # repeat pattern (TQ1-3)
    "0396",  # coding system names (CWE-3): membership only
    "0443",  # provider role (ROL-3, AIP-4)
    "0485",  # extended priority (TQ1-9)
]

# v3 code systems: id in v3-codesystems.json -> codes to keep (None = all).
V3_TABLES = {
    "v3-ObservationInterpretation": None,
    "v3-MaritalStatus": None,
    "v3-NullFlavor": None,
    "v3-ActCode": ["AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC", "OBSENC", "PRENC", "SS", "VR"],
    "v3-ParticipationType": ["ADM", "ATND", "CALLBCK", "CON", "DIS", "PART", "PPRF", "REF", "SPRF"],
}

# ConceptMaps (FHIR -> v2) to invert: map id -> (name in the generated table, v2 table).
CONCEPT_MAPS = {
    "cm-administrative-gender-v2": "gender",
    "cm-name-use-v2": "name-use",
    "cm-address-use-v2": "address-use",
    "cm-contact-point-use-v2": "contact-point-use",
    "cm-contact-point-system-v2": "contact-point-system",
}

# v2 codes the published maps leave out, with the FHIR code this mapping gives them.
SUPPLEMENTS = {
    "gender": {"N": "other"},            # "not applicable": the v2-to-FHIR IG maps it to other
    "name-use": {"NB": "temp"},          # newborn name: replaced once the child is named
    "address-use": {"B": "work",         # firm/business
                    "V": "temp"},        # vacation home
    "contact-point-use": {},
    "contact-point-system": {"CP": "phone",      # cellular phone (use becomes mobile)
                             "X.400": "email", "SAT": "phone", "TDD": "other", "TTY": "other",
                             "MD": "other"},
}


def load(defs, name):
    with open(os.path.join(defs, name), encoding="utf-8") as f:
        return [e["resource"] for e in json.load(f).get("entry", []) if "resource" in e]


def flatten(concepts, out):
    for c in concepts:
        out.append((c["code"], c.get("display", "") or ""))
        flatten(c.get("concept", []), out)
    return out


def cstr(s):
    """A C++ string literal (UTF-8 bytes written as octal escapes so no escape can run on)."""
    out = ['"']
    for b in s.encode("utf-8"):
        ch = chr(b)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif 32 <= b < 127 and ch != "?":  # '?' would risk trigraph-like sequences in old tools
            out.append(ch)
        else:
            out.append("\\%03o" % b)
    out.append('"')
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--defs", required=True, help="directory holding v2-tables.json, v3-codesystems.json, conceptmaps.json")
    ap.add_argument("--out", required=True, help="output directory (adapters/generated)")
    args = ap.parse_args()

    tables = []  # (id, system, [(code, display)])
    v2 = {r["id"]: r for r in load(args.defs, "v2-tables.json") if r["resourceType"] == "CodeSystem"}
    for t in TABLES:
        cs = v2.get("v2-" + t)
        if cs is None:
            raise SystemExit("v2 table %s not found in v2-tables.json" % t)
        tables.append((t, cs["url"], flatten(cs.get("concept", []), [])))
    v3 = {r["id"]: r for r in load(args.defs, "v3-codesystems.json") if r["resourceType"] == "CodeSystem"}
    for tid, keep in V3_TABLES.items():
        cs = v3.get(tid)
        if cs is None:
            raise SystemExit("%s not found in v3-codesystems.json" % tid)
        codes = flatten(cs.get("concept", []), [])
        if keep is not None:
            codes = [c for c in codes if c[0] in keep]
            missing = set(keep) - {c[0] for c in codes}
            if missing:
                raise SystemExit("%s lacks %s" % (tid, sorted(missing)))
        # abstract grouping concepts (leading underscore) are not codes to send
        codes = [c for c in codes if not c[0].startswith("_")]
        tables.append((tid, cs["url"], codes))

    maps = []  # (name, [(v2, fhir)])
    cms = {r["id"]: r for r in load(args.defs, "conceptmaps.json") if r["resourceType"] == "ConceptMap"}
    for cid, name in CONCEPT_MAPS.items():
        cm = cms.get(cid)
        if cm is None:
            raise SystemExit("ConceptMap %s not found" % cid)
        inv = {}
        for g in cm.get("group", []):
            for el in g.get("element", []):
                for tgt in el.get("target", []):
                    if tgt.get("equivalence") in ("unmatched", "disjoint"):
                        continue
                    inv.setdefault(tgt["code"], el["code"])
        for code, fhir in SUPPLEMENTS.get(name, {}).items():
            inv.setdefault(code, fhir)
        maps.append((name, sorted(inv.items())))

    lines = [
        "// Generated by tools/gen_v2_tables.py from FHIR R4 4.0.1 terminology (v2-tables.json,",
        "// v3-codesystems.json, conceptmaps.json) -- do not edit. Regenerate:",
        "//   python3 tools/gen_v2_tables.py --defs ../shared/fhir-r4 --out adapters/generated",
        '#include "v2_tables.h"',
        "",
        "namespace hearth::adapters::generated {",
        "namespace {",
    ]
    for i, (tid, system, codes) in enumerate(tables):
        codes = sorted(dict(codes).items())  # unique, sorted by code (byte order)
        codes.sort(key=lambda c: c[0].encode("utf-8"))
        lines.append("const Concept kTable%d[] = {  // %s" % (i, tid))
        for code, disp in codes:
            lines.append("    {%s, %s}," % (cstr(code), cstr(disp)))
        lines.append("};")
        tables[i] = (tid, system, codes)
    for i, (name, pairs) in enumerate(maps):
        pairs.sort(key=lambda p: p[0].encode("utf-8"))
        lines.append("const MapPair kMap%d[] = {  // %s" % (i, name))
        for src, tgt in pairs:
            lines.append("    {%s, %s}," % (cstr(src), cstr(tgt)))
        lines.append("};")
    lines.append("}  // namespace")
    lines.append("")
    lines.append("const CodeTable kCodeTables[] = {")
    for i, (tid, system, codes) in enumerate(tables):
        lines.append("    {%s, %s, kTable%d, %d}," % (cstr(tid), cstr(system), i, len(codes)))
    lines.append("};")
    lines.append("const std::size_t kCodeTableCount = %d;" % len(tables))
    lines.append("const ConceptMapTable kConceptMaps[] = {")
    for i, (name, pairs) in enumerate(maps):
        lines.append("    {%s, kMap%d, %d}," % (cstr(name), i, len(pairs)))
    lines.append("};")
    lines.append("const std::size_t kConceptMapCount = %d;" % len(maps))
    lines.append("")
    lines.append("}  // namespace hearth::adapters::generated")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "v2_tables.cpp")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s: %d tables, %d concept maps" % (path, len(tables), len(maps)))


if __name__ == "__main__":
    main()
