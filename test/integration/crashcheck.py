"""How crisp's processes ended: sanitizer reports and monitors that crashed.

A sanitizer build (configure --enable-sanitizers[=thread]) reads ASAN_OPTIONS, UBSAN_OPTIONS,
LSAN_OPTIONS and TSAN_OPTIONS from the environment, which crisp passes on to crisp-conmon.
sanitizer_env() keeps the caller's options (detect_leaks=1, suppressions=...), sends every ASan,
LSan and TSan report to a file of its own,
<dir>/report.<program>.<pid>, and makes a process that a sanitizer ends exit with SANITIZER_EXIT.
UBSan linked beside ASan by GCC ignores log_path and writes to stderr: crisp's stderr is its log
(sanitizer_lines() finds the report there); a monitor's is /dev/null, so a monitor's UBSan
report is seen only as its exit status. A test fails on any report file, report in crisp's log,
or SANITIZER_EXIT. Monitors double-fork away from crisp: when the suite runs under reaper.py
(make integration does), each monitor's end is logged, and one that died of a signal other than
SIGKILL, or exited with a status other than 0 or 1 (1: its container could not be created),
fails the test."""
import os
import re
import signal

SANITIZER_VARS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS")
SANITIZER_EXIT = 66
# Options added unless the caller set them: UBSan prints a stack, ASan reports an abort(), and
# a sanitizer's exit status tells its end from the monitor's own "create failed" (1).
DEFAULTS = {"UBSAN_OPTIONS": ("print_stacktrace=1", "halt_on_error=0",
                              "exitcode=%d" % SANITIZER_EXIT),
            "ASAN_OPTIONS": ("handle_abort=1", "exitcode=%d" % SANITIZER_EXIT),
            # TSan reports every race and, at exit, ends the process with the exit code.
            "TSAN_OPTIONS": ("halt_on_error=0", "exitcode=%d" % SANITIZER_EXIT)}
REPORT = "report"
# How the sanitizers start a report on stderr ("file.c:12:5: runtime error: ..." is UBSan's).
REPORT_START = re.compile(r"^\S+:\d+:\d+: runtime error: |==\d+==ERROR: \w+Sanitizer|^WARNING: ThreadSanitizer: ")


def sanitizer_env(env, log_dir):
    """A copy of env whose sanitizers write their reports into log_dir."""
    os.makedirs(log_dir, exist_ok=True)
    env = dict(env)
    for var in SANITIZER_VARS:
        opts = [o for o in env.get(var, "").split(":")
                if o and not o.startswith(("log_path=", "log_exe_name="))]
        keys = {o.split("=", 1)[0] for o in opts}
        opts += [o for o in DEFAULTS.get(var, ()) if o.split("=", 1)[0] not in keys]
        opts += ["log_path=" + os.path.join(log_dir, REPORT), "log_exe_name=1"]
        env[var] = ":".join(opts)
    return env


def sanitizer_reports(log_dir):
    """["<file>:\\n<report>"] for every report written into log_dir."""
    found = []
    if not os.path.isdir(log_dir):
        return found
    for name in sorted(os.listdir(log_dir)):
        if name.startswith(REPORT + "."):
            with open(os.path.join(log_dir, name), errors="replace") as f:
                found.append("sanitizer report %s:\n%s" % (name, f.read()))
    return found


def sanitizer_lines(path, context=30):
    """["<path>:\n<report>"] for each sanitizer report in a log file (a process's stderr)."""
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    found = []
    skip_to = 0
    for i, line in enumerate(lines):
        if i >= skip_to and REPORT_START.search(line):
            found.append("sanitizer report in %s:\n%s" % (path, "\n".join(lines[i:i + context])))
            skip_to = i + context
    return found


class MonitorExits:
    """Reads the lines reaper.py logs from where the last read() stopped."""

    def __init__(self, path=None):
        self.path = path if path is not None else os.environ.get("CRISP_REAPER_LOG")
        self.offset = os.path.getsize(self.path) if self.path else 0

    def watched(self):
        return self.path is not None

    def read(self):
        """["crisp-conmon pid N ..."] for each monitor that crashed since the last read."""
        if not self.path:
            return []
        with open(self.path) as f:
            f.seek(self.offset)
            lines = f.read().splitlines()
            self.offset = f.tell()
        return [describe(line) for line in lines if crashed(line)]


def signal_name(n):
    try:
        return signal.Signals(n).name
    except ValueError:
        return "signal %d" % n


def crashed(line):
    _, how, n = line.split()
    return int(n) not in ((signal.SIGKILL,) if how == "signal" else (0, 1))


def describe(line):
    pid, how, n = line.split()
    if how == "signal":
        how = "was killed by %s" % signal_name(int(n))
    else:
        how = "exited with status %s" % n
        if int(n) == SANITIZER_EXIT:
            how += " (a sanitizer's: its report is on the monitor's stderr, /dev/null)"
    return "crisp-conmon pid %s %s" % (pid, how)
