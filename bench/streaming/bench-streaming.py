#!/usr/bin/python3
"""Exec round-trip through crisp's streaming paths beside runc alone, and the memory of a
container's monitor while interactive exec sessions are open.

1. Round trip of `true` in one running busybox container, from the CRI call to the exit status
   in hand, median and p90 over N iterations; each iteration runs every column once, in an
   order that rotates, so the machine's noise falls on all of them alike:
   - Exec + WebSocket (v5.channel.k8s.io, test/integration/ws_client.py): the Exec RPC, the
     handshake, the session until the server's close, the exit status parsed;
   - Exec + SPDY/3.1 (v4.channel.k8s.io, test/integration/spdy_client.py): the same;
   - ExecSync over gRPC;
   - the floor: `runc --root R exec ID true` on the same container, the runtime, R and ID read
     from the monitor's command line (what the monitor itself runs for every exec).
   No containerd column: /usr/bin/containerd is not installed where this was written (README).
2. Memory of the container's monitor, found as the test harness finds it (crisp-conmon whose
   argv names the container) and checked against the pid in its state dir's `monitor` file:
   idle before any exec, idle after the round trips, then with 1 and 10 interactive `sh`
   sessions (stdin + tty over WebSocket, each answering a command before it counts as open),
   and idle again after they are closed: the single one by `exit`, the ten as a client that
   goes away (a WebSocket CLOSE, then the TCP connection), noting what the server answered to
   the CLOSE and how long the session children take to go.  Each session is a forked child
   of the monitor (conmon-session) under which `runc exec` waits for the shell; the monitor
   alone, the monitor with its session children, and those `runc exec` processes are three
   groups, each with Rss, Pss, Private_Dirty (/proc/PID/smaps_rollup, summed) and its unique
   resident pages (physical frames from /proc/PID/pagemap, each counted once).

Usage (root, in a fresh network namespace as the tests run):
    unshare -n sh -c 'ip link set lo up; exec /usr/bin/python3 \\
        bench/streaming/bench-streaming.py [-n 50] [--json]'
with CRISP_BUILDDIR=/path/to/build when the build is not in the source tree.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "integration"))

import ws_client  # noqa: E402
from bench_env import busybox_crisp  # noqa: E402
from container_harness import SLEEPER, monitors, wait_for  # noqa: E402
from cri_client import pb  # noqa: E402
from spdy_client import exec_session as spdy_exec_session  # noqa: E402

RUNC = shutil.which("runc") or "/usr/sbin/runc"
CONTAINERD = "/usr/bin/containerd"
SPDY_PROTOCOL = "v4.channel.k8s.io"
COMMAND = ["true"]
SESSION_LEVELS = (1, 10)
PAGE = os.sysconf("SC_PAGE_SIZE")
PFN_MASK = (1 << 55) - 1
COLUMNS = ("ws", "spdy", "execsync", "runc")
TITLES = {"ws": "Exec + WebSocket v5", "spdy": "Exec + SPDY v4", "execsync": "ExecSync (gRPC)",
          "runc": "runc exec (floor)"}


def p90(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.90 * (len(xs) - 1))))]


def summary(values):
    return {"median_ms": round(statistics.median(values), 2), "p90_ms": round(p90(values), 2),
            "min_ms": round(min(values), 2), "max_ms": round(max(values), 2)}


# ---- the four ways to run `true` ----

def exec_url(c, cid):
    return c.call("Exec", pb.ExecRequest(container_id=cid, cmd=COMMAND, stdout=True,
                                         stderr=True)).url


def via_ws(d, cid, _mon):
    url = exec_url(d.client, cid)
    t_rpc = time.perf_counter()
    s = ws_client.exec_session(url, (ws_client.V5,))
    t_open = time.perf_counter()
    try:
        s.wait_closed(30)
        code = s.exit_code()
    finally:
        s.close()
    return code, (t_rpc, t_open)


def via_spdy(d, cid, _mon):
    url = exec_url(d.client, cid)
    t_rpc = time.perf_counter()
    s, ids, proto = spdy_exec_session(url, protocols=(SPDY_PROTOCOL,))
    t_open = time.perf_counter()
    try:
        s.wait_closed([ids["error"], ids["stdout"], ids["stderr"]], 30)
        code = ws_client.exit_code(proto, s.data.get(ids["error"], b""))
    finally:
        s.close()
    return code, (t_rpc, t_open)


def via_execsync(d, cid, _mon):
    r = d.client.call("ExecSync", pb.ExecSyncRequest(container_id=cid, cmd=COMMAND,
                                                     timeout=30), timeout=60)
    return r.exit_code, None


def via_runc(_d, _cid, mon):
    argv = [mon["runtime"], "--root", mon["runtime_root"], "exec", mon["id"], *COMMAND]
    res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    return res.returncode, None


WAYS = {"ws": via_ws, "spdy": via_spdy, "execsync": via_execsync, "runc": via_runc}


def round_trips(d, cid, mon, n, warmup):
    """{column: [ms]} over N rotating rounds, and for the streaming columns {column: {part:
    [ms]}}: the Exec RPC, the session's opening (upgrade, and for SPDY its streams), the rest
    (the command's run until the status and the close)."""
    times = {k: [] for k in COLUMNS}
    parts = {k: {"Exec RPC": [], "open": [], "run+close": []} for k in ("ws", "spdy")}
    for i in range(-warmup, n):
        order = COLUMNS[i % len(COLUMNS):] + COLUMNS[:i % len(COLUMNS)]
        for k in order:
            t0 = time.perf_counter()
            code, marks = WAYS[k](d, cid, mon)
            t1 = time.perf_counter()
            if code != 0:
                raise RuntimeError("%s: `%s` exited with %s" % (TITLES[k], " ".join(COMMAND),
                                                               code))
            if i >= 0:
                times[k].append((t1 - t0) * 1000)
                if marks is not None:
                    for part, a, b in (("Exec RPC", t0, marks[0]), ("open", *marks),
                                       ("run+close", marks[1], t1)):
                        parts[k][part].append((b - a) * 1000)
    return times, parts


# ---- the monitor and what hangs below it ----

def argv_value(argv, opt):
    return argv[argv.index(opt) + 1] if opt in argv else None


def find_monitor(cid):
    """The container's monitor as the harness finds it (argv), checked against its state
    dir: {pid, id, state_dir, runtime_root}."""
    mons = monitors(cid)
    if len(mons) != 1:
        raise RuntimeError("expected one monitor for %s, found %s" % (cid[:12], mons))
    pid = mons[0]
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0")[:-1]]
    mon = {"pid": pid, "id": argv_value(argv, "--id"), "state_dir": argv_value(argv, "--state-dir"),
           "runtime_root": argv_value(argv, "--runtime-root"),
           "runtime": argv_value(argv, "--runtime") or RUNC}
    with open(os.path.join(mon["state_dir"], "monitor")) as f:
        info = dict(line.split("=", 1) for line in f.read().split())
    if int(info["pid"]) != pid:
        raise RuntimeError("monitor file names pid %s, argv search found %d" % (info["pid"], pid))
    if not mon["runtime_root"]:
        raise RuntimeError("the monitor has no --runtime-root: %s" % argv)
    return mon


def smaps(pid):
    out = {"Rss": 0, "Pss": 0, "Private_Dirty": 0}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                parts = line.split()
                if parts[0][:-1] in out:
                    out[parts[0][:-1]] = int(parts[1])
    except OSError:
        pass  # gone in between: counts nothing
    return out


def resident_pages(pid):
    """The physical page frames PID has resident (/proc/PID/pagemap, root only)."""
    frames = set()
    try:
        with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/pagemap" % pid, "rb") as pm:
            for line in maps:
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                if line.rstrip().endswith("[vsyscall]"):
                    continue
                pm.seek(start // PAGE * 8)
                data = pm.read((end - start) // PAGE * 8)
                for (e,) in struct.iter_unpack("<Q", data):
                    if e >> 63:
                        frames.add(e & PFN_MASK)
    except OSError:
        pass
    return frames


def proc_table():
    """{pid: (ppid, comm)} of every process now."""
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            procs[int(entry)] = (int(stat.rsplit(")", 1)[1].split()[1]), comm)
    return procs


def children(procs, pid):
    return sorted(p for p, (pp, _) in procs.items() if pp == pid)


def subtree(procs, pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(procs, p)
    return out


def monitor_memory(mon):
    """Memory (KiB) of the monitor, of the monitor with its session children, and of the
    `runc exec` processes below those; the container's own processes are left out.  Pss
    splits a page among every process that maps it, other containers' monitors of the same
    binary included, so it moves with what else runs on the machine; "unique" counts each
    physical page of the group once (pagemap) and Private_Dirty is the group's own writes."""
    procs = proc_table()
    sessions = [p for p in children(procs, mon["pid"]) if procs[p][1] == "conmon-session"]
    runcs = [p for s in sessions for p in subtree(procs, s)
             if p != s and procs[p][1].startswith("runc")]
    keys = ("Rss", "Pss", "Private_Dirty")

    def group(pids):
        ms = [smaps(p) for p in pids]
        out = {k: sum(x[k] for x in ms) for k in keys}
        out["unique"] = len(set().union(*[resident_pages(p) for p in pids])) * PAGE // 1024
        return out
    return {"sessions": len(sessions), "runc_exec": len(runcs),
            "monitor": group([mon["pid"]]),
            "monitor+sessions": group([mon["pid"]] + sessions),
            "runc exec": group(runcs)}


def settle():
    time.sleep(1)  # let the children finish their start-up writes before reading smaps


def open_shell(d, cid, n):
    """An interactive `sh` (stdin + tty) over WebSocket that has answered a command."""
    url = d.client.call("Exec", pb.ExecRequest(container_id=cid, cmd=["sh"], stdin=True,
                                               stdout=True, stderr=False, tty=True)).url
    s = ws_client.exec_session(url, (ws_client.V5,))
    s.send_stdin(b"echo open-$((%d*1000+7))\n" % n)
    want = b"open-%d" % (n * 1000 + 7)
    s.wait(lambda: want in s.stdout, 20, what="the answer %r" % want)
    return s


def sessions_gone(mon, timeout=20):
    """Seconds until the monitor has no session child left, or None after TIMEOUT."""
    t0 = time.monotonic()
    try:
        wait_for(lambda: monitor_memory(mon)["sessions"] == 0, timeout, 0.02, "sessions to end")
    except AssertionError:
        return None
    return time.monotonic() - t0


def drop_all(sessions):
    """Ends SESSIONS the way a client that goes away does: a WebSocket CLOSE each, then the
    TCP connection.  Returns what each server said back within 2 s of the CLOSE."""
    for s in sessions:
        s.ws.send_close()
    answers = []
    deadline = time.monotonic() + 2
    for s in sessions:
        try:
            s.wait_closed(max(deadline - time.monotonic(), 0.001))
            answers.append("CLOSE %d" % s.close_code if s.close_code is not None
                           else "EOF, no CLOSE")
        except AssertionError:
            answers.append("nothing within 2 s")
        s.ws.shutdown()
    return answers


def memory_levels(d, cid, mon, rows):
    """Appends a row per session level to ROWS; closes what it opened, even on failure."""
    open_ = []
    try:
        for level in SESSION_LEVELS:
            while len(open_) < level:
                open_.append(open_shell(d, cid, len(open_)))
            settle()
            rows.append(("%d open session%s" % (level, "s" if level > 1 else ""),
                         monitor_memory(mon)))
            if level == 1:
                # The single session ends the way a user ends it: `exit`.
                s = open_.pop()
                s.send_stdin(b"exit\n")
                s.wait_closed(20)
                code = s.exit_code() if s.error else None
                s.close()
                gone = sessions_gone(mon)
                rows.append(("after `exit` of it", dict(monitor_memory(mon), closed_s=gone,
                                                         exit_code=code)))
        # The rest end the way a dropped kubectl ends them.
        t0 = time.monotonic()
        answers = drop_all(open_)
        open_ = []
        gone = sessions_gone(mon)
        gone = None if gone is None else time.monotonic() - t0
        settle()
        rows.append(("after dropping all %d" % SESSION_LEVELS[-1],
                     dict(monitor_memory(mon), closed_s=gone,
                          server_answers={a: answers.count(a) for a in set(answers)})))
    finally:
        for s in open_:
            s.close()


# ---- the run ----

def run(n, warmup):
    result = {"n": n, "command": COMMAND,
              "containerd": ("installed, but this script has no containerd column yet"
                             if os.path.exists(CONTAINERD)
                             else "not installed (%s): no column" % CONTAINERD)}
    leaks = []
    with busybox_crisp("crisp-bench-streaming-", "[crisp]\nlog-level = info\n", leaks) as env:
        d = env.d
        pod = env.run_pod("bench")
        cid = env.run(pod, "sleeper", command=SLEEPER)
        mon = find_monitor(cid)
        settle()
        rows = [("idle, before any exec", monitor_memory(mon))]
        times, parts = round_trips(d, cid, mon, n, warmup)
        settle()
        rows.append(("idle, %d crisp execs later" % ((n + warmup) * 3), monitor_memory(mon)))
        memory_levels(d, cid, mon, rows)
        result["latency"] = {k: summary(v) for k, v in times.items()}
        result["parts"] = {k: {part: summary(v) for part, v in p.items()}
                           for k, p in parts.items()}
        result["memory"] = [dict(r, state=name) for name, r in rows]
    result["leaks"] = leaks
    return result


def print_table(r):
    print("exec round trip of `%s` in one running busybox container, n=%d (ms)"
          % (" ".join(r["command"]), r["n"]))
    floor = r["latency"]["runc"]["median_ms"]
    print("%-22s %8s %8s %8s %8s %12s" % ("", "median", "p90", "min", "max", "over floor"))
    for k in COLUMNS:
        v = r["latency"][k]
        print("%-22s %8.1f %8.1f %8.1f %8.1f %12s" % (
            TITLES[k], v["median_ms"], v["p90_ms"], v["min_ms"], v["max_ms"],
            "" if k == "runc" else "%+.1f" % (v["median_ms"] - floor)))
    for k, p in r["parts"].items():
        print("  %s, median of each part: %s" % (TITLES[k], ", ".join(
            "%s %.1f" % (part, v["median_ms"]) for part, v in p.items())))
    print("containerd: %s" % r["containerd"])
    print("\nthe container's monitor, KiB (Rss / Pss / Private_Dirty / unique physical pages "
          "of the group);\nthe container's own processes left out")
    groups = (("monitor", "monitor alone"), ("monitor+sessions", "monitor + session children"),
              ("runc exec", "runc exec under them"))
    print("%-26s %4s  %-27s  %-27s  %-27s" % (("", "sess") + tuple(t for _, t in groups)))
    for row in r["memory"]:
        print("%-26s %4d  %s" % (row["state"], row["sessions"], "  ".join(
            "%-27s" % " / ".join(str(row[g][k]) for k in ("Rss", "Pss", "Private_Dirty",
                                                          "unique"))
            for g, _ in groups)))
    for row in r["memory"]:
        if "closed_s" not in row:
            continue
        gone = ("session children gone %.2f s after" % row["closed_s"]
                if row["closed_s"] is not None else "SESSION CHILDREN STILL THERE 20 s after")
        notes = []
        if "exit_code" in row:
            notes.append("exit status %s" % row["exit_code"])
        if "server_answers" in row:
            notes.append("server's answer to the client's CLOSE: %s" % ", ".join(
                "%s x%d" % kv for kv in sorted(row["server_answers"].items())))
        print("%s: %s%s" % (row["state"], gone, "; " + "; ".join(notes) if notes else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    r = run(args.n, args.warmup)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print_table(r)
    if r["leaks"]:
        print("left behind: %s" % r["leaks"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
