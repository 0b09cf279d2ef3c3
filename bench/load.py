#!/usr/bin/env python3
"""Loads transaction Bundles (bench/gen_hospital.py output) into a FHIR server and measures the rate.

usage: bench/load.py --url http://127.0.0.1:PORT/fhir --in DIR|- [--sidecar FILE] [--ids-out FILE]
                     [--connections K] [--mode transaction|per-resource] [--max-bundles N]
                     [--report FILE] [--window S] [--timeout S] [--quiet]

  --in DIR   the bundle-NNNNNN.json files of DIR in name order (DIR/queries.json is the default
             sidecar); --in - reads one Bundle per line (NDJSON) from stdin.
  The first Bundle (the generator's shared Practitioners and Organizations) is sent alone; then K
  keep-alive connections (default 4) each POST one Bundle at a time to the base URL with
  `Prefer: return=minimal`.
  --mode per-resource  instead of the transaction, sends each entry as its own request (POST
             [type], or the entry's PUT), rewriting urn:uuid: references to the ids the server
             assigned: for servers without transactions, and as a comparison figure.

Any failure stops the run loudly (exit 3): an HTTP status other than 200 for a transaction (or
201/200 for a single request), a response that is not a transaction-response with one entry per
request entry, an entry status other than 2xx, or a socket error. The status, the bundle and the
start of the response body (the OperationOutcome) are printed.

Reports, on stderr and as JSON (--report FILE): resources loaded, wall time, overall resources/s,
the median and minimum of the rate over windows of --window seconds (default 5), the first and last
window rate (growth of the database shows there), bundle latency p50/p99, and the loader's own CPU
time (when it approaches one core, the loader is the bottleneck, not the server).

--ids-out FILE: JSON with the server ids of the generator's heavy and sample patients (from the
sidecar, matched by urn:uuid to the transaction-response locations), for bench/search_bench.sh.

Only loopback addresses are accepted: this is a load tool, not to be pointed at someone's server.
Python 3 standard library only.
"""
import argparse
import http.client
import json
import os
import queue
import re
import resource
import statistics
import sys
import threading
import time
import urllib.parse

FULLURL_RE = re.compile(rb'"fullUrl":"([^"]*)"')
LOCATION_RE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9.\-]{1,64})(?:/_history/[^/]*)?$")


class LoadError(Exception):
    pass


def parse_location(loc):
    m = LOCATION_RE.search(loc or "")
    return (m.group(1), m.group(2)) if m else (None, None)


def bundle_sources(path, max_bundles):
    """Yields (label, bytes) for each bundle, in order."""
    n = 0
    if path == "-":
        for line in sys.stdin.buffer:
            line = line.strip()
            if not line:
                continue
            yield f"stdin line {n + 1}", line
            n += 1
            if max_bundles and n >= max_bundles:
                return
    else:
        names = sorted(f for f in os.listdir(path) if f.startswith("bundle-") and f.endswith(".json"))
        if not names:
            raise LoadError(f"no bundle-*.json files in {path}")
        for name in names:
            with open(os.path.join(path, name), "rb") as f:
                yield name, f.read()
            n += 1
            if max_bundles and n >= max_bundles:
                return


class Loader:
    def __init__(self, url, mode, timeout, quiet):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise LoadError(f"--url must be http://HOST:PORT/base (got {url})")
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise LoadError(f"refusing non-loopback host {u.hostname}")
        self.host, self.port = u.hostname, u.port or 80
        self.base = u.path.rstrip("/")
        self.mode = mode
        self.timeout = timeout
        self.quiet = quiet
        self.lock = threading.Lock()
        self.patients = {}  # urn:uuid:... -> server id
        self.done = []  # (start, end, entries) per bundle
        self.failed = None
        self.stop = threading.Event()

    def connect(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(self, conn, method, path, body):
        headers = {"Content-Type": "application/fhir+json; charset=utf-8", "Accept": "application/fhir+json",
                   "Prefer": "return=minimal"}
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise LoadError(f"{method} {path}: {type(e).__name__}: {e}") from None
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
        return resp.status, resp.getheader("Location"), data

    # -- one bundle as a transaction -------------------------------------------------------------
    def send_transaction(self, conn, label, body):
        status, _, data = self.request(conn, "POST", self.base or "/", body)
        if status != 200:
            raise LoadError(f"{label}: HTTP {status} for the transaction\n{data[:3000].decode('utf-8', 'replace')}")
        try:
            resp = json.loads(data)
        except ValueError as e:
            raise LoadError(f"{label}: response is not JSON ({e}): {data[:500]!r}") from None
        entries = resp.get("entry") or []
        if resp.get("resourceType") != "Bundle" or resp.get("type") != "transaction-response":
            raise LoadError(f"{label}: response is not a transaction-response Bundle: {data[:500]!r}")
        urls = FULLURL_RE.findall(body)
        if len(urls) != len(entries):  # entries without fullUrl (the shared PUTs) or an odd layout
            urls = [(e.get("fullUrl") or "").encode() for e in json.loads(body).get("entry", [])]
        if len(urls) != len(entries):
            raise LoadError(f"{label}: {len(urls)} entries sent, {len(entries)} in the response")
        found = {}
        for i, e in enumerate(entries):
            r = e.get("response") or {}
            st = str(r.get("status", ""))
            if not st[:1] == "2":
                raise LoadError(f"{label}: entry {i} has status {st!r}: {json.dumps(e)[:1000]}")
            rtype, rid = parse_location(r.get("location"))
            if rtype == "Patient":
                found[urls[i].decode()] = rid
        return len(entries), found

    # -- one bundle entry by entry ---------------------------------------------------------------
    def send_per_resource(self, conn, label, body):
        bundle = json.loads(body)
        assigned = {}  # fullUrl -> "Type/id"
        found = {}

        def rewrite(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k == "reference" and isinstance(v, str) and v in assigned:
                        node[k] = assigned[v]
                    else:
                        rewrite(v)
            elif isinstance(node, list):
                for v in node:
                    rewrite(v)

        entries = bundle.get("entry") or []
        for i, e in enumerate(entries):
            res, req = e["resource"], e["request"]
            rewrite(res)
            method, url = req["method"], req["url"]
            status, loc, data = self.request(conn, method, f"{self.base}/{url}",
                                             json.dumps(res, ensure_ascii=False).encode("utf-8"))
            if status not in (200, 201):
                raise LoadError(f"{label} entry {i}: HTTP {status} for {method} {url}\n"
                                f"{data[:3000].decode('utf-8', 'replace')}")
            rtype, rid = parse_location(loc)
            if rtype is None and method == "PUT":
                rtype, rid = url.split("/", 1)
            if rtype is None:
                raise LoadError(f"{label} entry {i}: no usable Location header ({loc!r})")
            if e.get("fullUrl"):
                assigned[e["fullUrl"]] = f"{rtype}/{rid}"
                if rtype == "Patient":
                    found[e["fullUrl"]] = rid
        return len(entries), found

    def send(self, conn, label, body):
        t0 = time.monotonic()
        if self.mode == "transaction":
            n, found = self.send_transaction(conn, label, body)
        else:
            n, found = self.send_per_resource(conn, label, body)
        t1 = time.monotonic()
        with self.lock:
            self.done.append((t0, t1, n))
            self.patients.update(found)

    def worker(self, q):
        conn = self.connect()
        try:
            while not self.stop.is_set():
                item = q.get()
                if item is None:
                    return
                try:
                    self.send(conn, *item)
                except LoadError as e:
                    with self.lock:
                        if self.failed is None:
                            self.failed = str(e)
                    self.stop.set()
                    return
        finally:
            conn.close()

    def progress(self, t_start):
        last_n, last_t = 0, t_start
        while not self.stop.wait(10):
            with self.lock:
                n = sum(d[2] for d in self.done)
            now = time.monotonic()
            if not self.quiet:
                print(f"load: {n} resources, {n / (now - t_start):.0f}/s overall, "
                      f"{(n - last_n) / (now - last_t):.0f}/s in the last {now - last_t:.0f} s", file=sys.stderr)
            last_n, last_t = n, now

    def run(self, sources, connections):
        t_start = time.monotonic()
        sources = iter(sources)
        first = next(sources, None)
        if first is None:
            raise LoadError("no bundles to load")
        conn = self.connect()
        try:
            self.send(conn, *first)  # the shared resources, which every other bundle references
        finally:
            conn.close()
        q = queue.Queue(maxsize=connections * 2)
        workers = [threading.Thread(target=self.worker, args=(q,), daemon=True) for _ in range(connections)]
        for w in workers:
            w.start()
        ticker = threading.Thread(target=self.progress, args=(t_start,), daemon=True)
        ticker.start()
        for item in sources:
            while not self.stop.is_set():
                try:
                    q.put(item, timeout=0.5)
                    break
                except queue.Full:
                    pass
            if self.stop.is_set():
                break
        for _ in workers:
            while not self.stop.is_set():
                try:
                    q.put(None, timeout=0.5)
                    break
                except queue.Full:
                    pass
        for w in workers:
            w.join()
        self.stop.set()
        t_end = time.monotonic()
        if self.failed:
            raise LoadError(self.failed)
        return t_start, t_end


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def summarize(done, t_start, t_end, window, cpu):
    total = sum(d[2] for d in done)
    wall = t_end - t_start
    # Rate per window: entries of the bundles that completed in that window. The last, partial
    # window is left out of the median unless it is the only one.
    rates = []
    w0 = t_start
    ends = sorted((d[1], d[2]) for d in done)
    idx = 0
    while w0 < t_end:
        w1 = w0 + window
        n = 0
        while idx < len(ends) and ends[idx][0] < w1:
            n += ends[idx][1]
            idx += 1
        if w1 <= t_end or not rates:
            rates.append(n / window if w1 <= t_end else n / max(1e-9, t_end - w0))
        w0 = w1
    lat = [d[1] - d[0] for d in done]
    return {
        "resources": total,
        "bundles": len(done),
        "seconds": round(wall, 2),
        "resources_per_sec": round(total / wall, 1) if wall > 0 else None,
        "window_s": window,
        "windows": len(rates),
        "median_window_resources_per_sec": round(statistics.median(rates), 1) if rates else None,
        "min_window_resources_per_sec": round(min(rates), 1) if rates else None,
        "first_window_resources_per_sec": round(rates[0], 1) if rates else None,
        "last_window_resources_per_sec": round(rates[-1], 1) if rates else None,
        "bundle_latency_ms": {"p50": round(1000 * percentile(lat, 50), 1) if lat else None,
                              "p99": round(1000 * percentile(lat, 99), 1) if lat else None,
                              "max": round(1000 * max(lat), 1) if lat else None},
        "loader_cpu_s": round(cpu, 2),
        "loader_cpu_share": round(cpu / wall, 3) if wall > 0 else None,
    }


def write_ids(path, sidecar_path, patients, url):
    out = {"url": url, "patients_loaded": len(patients)}
    if sidecar_path and os.path.exists(sidecar_path):
        with open(sidecar_path, encoding="utf-8") as f:
            side = json.load(f)
        for key in ("heavy_patients", "sample_patients"):
            rows = []
            for p in side.get(key, []):
                pid = patients.get("urn:uuid:" + p["uuid"])
                if pid is None:
                    raise LoadError(f"{key}: urn:uuid:{p['uuid']} is not among the loaded patients "
                                    "(a partial load, or the sidecar of another run?)")
                rows.append(dict(p, id=pid))
            out[key] = rows
        out["families"] = side.get("families", [])
        out["mrn_system"] = side.get("mrn_system")
    else:
        # No sidecar: the first patients, so a query benchmark still has something to work with.
        out["sample_patients"] = [{"uuid": u[len("urn:uuid:"):], "id": i} for u, i in list(patients.items())[:1000]]
        out["heavy_patients"] = []
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    os.replace(tmp, path)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="FHIR base, e.g. http://127.0.0.1:8080/fhir")
    ap.add_argument("--in", dest="input", required=True, help="bundle directory, or - for NDJSON on stdin")
    ap.add_argument("--sidecar", help="generator sidecar (default: DIR/queries.json)")
    ap.add_argument("--ids-out", help="write the heavy and sample patients' server ids here")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--mode", choices=["transaction", "per-resource"], default="transaction")
    ap.add_argument("--max-bundles", type=int, default=0, help="stop after this many bundles (0: all)")
    ap.add_argument("--report", help="write the summary as JSON here")
    ap.add_argument("--window", type=float, default=5.0, help="seconds per rate window (default 5)")
    ap.add_argument("--timeout", type=float, default=600.0, help="socket timeout per request, seconds")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    a = ap.parse_args(argv)
    if not 1 <= a.connections <= 64 or a.window <= 0:
        ap.error("--connections must be 1..64 and --window > 0")
    sidecar = a.sidecar or (os.path.join(a.input, "queries.json") if a.input != "-" else None)

    try:
        loader = Loader(a.url, a.mode, a.timeout, a.quiet)
        cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        t_start, t_end = loader.run(bundle_sources(a.input, a.max_bundles), a.connections)
        cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0
        summary = summarize(loader.done, t_start, t_end, a.window, cpu)
        summary.update({"mode": a.mode, "connections": a.connections})
        if a.ids_out:
            ids = write_ids(a.ids_out, sidecar, loader.patients, a.url)
            summary["ids_out"] = a.ids_out
            summary["heavy_patient_ids"] = [p["id"] for p in ids.get("heavy_patients", [])]
    except LoadError as e:
        print("!" * 90, file=sys.stderr)
        print(f"!!! LOAD FAILED: {e}", file=sys.stderr)
        print("!" * 90, file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    if a.report:
        with open(a.report, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
    s = summary
    print(f"load: {s['resources']} resources in {s['bundles']} bundles, {s['seconds']} s: "
          f"{s['resources_per_sec']} resources/s overall, median {s['median_window_resources_per_sec']}/s over "
          f"{s['windows']} windows of {s['window_s']} s (first {s['first_window_resources_per_sec']}, last "
          f"{s['last_window_resources_per_sec']}, min {s['min_window_resources_per_sec']}); bundle p50 "
          f"{s['bundle_latency_ms']['p50']} ms, p99 {s['bundle_latency_ms']['p99']} ms; loader CPU "
          f"{s['loader_cpu_s']} s ({100 * (s['loader_cpu_share'] or 0):.0f}% of one core); {a.mode}, "
          f"{a.connections} connections", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
