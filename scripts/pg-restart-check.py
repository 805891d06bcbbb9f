#!/usr/bin/env python3
"""No acknowledged write lost across a real Postgres restart.

Starts `partners serve` on a fresh database, sends click events through the REST gateway from
several threads (each with its own Idempotency-Key, retried with the same key until a definite
answer), restarts the real Postgres cluster in the middle (`pg_ctlcluster … restart`), then checks
in the database that every acknowledged event exists exactly once and that every partner's counters
equal its events. Prints the figures; exits non-zero if anything was lost or duplicated.

    python3 scripts/pg-restart-check.py [--seconds 20] [--threads 8]

Run it manually (it restarts the machine's Postgres): cargo build first.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "debug", "partners")
DB = "partners_restart_check"
URL = f"postgres://postgres@127.0.0.1:5432/{DB}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql, db=DB):
    out = subprocess.run(
        ["psql", f"postgres://postgres@127.0.0.1:5432/{db}", "-qAtc", sql],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    version = sorted(os.listdir("/etc/postgresql"))[-1]
    psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", db="postgres")
    env = dict(os.environ, DATABASE_URL=URL, RUST_LOG="warn", PARTNERS_RATE_LIMIT_PER_SECOND="0")
    seeded = subprocess.run([BIN, "seed-demo"], env=env, check=True, capture_output=True, text=True)
    keys = dict(line.split("=", 1) for line in seeded.stdout.split())
    partner_ids = [int(x) for x in psql("SELECT id FROM partners ORDER BY id LIMIT 5").split()]
    http_port = free_port()
    server = subprocess.Popen(
        [BIN, "serve", "--grpc-addr", f"127.0.0.1:{free_port()}", "--http-addr", f"127.0.0.1:{http_port}"],
        env=env,
    )
    base = f"http://127.0.0.1:{http_port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{base}/readyz", timeout=1)
            break
        except Exception:
            time.sleep(0.1)

    stop_at = time.monotonic() + args.seconds
    lock = threading.Lock()
    tally = {"sent": 0, "acknowledged": 0, "failed": 0, "unknown": 0, "retries": 0}
    acked = []

    def worker(w):
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            key = f"restart-{w}-{i}"
            partner = partner_ids[(w + i) % len(partner_ids)]
            body = json.dumps({"data": {"type": "partner_click_events", "attributes": {"event_type": "website"}}}).encode()
            outcome = None
            for attempt in range(100):
                if attempt:
                    with lock:
                        tally["retries"] += 1
                    time.sleep(0.1)
                request = urllib.request.Request(
                    f"{base}/api/v1/partners/{partner}/click_event", data=body, method="POST",
                    headers={"Authorization": f"Bearer {keys['user_key']}", "Content-Type": "application/json",
                             "Idempotency-Key": key},
                )
                try:
                    with urllib.request.urlopen(request, timeout=15) as response:
                        outcome = ("ok", json.load(response)["data"]["id"])
                        break
                except urllib.error.HTTPError as e:
                    if e.code in (429, 503, 504):
                        outcome = ("unknown", None)
                        continue
                    outcome = ("failed", e.code)
                    break
                except Exception:
                    outcome = ("unknown", None)
            with lock:
                tally["sent"] += 1
                if outcome and outcome[0] == "ok":
                    tally["acknowledged"] += 1
                    acked.append((key, outcome[1]))
                elif outcome and outcome[0] == "failed":
                    tally["failed"] += 1
                else:
                    tally["unknown"] += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.threads)]
    for t in threads:
        t.start()
    time.sleep(args.seconds / 3)
    started = time.monotonic()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True)
    restart_took = time.monotonic() - started
    for t in threads:
        t.join()
    server.terminate()
    server.wait(timeout=15)

    keys_ok = {k: int(i) for k, i in (line.split("|") for line in psql(
        "SELECT idempotency_key, id FROM partner_click_events WHERE idempotency_key LIKE 'restart-%'").splitlines())}
    lost = sum(1 for k, i in acked if keys_ok.get(k) != int(i))
    stored = int(psql("SELECT count(*) FROM partner_click_events WHERE idempotency_key LIKE 'restart-%'"))
    duplicated = stored - int(psql(
        "SELECT count(DISTINCT idempotency_key) FROM partner_click_events WHERE idempotency_key LIKE 'restart-%'"))
    mismatched = int(psql(
        "SELECT count(*) FROM partners p WHERE p.website_clicks + p.video_clicks <> "
        "(SELECT count(*) FROM partner_click_events e WHERE e.partner_id = p.id)"))
    print(f"restart took {restart_took:.1f}s; sent {tally['sent']} acknowledged {tally['acknowledged']} "
          f"failed {tally['failed']} unknown {tally['unknown']} retries {tally['retries']} stored {stored} "
          f"lost {lost} duplicated {duplicated} counter mismatches {mismatched}")
    psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", db="postgres")
    sys.exit(1 if lost or duplicated or mismatched or server.returncode != 0 else 0)


if __name__ == "__main__":
    main()
