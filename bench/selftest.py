#!/usr/bin/env python3
"""Self-test of the benchmark tooling without Hearth: gen_hospital.py + load.py against a fake server.

usage: bench/selftest.py [--patients N] [--measure]

Checks, and exits 1 on the first failure:
  * the generator is deterministic (same seed: same bytes; another seed: other bytes), bundles hold
    whole patients (every urn:uuid reference resolves inside its own Bundle), the shared bundle comes
    first, the mix is ~100 resources per patient and the heavy patient has ~--heavy-resources;
  * load.py maps every sample and heavy patient's urn:uuid to the id in the transaction-response
    location, and writes them to --ids-out;
  * load.py fails loudly (exit 3, the server's message printed) on an HTTP 500, on an entry status
    that is not 2xx, and on a response with the wrong number of entries.
--measure: also prints how many resources/s the loader pushes through a server that answers at
once, and its CPU use (is Python fast enough, or would the loader be the bottleneck?).
The fake server answers a transaction-response Bundle with "201 Created" and location
<Type>/<n>/_history/1 for each request entry; it is a test double, not a FHIR server.
"""
import argparse
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ENTRY_RE = re.compile(rb'"request":\{"method":"(?:POST|PUT)","url":"([A-Za-z]+)')


class FakeFhir(http.server.ThreadingHTTPServer):
    daemon_threads = True
    mode = "ok"  # ok | http500 | entry-error | short
    counter = 0
    lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        types = ENTRY_RE.findall(body)
        srv = self.server
        if srv.mode == "http500":
            return self.reply(500, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error",'
                                   b'"code":"exception","diagnostics":"fake failure for the self-test"}]}')
        with srv.lock:
            first = srv.counter
            srv.counter += len(types)
        entries = []
        for k, t in enumerate(types):
            status = "201 Created"
            if srv.mode == "entry-error" and k == len(types) // 2:
                status = "422 Unprocessable Entity"
            entries.append({"response": {"status": status, "location": f"{t.decode()}/{first + k}/_history/1"}})
        if srv.mode == "short":
            entries = entries[:-1]
        out = json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": entries}).encode()
        self.reply(200, out)

    def reply(self, status, data):
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def fail(msg):
    print(f"selftest: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def gen(out, patients, seed, *extra):
    subprocess.run([sys.executable, os.path.join(HERE, "gen_hospital.py"), "--patients", str(patients),
                    "--seed", str(seed), "--out", out, *extra], check=True, stderr=subprocess.DEVNULL)


def load(url, data, ids, report=None, connections=4):
    cmd = [sys.executable, os.path.join(HERE, "load.py"), "--url", url, "--in", data, "--ids-out", ids,
           "--connections", str(connections), "--quiet"]
    if report:
        cmd += ["--report", report]
    return subprocess.run(cmd, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--measure", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hearth-bench-selftest.")
    d1, d2, d3 = (os.path.join(tmp, n) for n in ("a", "b", "c"))

    # Generator.
    gen(d1, a.patients, 7, "--heavy", "2")
    gen(d2, a.patients, 7, "--heavy", "2")
    gen(d3, a.patients, 8, "--heavy", "2")
    names = sorted(f for f in os.listdir(d1) if f.startswith("bundle-"))
    for n in names:
        with open(os.path.join(d1, n), "rb") as f1, open(os.path.join(d2, n), "rb") as f2:
            if f1.read() != f2.read():
                fail(f"{n} differs between two runs with the same seed")
    with open(os.path.join(d1, names[1]), "rb") as f1, open(os.path.join(d3, names[1]), "rb") as f3:
        if f1.read() == f3.read():
            fail("seeds 7 and 8 gave the same bundle")
    side = json.load(open(os.path.join(d1, "queries.json")))
    per_patient = (side["resources"] - side["counts"]["Practitioner"] - side["counts"]["Organization"]) / a.patients
    if not 90 <= per_patient <= 115:
        fail(f"{per_patient:.1f} resources per patient, expected ~100")
    heavy = [h["resources"] for h in side["heavy_patients"]]
    if len(heavy) != 2 or not all(500 <= h <= 530 for h in heavy):
        fail(f"heavy patients have {heavy} resources, expected 2 with ~500")
    first = json.load(open(os.path.join(d1, names[0])))
    if {e["resource"]["resourceType"] for e in first["entry"]} != {"Practitioner", "Organization"}:
        fail("the first bundle is not the shared Practitioners and Organizations")
    for n in names[1:]:
        b = json.load(open(os.path.join(d1, n)))
        if b.get("type") != "transaction":
            fail(f"{n} is not a transaction")
        full = {e["fullUrl"] for e in b["entry"]}
        refs = set(re.findall(r'"reference": ?"(urn:uuid:[^"]+)"', json.dumps(b)))
        if not refs <= full:
            fail(f"{n} references urn:uuids outside itself: {sorted(refs - full)[:3]}")
        if any(not f.startswith("urn:uuid:") for f in full):
            fail(f"{n} has a fullUrl that is not a urn:uuid")
    print(f"selftest: generator ok ({side['resources']} resources in {side['bundles']} bundles, "
          f"{per_patient:.1f} per patient, heavy {heavy})")

    srv = FakeFhir(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/fhir"
    ids_path = os.path.join(tmp, "ids.json")

    # Loader: the happy path.
    r = load(url, d1, ids_path, os.path.join(tmp, "load.json"))
    if r.returncode != 0:
        fail(f"load.py failed against the fake server: {r.stderr}")
    ids = json.load(open(ids_path))
    rep = json.load(open(os.path.join(tmp, "load.json")))
    if rep["resources"] != side["resources"] or ids["patients_loaded"] != a.patients:
        fail(f"loaded {rep['resources']} resources / {ids['patients_loaded']} patients, expected "
             f"{side['resources']} / {a.patients}")
    for key in ("heavy_patients", "sample_patients"):
        if len(ids[key]) != len(side[key]) or not all(p["id"].isdigit() for p in ids[key]):
            fail(f"{key}: ids not recorded: {ids[key][:2]}")
    print("selftest: loader happy path ok")

    # Loader: failures are loud.
    for mode, expect in (("http500", "HTTP 500"), ("entry-error", "422"), ("short", "in the response")):
        srv.mode = mode
        r = load(url, d1, os.path.join(tmp, f"ids-{mode}.json"))
        if r.returncode != 3 or "LOAD FAILED" not in r.stderr or expect not in r.stderr:
            fail(f"{mode}: load.py exit {r.returncode}, stderr {r.stderr[-500:]!r}")
        if os.path.exists(os.path.join(tmp, f"ids-{mode}.json")):
            fail(f"{mode}: ids file written after a failed load")
    srv.mode = "ok"
    print("selftest: loader failure paths ok (HTTP 500, entry 422, short response)")

    if a.measure:
        r = load(url, d1, ids_path, os.path.join(tmp, "load.json"), connections=4)
        rep = json.load(open(os.path.join(tmp, "load.json")))
        print(f"selftest: loader ceiling against an instant server: {rep['resources_per_sec']} resources/s, "
              f"loader CPU {rep['loader_cpu_s']} s for {rep['resources']} resources "
              f"({1e6 * rep['loader_cpu_s'] / rep['resources']:.1f} us per resource)")
    srv.shutdown()
    subprocess.run(["rm", "-rf", tmp])
    print("selftest: all ok")


if __name__ == "__main__":
    main()
