#!/usr/bin/env python3
"""Issue 6 benchmarks against a running Hearth: bookings/s with and without contention, the time of
Invoice/$generate for an encounter with 200 charge items, and $hospital-stats for a year.

usage: bench/workflows_bench.py --url http://127.0.0.1:PORT/fhir [--clients K] [--bookings N]
                                [--repeat R] [--report FILE]

  bookings, no contention  K clients each book N appointments for their own practitioner at
                           distinct times (every request must get 201);
  bookings, contention     K clients book the same practitioner and time, N rounds (exactly one
                           201 per round, the rest 409: checked, the run fails otherwise);
  $generate                200 billable ChargeItems of one encounter billed as one Invoice (the
                           totals are checked to the cent);
  $hospital-stats          one year, on whatever data the server holds (load bench/gen_hospital.py
                           output first for the 1M figure).
Each figure is the median of --repeat runs (default 3). Loopback URLs only. Python 3 stdlib only.
"""
import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse
import uuid


def connect(url):
    u = urllib.parse.urlparse(url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("only loopback URLs are accepted")
    return u, http.client.HTTPConnection(u.hostname, u.port, timeout=120)


def request(conn, method, path, body=None):
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, data


def appointment(practitioner, start_minute):
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(2000000000 + start_minute * 60))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(2000000000 + start_minute * 60 + 600))
    return {"resourceType": "Appointment", "status": "booked", "start": start, "end": end,
            "participant": [{"actor": {"reference": "Practitioner/" + practitioner}, "status": "accepted"}]}


def bookings(url, clients, per_client, contention):
    base, _ = connect(url)
    path = base.path.rstrip("/") + "/Appointment"
    statuses = []
    lock = threading.Lock()
    shared = "bench-" + uuid.uuid4().hex[:12]
    barrier = threading.Barrier(clients)

    def worker(k):
        _, conn = connect(url)
        mine = "bench-" + uuid.uuid4().hex[:12]
        barrier.wait()
        for i in range(per_client):
            if contention:
                body = appointment(shared, i * 20)  # same practitioner and time for every client
            else:
                body = appointment(mine, i * 20)
            status, _ = request(conn, "POST", path, body)
            with lock:
                statuses.append((i, status))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if contention:
        for i in range(per_client):
            got = sorted(s for r, s in statuses if r == i)
            if got.count(201) != 1 or got.count(409) != clients - 1:
                sys.exit(f"contention round {i}: expected one 201 and {clients - 1} x 409, got {got}")
    elif any(s != 201 for _, s in statuses):
        sys.exit(f"non-201 answers without contention: {sorted(set(s for _, s in statuses))}")
    return len(statuses) / elapsed


def generate_invoice(url, items):
    base, conn = connect(url)
    root = base.path.rstrip("/")
    status, data = request(conn, "POST", root + "/Encounter",
                           {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}})
    enc = json.loads(data)["id"]
    status, data = request(conn, "POST", root + "/Patient", {"resourceType": "Patient"})
    pat = json.loads(data)["id"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    for i in range(items):
        bundle["entry"].append({"resource": {
            "resourceType": "ChargeItem", "status": "billable", "code": {"text": "item %d" % i},
            "subject": {"reference": "Patient/" + pat}, "context": {"reference": "Encounter/" + enc},
            "quantity": {"value": 3}, "priceOverride": {"value": 33.333, "currency": "EUR"}},
            "request": {"method": "POST", "url": "ChargeItem"}})
    status, data = request(conn, "POST", root, bundle)
    if status != 200:
        sys.exit("loading charge items failed: %d %s" % (status, data[:300]))
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "encounter", "valueReference": {"reference": "Encounter/" + enc}},
        {"name": "taxRate", "valueDecimal": 0.19}]}
    t0 = time.perf_counter()
    status, data = request(conn, "POST", root + "/Invoice/$generate", params)
    elapsed = time.perf_counter() - t0
    if status != 201:
        sys.exit("$generate failed: %d %s" % (status, data[:300]))
    # 200 x round(99.999) = 200 x 100.00 = 20000.00 net; tax 200 x 19.00 = 3800.00.
    text = data.decode()
    want_net = '"totalNet":{"value":%d.00,"currency":"EUR"}' % (items * 100)
    want_gross = '"totalGross":{"value":%d.00,"currency":"EUR"}' % (items * 119)
    if want_net not in text or want_gross not in text:
        sys.exit("$generate totals are wrong")
    return elapsed * 1000


def stats(url):
    base, conn = connect(url)
    t0 = time.perf_counter()
    status, data = request(conn, "GET", base.path.rstrip("/") + "/$hospital-stats?start=2000-01-01&end=2099-12-31")
    elapsed = time.perf_counter() - t0
    if status != 200:
        sys.exit("$hospital-stats failed: %d" % status)
    return elapsed * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--bookings", type=int, default=50, help="per client")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--report")
    a = ap.parse_args()
    runs = {"bookings_per_s_no_contention": [], "bookings_per_s_contention": [], "generate_ms": [], "stats_ms": []}
    for _ in range(a.repeat):
        runs["bookings_per_s_no_contention"].append(bookings(a.url, a.clients, a.bookings, False))
        runs["bookings_per_s_contention"].append(bookings(a.url, a.clients, a.bookings, True))
        runs["generate_ms"].append(generate_invoice(a.url, a.items))
        runs["stats_ms"].append(stats(a.url))
    report = {k: {"median": statistics.median(v), "runs": v} for k, v in runs.items()}
    report["clients"] = a.clients
    for k, v in report.items():
        if isinstance(v, dict):
            print("%-32s median %10.1f   runs %s" % (k, v["median"], ", ".join("%.1f" % x for x in v["runs"])), file=sys.stderr)
    if a.report:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
