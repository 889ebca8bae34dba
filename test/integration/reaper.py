#!/usr/bin/python3
"""reaper.py LOG COMMAND...: runs COMMAND (the test suite) as the subreaper of what it starts.

crisp-conmon double-forks away from whoever started it, so neither crisp nor the tests can see
how a monitor ended; here every orphan comes back to us. For each crisp-conmon that ends, one
line "pid <exit|signal> <number>" is appended to LOG (whose path COMMAND also finds in
$CRISP_REAPER_LOG); the fixtures read it (crashcheck.monitor_exits). Exits as COMMAND did."""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def comm(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split("(", 1)[1].rsplit(")", 1)[0]
    except (OSError, IndexError):
        return ""


def main():
    log, cmd = sys.argv[1], sys.argv[2:]
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("reaper: prctl: %s" % os.strerror(ctypes.get_errno()))
    open(log, "w").close()
    child = os.fork()
    if child == 0:
        os.environ["CRISP_REAPER_LOG"] = log
        os.execvp(cmd[0], cmd)
    # Ctrl-C reaches the whole foreground group, COMMAND included: nothing to pass on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: os.kill(child, s))
    while True:
        try:
            # Look before reaping: a zombie still has its name.
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        except InterruptedError:
            continue
        except ChildProcessError:
            sys.exit(1)
        name = comm(info.si_pid)
        _, status = os.waitpid(info.si_pid, 0)
        if info.si_pid == child:
            sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status)
                     else 128 + os.WTERMSIG(status))
        if name == "crisp-conmon":
            how = ("exit %d" % os.WEXITSTATUS(status) if os.WIFEXITED(status)
                   else "signal %d" % os.WTERMSIG(status))
            with open(log, "a") as f:
                f.write("%d %s\n" % (info.si_pid, how))


if __name__ == "__main__":
    main()
