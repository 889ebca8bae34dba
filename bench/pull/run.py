#!/usr/bin/python3
"""Pull benchmark: crisp's PullImage beside `skopeo copy` of the same image.

Builds a multi-layer image of random content (default 4 layers of 25 MB, gzip),
pushes it to a local registry (test/integration/registry_harness.py), then in one
run pulls it N times with crisp (removing it in between, so every pull downloads,
verifies and imports everything) and copies it N times with skopeo to a fresh
local directory. Reports wall and CPU time (user+system of the crisp daemon or of
skopeo). Needs root and a built tree:

    CRISP_BUILDDIR=/path/to/build /usr/bin/python3 bench/pull/run.py [--layers 4] [--mb 25] [-n 3]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "integration"))

from crisp_daemon import CrispDaemon  # noqa: E402
from image_harness import list_images, pull, registries_conf, remove, stored_layers  # noqa: E402
from registry_harness import Registry, import_builder  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def build_image(layers, mb):
    build = import_builder()
    out = tempfile.mkdtemp(prefix="crisp-bench-img-")
    entries = [[build.file_("data/layer%d.bin" % i, os.urandom(mb << 20))] for i in range(layers)]
    res = build.build_image(out, entries)
    return out, res


def bench_crisp(d, ref, n):
    rows = []
    for _ in range(n):
        remove(d, ref)
        assert list_images(d) == [] and stored_layers(d) == []
        cpu0, t0 = proc_cpu(d.proc.pid), time.monotonic()
        pull(d, ref, timeout=600)
        rows.append((time.monotonic() - t0, proc_cpu(d.proc.pid) - cpu0))
    return rows


def bench_skopeo(host, name, n):
    rows = []
    for _ in range(n):
        dest = tempfile.mkdtemp(prefix="crisp-bench-skopeo-")
        try:
            cmd = ["skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
                   "docker://%s/%s:latest" % (host, name), "dir:" + dest]
            t0 = time.monotonic()
            proc = subprocess.Popen(cmd)
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.monotonic() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            assert proc.returncode == 0, "skopeo failed"
            rows.append((wall, ru.ru_utime + ru.ru_stime))
        finally:
            shutil.rmtree(dest, ignore_errors=True)
    return rows


def summary(label, rows):
    walls = [r[0] for r in rows]
    cpus = [r[1] for r in rows]
    print("%-22s wall median %6.2f s (min %5.2f, max %5.2f)   cpu median %6.2f s"
          % (label, statistics.median(walls), min(walls), max(walls), statistics.median(cpus)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--mb", type=int, default=25)
    ap.add_argument("-n", type=int, default=3)
    args = ap.parse_args()
    layout, res = build_image(args.layers, args.mb)
    tmp = tempfile.mkdtemp(prefix="crisp-bench-")
    d = None
    try:
        with Registry() as reg:
            reg.push_layout(layout, "latest", "bench/big", "latest")
            ref = "%s/bench/big:latest" % reg.host
            d = CrispDaemon(tmp, "[crisp]\nlog-level = info\n")
            with open(os.path.join(d.registries_dir, "bench.conf"), "w") as f:
                f.write(registries_conf(reg.host))
            d.start()
            print("image: %d layers x %d MB random (gzip), %s" % (args.layers, args.mb, ref))
            crisp_rows = bench_crisp(d, ref, args.n)
            skopeo_rows = bench_skopeo(reg.host, "bench/big", args.n)
            summary("crisp PullImage", crisp_rows)
            summary("skopeo copy to dir:", skopeo_rows)
    finally:
        if d is not None:
            d.cleanup()
        shutil.rmtree(layout, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
