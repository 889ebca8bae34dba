#!/usr/bin/python3
"""A chained CNI plugin for tests: passes prevResult through, and when the file named by
"pauseFile" in its config exists, records the command in "markerDir" and sleeps, so a
test can kill crisp in the middle of ADD or DEL.  Each call's prevResult is appended to
"<markerDir>/<command>-prev" as a line of JSON, and the descriptors above 2 it was started
with to "<markerDir>/<command>-fds" ({"fd": target})."""
import json
import os
import sys
import time


def inherited():
    """Descriptors above 2 open now, before this script opens any of its own."""
    out = {}
    for fd in range(3, 1024):
        try:
            out[str(fd)] = os.readlink("/proc/self/fd/%d" % fd)
        except OSError:
            pass
    return out


fds = inherited()
conf = json.load(sys.stdin)
cmd = os.environ.get("CNI_COMMAND", "")
if cmd == "VERSION":
    print(json.dumps({"cniVersion": conf.get("cniVersion", "1.0.0"),
                      "supportedVersions": ["0.4.0", "1.0.0"]}))
    sys.exit(0)
marker_dir = conf.get("markerDir")
if marker_dir:
    with open(os.path.join(marker_dir, cmd), "a") as f:
        f.write(os.environ.get("CNI_CONTAINERID", "") + "\n")
    # The prevResult each call got, a line of JSON per call ({} for none).
    with open(os.path.join(marker_dir, cmd + "-prev"), "a") as f:
        f.write(json.dumps(conf.get("prevResult", {})) + "\n")
    with open(os.path.join(marker_dir, cmd + "-fds"), "a") as f:
        f.write(json.dumps(fds) + "\n")
    # Paused while the file exists, at most "sleep" seconds: removing it lets the plugin go.
    pause = os.path.join(marker_dir, "pause-" + cmd)
    deadline = time.monotonic() + float(conf.get("sleep", 30))
    while os.path.exists(pause) and time.monotonic() < deadline:
        time.sleep(0.05)
if cmd == "ADD":
    print(json.dumps(conf.get("prevResult", {"cniVersion": conf.get("cniVersion")})))
sys.exit(0)
