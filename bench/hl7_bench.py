#!/usr/bin/env python3
"""HL7 v2 bridge benchmark: messages/s and ACK latency over MLLP, store-before-ACK.

Each sender connection sends one message, waits for its ACK, then sends the next (what a real
interface engine does). Every message is distinct (new control id, new patient), so every one is
mapped and committed (no duplicate short-cuts).

  bench/hl7_bench.py --port 2575 [--kind adt|oru] [--connections 1] [--seconds 10] [--warmup 2]

--kind adt: ADT^A01 (MSH, EVN, PID, PV1): one Patient + one Encounter per message.
--kind oru: ORU^R01 with 20 OBX (Patient conditional create, DiagnosticReport, 20 Observations).
--start: start a hearth binary itself (--binary, --db, --data-dir) on free ports and stop it after.
--client native: send with hearth-hl7-load (bench/src/hl7_load.cpp; the same messages) instead of
  this script's Python threads, which cost 60-100 us of CPU per message on the machine's two
  cores; built into build/bench/tools on first use (or --native-binary PATH).
Prints one JSON line: msgs, seconds, msgs_per_s, p50_ms, p99_ms, non-AA count, load average, client.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

SB, EB = b"\x0b", b"\x1c\x0d"


def adt(ctl, mrn):
    return ("MSH|^~\\&|REGSYS|NORTHVALE|HEARTH|HEARTH_FAC|20250314083015+0100||ADT^A01^ADT_A01|%s|P|2.5.1\r"
            "EVN|A01|20250314083000+0100\r"
            "PID|1||%s^^^NORTHVALE^MR||Bench^Patient^Q||19790522|F|||12 Harbour Rd^^Northvale^NY^10960\r"
            "PV1|1|I|3W^312^B^NORTHVALE||||||||||||||||V%s^^^NORTHVALE^VN\r" % (ctl, mrn, mrn)).encode()


def oru(ctl, mrn):
    obx = "".join("OBX|%d|NM|%d-%d^Analyte %d^LN||%d.%d|mg/dL^mg/dL^UCUM|1-99|N|||F\r" % (i, 1000 + i, i % 10, i, 10 + i, i)
                  for i in range(1, 21))
    return ("MSH|^~\\&|LABSYS|CENTRAL_LAB|HEARTH|NORTHVALE|20250314121530+0100||ORU^R01^ORU_R01|%s|P|2.5.1\r"
            "PID|1||%s^^^NORTHVALE^MR||Bench^Patient||19790522|F\r"
            "OBR|1|P%s^NORTHVALE|F%s^CENTRAL_LAB|24323-8^Panel^LN|||20250314090000+0100|||||||||||||||20250314121500+0100|||F\r"
            % (ctl, mrn, ctl, ctl) + obx).encode()


def sender(port, kind, deadline, warm_until, prefix, out, idx):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lat, bad, n = [], 0, 0
    make = adt if kind == "adt" else oru
    buf = b""
    while True:
        now = time.perf_counter()
        if now >= deadline:
            break
        n += 1
        ctl = "%s%d-%d" % (prefix, idx, n)
        s.sendall(SB + make(ctl, ctl) + EB)
        while EB not in buf:
            d = s.recv(65536)
            if not d:
                raise SystemExit("connection closed")
            buf += d
        end = buf.index(EB)
        ack, buf = buf[:end], buf[end + 2:]
        t = time.perf_counter()
        if now >= warm_until:
            lat.append(t - now)
            if b"MSA|AA|" not in ack:
                bad += 1
    s.close()
    out[idx] = (lat, bad)


def build_native():
    here = os.path.dirname(os.path.abspath(__file__))
    build = os.path.join(os.path.dirname(here), "build", "bench", "tools")
    exe = os.path.join(build, "hearth-hl7-load")
    src = os.path.join(here, "src", "hl7_load.cpp")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        os.makedirs(build, exist_ok=True)
        for cmd in (["cmake", "-S", here, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                    ["cmake", "--build", build, "--target", "hearth-hl7-load"]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit("building hearth-hl7-load failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])
    return exe


def start_server(args):
    work = tempfile.mkdtemp(prefix="hl7bench-")
    pf = os.path.join(work, "port")
    cmd = [args.binary, "--port", "0", "--mllp-port", "0", "--port-file", pf,
           "--data-dir", args.data_dir or os.path.join(work, "data")]
    if args.db:
        cmd += ["--db", args.db]
    for kv in args.set or []:
        cmd += ["--set", kv]
    proc = subprocess.Popen(cmd, stdout=open(os.path.join(work, "server.log"), "w"), stderr=subprocess.STDOUT)
    for _ in range(200):
        if os.path.exists(pf):
            ports = dict(l.split("=") for l in open(pf).read().split())
            if "mllp" in ports:
                return proc, int(ports["mllp"])
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start; see " + work)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=2575)
    ap.add_argument("--kind", choices=["adt", "oru"], default="adt")
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--start", action="store_true")
    ap.add_argument("--binary", default="build/server/hearth")
    ap.add_argument("--db", default="")
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--set", action="append")
    ap.add_argument("--client", choices=["python", "native"], default="python")
    ap.add_argument("--native-binary", default="")
    args = ap.parse_args()
    native = (args.native_binary or build_native()) if args.client == "native" else ""
    proc = None
    port = args.port
    if args.start:
        proc, port = start_server(args)
    try:
        if native:
            out = subprocess.run([native, "--port", str(port), "--kind", args.kind, "--connections",
                                  str(args.connections), "--seconds", str(args.seconds), "--warmup",
                                  str(args.warmup)], capture_output=True, text=True)
            if out.returncode not in (0, 3):
                raise SystemExit("hearth-hl7-load failed: " + out.stderr.strip())
            res = json.loads(out.stdout)
            res["loadavg"] = os.getloadavg()[0]
            print(json.dumps(res))
            return 0
        t0 = time.perf_counter()
        warm_until = t0 + args.warmup
        deadline = warm_until + args.seconds
        prefix = uuid.uuid4().hex[:8]
        out = [None] * args.connections
        threads = [threading.Thread(target=sender, args=(port, args.kind, deadline, warm_until, prefix, out, i))
                   for i in range(args.connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lat = sorted(x for o in out for x in o[0])
        bad = sum(o[1] for o in out)
        res = {
            "kind": args.kind, "connections": args.connections, "msgs": len(lat), "seconds": args.seconds,
            "msgs_per_s": round(len(lat) / args.seconds, 1),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 3) if lat else None,
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 3) if lat else None,
            "not_aa": bad, "loadavg": os.getloadavg()[0], "client": "python",
        }
        print(json.dumps(res))
    finally:
        if proc:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    sys.exit(main())
