#!/usr/bin/env python3
"""What the search index rows of one audited read cost to write on SQLite (issue 5, audit trail).

    bench/audit_index_cost.py <hearth.db> [--reads N] [--batch B]

Works on a COPY of the given database (a SQLite data dir's hearth.db after a jwt+audit run of
bench/auth_bench.sh, so the AuditEvent index regions are realistic; the original is not touched).
Each audited read of a Patient adds two search_reference rows to a merged AuditEvent (`entity` and
`patient`, the same Patient target); the writer commits B reads per transaction. Variants:
  all          the rows as the store writes them: the table and its 4 indexes
  -<index>     the same without one index (where the time goes)
  none         the table alone
  narrow       one row per read in a WITHOUT ROWID table keyed (patient_id, event_id): the cost
               of an append-only audit index with a single random b-tree
Prints microseconds per read (median of --repeat runs). WAL mode, synchronous NORMAL, 32 MiB cache,
like the store's pool connections.
"""
import argparse, os, random, shutil, sqlite3, statistics, tempfile, time, uuid

INDEXES = ["search_reference_value", "search_reference_target", "search_reference_resource", "search_reference_url"]


def run(src, variant, reads, batch, work):
    db_path = os.path.join(work, "copy.db")
    shutil.copy(src, db_path)
    for ext in ("-wal", "-shm"):
        if os.path.exists(db_path + ext):
            os.remove(db_path + ext)
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA cache_size = -32768")
    patients = [r[0] for r in db.execute("SELECT id FROM resource_current WHERE type = 'Patient'")]
    if not patients:
        raise SystemExit("no Patients in %s" % src)
    if variant == "none":
        for ix in INDEXES:
            db.execute("DROP INDEX " + ix)
    elif variant.startswith("-"):
        db.execute("DROP INDEX " + variant[1:])
    elif variant == "narrow":
        db.execute("CREATE TABLE audit_patient (patient_id TEXT NOT NULL, event_id TEXT NOT NULL,"
                   " PRIMARY KEY (patient_id, event_id)) WITHOUT ROWID")
    rng = random.Random(1)
    start = time.perf_counter()
    done = 0
    while done < reads:
        db.execute("BEGIN IMMEDIATE")
        event = str(uuid.uuid4())
        for i in range(batch):
            if i % 85 == 0:  # the writer merges ~85 reads of one token per AuditEvent under load
                event = str(uuid.uuid4())
            p = rng.choice(patients)
            if variant == "narrow":
                db.execute("INSERT OR IGNORE INTO audit_patient VALUES (?, ?)", (p, event))
            else:
                for param in ("entity", "patient"):
                    db.execute("INSERT INTO search_reference VALUES ('AuditEvent', ?, ?, 'Patient', ?, ?)",
                               (event, param, p, "Patient/" + p))
        db.execute("COMMIT")
        done += batch
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed / done * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("--reads", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--variants", default="all,-search_reference_value,-search_reference_target,"
                    "-search_reference_resource,-search_reference_url,none,narrow")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hearth-audit-cost.") as work:
        variants = a.variants.split(",")
        results = {v: [] for v in variants}
        for _ in range(a.repeat):  # alternate the variants run by run
            for v in variants:
                results[v].append(run(a.db, v, a.reads, a.batch, work))
        for v in variants:
            print("%-28s %7.1f us/read  runs %s" % (v, statistics.median(results[v]),
                                                    "/".join("%.0f" % x for x in results[v])))


if __name__ == "__main__":
    main()
