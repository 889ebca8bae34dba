#!/usr/bin/python3
"""crisp-conmon against Debian's conmon, in one run, with the same busybox bundle and runc:
memory (Rss, Pss, Private_Dirty from /proc/PID/smaps_rollup) of each monitor beside an idle
container, and the wall time from monitor start to container running, beside `runc run -d`
alone (median of N).

usage: bench.py [-n N] [--builddir DIR]      (root; conmon: contrib/install-deps.sh --bench)
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "integration"))

import conmon_harness as H  # noqa: E402

CONMON = shutil.which("conmon") or "/usr/bin/conmon"


def smaps(pid):
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:", "Private_Dirty:"):
                out[parts[0][:-1]] = int(parts[1])
    return out


def kill(pid):
    try:
        os.kill(pid, 9)
    except (ProcessLookupError, TypeError):
        pass


def measure(mon, n):
    """Memory once, then n timed starts; the container is stopped even when a step fails."""
    times, mem = [], None
    for i in range(n + 1):
        try:
            pid, _, elapsed = mon.run()
            if i == 0:
                time.sleep(1)
                mem = smaps(pid)
            else:
                times.append(elapsed)
        finally:
            mon.stop()
    return mem, times


def measure_concurrent(cls, tmp, bundle, k):
    """Mean Pss and Private_Dirty of k monitors of one kind running side by side: what each
    costs on a node, where the binary's pages are shared."""
    mons = [cls(tmp, bundle) for _ in range(k)]
    try:
        pids = [mon.run()[0] for mon in mons]
        time.sleep(1)
        mems = [smaps(pid) for pid in pids]
    finally:
        for mon in mons:
            mon.stop()
    return {key: sum(m[key] for m in mems) / k for key in ("Rss", "Pss", "Private_Dirty")}


def runc(root, *args):
    subprocess.run([H.RUNC, "--root", root] + list(args), check=True, capture_output=True)


class CrispConmon:
    name = "crisp-conmon"

    def __init__(self, tmp, bundle):
        self.tmp, self.bundle = tmp, bundle

    def run(self):
        """Starts monitor and container; returns (monitor pid, container pid, seconds)."""
        d = tempfile.mkdtemp(dir=self.tmp)
        self.m = H.Monitor(d, "bench-%s" % uuid.uuid4().hex[:10], self.bundle,
                           os.path.join(d, "runc"))
        t0 = time.monotonic()
        assert self.m.spawn(), self.m.error
        self.m.start()
        return self.m.pid, self.m.container_pid, time.monotonic() - t0

    def stop(self):
        kill(self.m.container_pid)
        if self.m.pid:
            self.m.wait_exit()
        self.m.cleanup()


class DebianConmon:
    name = "conmon 2.1.6"

    def __init__(self, tmp, bundle):
        self.tmp, self.bundle = tmp, bundle

    def run(self):
        d = tempfile.mkdtemp(dir=self.tmp)
        self.cid, self.root = "bench-%s" % uuid.uuid4().hex[:10], os.path.join(d, "runc")
        self.pid = self.container_pid = None
        r, w = os.pipe()
        env = dict(os.environ, _OCI_SYNCPIPE=str(w))
        argv = [CONMON, "--api-version", "1", "-c", self.cid, "-u", self.cid, "-n", self.cid,
                "-r", H.RUNC, "--runtime-arg", "--root=" + self.root, "-b", self.bundle,
                "-p", os.path.join(d, "pidfile"), "-P", os.path.join(d, "conmon.pid"),
                "-l", "k8s-file:" + os.path.join(d, "ctr.log"), "--exit-dir", d,
                "--socket-dir-path", d, "--log-level", "error"]
        t0 = time.monotonic()
        p = subprocess.Popen(argv, pass_fds=[w], env=env, stdout=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as f:
            line = f.readline()
            msg = json.loads(line)
        assert msg.get("data", -1) > 0, line  # conmon's sync pipe: {"data": container pid}
        p.wait()
        runc(self.root, "start", self.cid)
        elapsed = time.monotonic() - t0
        with open(os.path.join(d, "conmon.pid")) as f:
            self.pid = int(f.read())
        self.container_pid = msg["data"]
        return self.pid, self.container_pid, elapsed

    def stop(self):
        kill(self.container_pid)
        if self.pid:
            H.wait_for(lambda: not os.path.exists("/proc/%d/fd/0" % self.pid), 20)
        subprocess.run([H.RUNC, "--root", self.root, "delete", "-f", self.cid],
                       capture_output=True)


def runc_alone(tmp, bundle):
    d = tempfile.mkdtemp(dir=tmp)
    root, cid = os.path.join(d, "runc"), "bench-%s" % uuid.uuid4().hex[:10]
    t0 = time.monotonic()
    subprocess.run([H.RUNC, "--root", root, "run", "-d", "--bundle", bundle, cid], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    subprocess.run([H.RUNC, "--root", root, "delete", "-f", cid], capture_output=True)
    return elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("-k", type=int, default=5, help="monitors side by side for the mean Pss")
    ap.add_argument("--builddir", default=None)
    args = ap.parse_args()
    if args.builddir:
        os.environ["CRISP_BUILDDIR"] = args.builddir
    tmp = tempfile.mkdtemp(prefix="crisp-bench-monitor-")
    try:
        bundle = H.make_bundle(os.path.join(tmp, "bundle"), ["sleep", "100000"])
        # A binary fresh from the linker sits dirty in the page cache, and smaps counts such
        # pages as Private_Dirty: write them back first.
        os.sync()
        monitors = [CrispConmon(tmp, bundle)]
        if os.path.exists(CONMON):
            monitors.append(DebianConmon(tmp, bundle))
        else:
            print("conmon not installed (contrib/install-deps.sh --bench): skipped")
        results = {mon.name: measure(mon, args.n) for mon in monitors}
        print("%-14s %8s %8s %14s   (KiB, idle busybox container)" %
              ("monitor", "Rss", "Pss", "Private_Dirty"))
        for name, (mem, _) in results.items():
            print("%-14s %8d %8d %14d" % (name, mem["Rss"], mem["Pss"], mem["Private_Dirty"]))
        print("\nmean of %d side by side (KiB):" % args.k)
        for mon in monitors:
            mem = measure_concurrent(type(mon), tmp, bundle, args.k)
            print("%-14s %8d %8d %14d" % (mon.name, mem["Rss"], mem["Pss"], mem["Private_Dirty"]))
        times = {name: ts for name, (_, ts) in results.items()}
        times["runc run -d"] = [runc_alone(tmp, bundle) for _ in range(args.n)]
        print("\nstart to running, median of %d (ms):" % args.n)
        for name, ts in times.items():
            print("  %-14s %7.1f   (min %.1f, max %.1f)" % (
                name, statistics.median(ts) * 1e3, min(ts) * 1e3, max(ts) * 1e3))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
