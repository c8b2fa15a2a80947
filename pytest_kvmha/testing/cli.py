"""``python -m pytest_kvmha.testing up|down``: a lab started and stopped by hand.

``up`` forks a supervisor that starts the lab, owns (and reaps) its daemons and stops it on
SIGTERM; ``down`` signals that supervisor (or, without one, stops the lab from its state file).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .lab import STATE_FILE, Lab
from .processes import alive, comm


def _supervise(lab: Lab, workdir: Path, ready_w: int) -> None:
    """Body of the background process started by ``up``: owns (and reaps) the lab daemons."""
    stop_requested = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        lab.start()
        msg = json.dumps({"ok": True, "timings": lab.timings})
    except Exception as exc:  # noqa: BLE001
        msg = json.dumps({"ok": False, "error": str(exc)})
        os.write(ready_w, msg.encode())
        os._exit(1)
    state = json.loads((workdir / STATE_FILE).read_text())
    state["supervisor_pid"] = os.getpid()
    (workdir / STATE_FILE).write_text(json.dumps(state, indent=2))
    os.write(ready_w, msg.encode())
    os.close(ready_w)
    while not stop_requested:
        signal.pause()
    problems = lab.stop()
    (workdir.parent / f".{workdir.name}.down.json").write_text(json.dumps(problems))
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_kvmha.testing up|down`` entry point."""
    parser = argparse.ArgumentParser(prog="python -m pytest_kvmha.testing")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a lab in the background")
    up.add_argument("--hosts", type=int, default=2)
    up.add_argument("--workdir", type=Path, default=Path("/tmp/kvmha-lab"))
    up.add_argument("--prefix", default="kvmha")
    up.add_argument("--first-host", type=int, default=1)
    up.add_argument("--libvirt-cache", type=Path, default=None)
    down = sub.add_parser("down", help="stop the lab recorded in WORKDIR")
    down.add_argument("--workdir", type=Path, default=Path("/tmp/kvmha-lab"))
    args = parser.parse_args(argv)

    if args.cmd == "up":
        lab = Lab(
            args.workdir,
            hosts=args.hosts,
            prefix=args.prefix,
            libvirt_cache=args.libvirt_cache,
            first_host=args.first_host,
        )
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            _supervise(lab, args.workdir, w)
            os._exit(0)
        os.close(w)
        chunks = []
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        result = json.loads(b"".join(chunks) or b'{"ok": false, "error": "supervisor died"}')
        if not result["ok"]:
            print(f"lab start failed: {result['error']}", file=sys.stderr)
            return 1
        started = Lab.attach(args.workdir)
        print(f"ssh_config: {started.ssh_config}")
        for h in started.hosts:
            print(f"{h.name}: {h.spec}  (ssh -F {started.ssh_config} {h.name})")
        print("timings: " + ", ".join(f"{k}={v:.2f}s" for k, v in result["timings"].items()))
        return 0

    state_path = args.workdir / STATE_FILE
    if not state_path.exists():
        print(f"no lab state in {args.workdir}", file=sys.stderr)
        return 1
    state = json.loads(state_path.read_text())
    sup = state.get("supervisor_pid")
    result_file = args.workdir.parent / f".{args.workdir.name}.down.json"
    if sup and (comm(sup) or "").startswith("python"):
        os.kill(sup, signal.SIGTERM)
        deadline = time.monotonic() + 120
        while alive(sup) and time.monotonic() < deadline:
            time.sleep(0.1)
        problems = (
            json.loads(result_file.read_text())
            if result_file.exists()
            else ["supervisor did not report"]
        )
        result_file.unlink(missing_ok=True)
    else:
        problems = Lab.attach(args.workdir).stop()
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    print("lab stopped" + (" with problems" if problems else ""))
    return 1 if problems else 0
