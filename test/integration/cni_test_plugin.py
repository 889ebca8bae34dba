#!/usr/bin/python3
"""A chained CNI plugin for tests: passes prevResult through, and when the file named by
"pauseFile" in its config exists, records the command in "markerDir" and sleeps, so a
test can kill crisp in the middle of ADD or DEL."""
import json
import os
import sys
import time

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
    if os.path.exists(os.path.join(marker_dir, "pause-" + cmd)):
        time.sleep(float(conf.get("sleep", 30)))
if cmd == "ADD":
    print(json.dumps(conf.get("prevResult", {"cniVersion": conf.get("cniVersion")})))
sys.exit(0)
