"""Starts and stops a real crisp daemon on its own socket and state directories, and records
how it ended: problems() lists each exit that was not asked for (a non-zero status, a signal
the harness did not send) and each sanitizer report crisp or its monitors wrote."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import grpc

from crashcheck import sanitizer_env, sanitizer_lines, sanitizer_reports, signal_name
from cri_client import CRIClient, pb
from leakcheck import Scope, state_files

BUILDDIR = os.environ.get(
    "CRISP_BUILDDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
CRISP = os.path.join(BUILDDIR, "crisp")
CONMON = os.path.join(BUILDDIR, "crisp-conmon")


class CrispDaemon:
    def __init__(self, tmpdir=None, config=""):
        self.tmp = tmpdir or tempfile.mkdtemp(prefix="crisp-it-")
        os.makedirs(self.tmp, exist_ok=True)
        self.sock = os.path.join(self.tmp, "crisp.sock")
        self.root = os.path.join(self.tmp, "root")
        self.run_root = os.path.join(self.tmp, "run")
        self.cni_dir = os.path.join(self.tmp, "cni")
        self.conf_dir = os.path.join(self.tmp, "crisp.conf.d")
        self.registries_dir = os.path.join(self.tmp, "registries.d")
        self.conf_file = os.path.join(self.tmp, "crisp.conf")
        self.log_path = os.path.join(self.tmp, "crisp.log")
        self.san_dir = os.path.join(self.tmp, "san")
        for d in (self.cni_dir, self.conf_dir, self.registries_dir):
            os.makedirs(d, exist_ok=True)
        with open(self.conf_file, "w") as f:
            f.write(self.base_config() + "\n" + config)
        self.proc = None
        self.client = None
        self.extra_args = []
        self.ids = set()           # every pod and container made through self.client
        self.cgroup_names = []     # cgroups a test chose for it (cgroup_parent, monitor-cgroup)
        self.ends = []             # how each run of crisp ended, when it was not asked to
        self.started = False

    def base_config(self):
        return ("[crisp]\nlisten = %s\nroot = %s\nrun-root = %s\nlog-level = debug\n"
                "shutdown-grace = 5\n"
                "[runtime]\nconmon = %s\n"
                "[network]\ncni-config-dir = %s\n"
                "[image]\nregistries-dir = %s\n"
                % (self.sock, self.root, self.run_root, CONMON, self.cni_dir,
                   self.registries_dir))

    def command(self, *extra):
        return [CRISP, "--config", self.conf_file, "--config-dir", self.conf_dir,
                *self.extra_args, *extra]

    def start(self, timeout=20):
        # A socket file left by a crisp that was killed may still be held open by something
        # that crisp had forked: connecting there would pass the check below and then fail.
        # The new crisp replaces the file anyway, so remove it first.
        if self.proc is None and os.path.exists(self.sock):
            os.unlink(self.sock)
        self._close_client()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     env=sanitizer_env(os.environ, self.san_dir))
        log.close()
        self.started = True
        deadline = time.monotonic() + timeout
        # Wait for the socket to accept before making the channel: a gRPC channel whose first
        # connect fails backs off for seconds before it tries again.
        while not self._socket_accepts():
            if self.proc.poll() is not None:
                raise RuntimeError("crisp exited with %d at start:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise RuntimeError("crisp did not listen within %ds:\n%s"
                                   % (timeout, self.log_tail()))
            time.sleep(0.02)
        self.client = CRIClient(self.sock, self.ids)
        self.client.call("Version", pb.VersionRequest(), timeout=timeout)
        return self

    def _socket_accepts(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.sock)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def _close_client(self):
        if self.client:
            self.client.close()
            self.client = None

    def _ended(self, sent):
        """Waits for crisp (to which the harness sent signal SENT, or nothing) and records an
        end that was not the one asked for."""
        rc = self.proc.wait()
        self.proc = None
        if rc < 0 and -rc != sent:
            self.ends.append("crisp (pid %d) was killed by %s, which the harness did not send"
                             % (self._pid, signal_name(-rc)))
        elif rc > 0:
            self.ends.append("crisp (pid %d) exited with status %d" % (self._pid, rc))
        elif rc == 0 and sent is None:
            self.ends.append("crisp (pid %d) exited on its own" % self._pid)
        return rc

    def stop(self, timeout=30, keep_client=False):
        """SIGTERM and wait; returns the exit code.  keep_client: the client stays open, for
        the replies of calls still in flight (close it with the next start or stop)."""
        if not keep_client:
            self._close_client()
        if self.proc is None:
            return None
        self._pid = self.proc.pid
        if self.proc.poll() is not None:
            return self._ended(None)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.ends.append("crisp (pid %d) did not exit within %ds of SIGTERM:\n%s"
                             % (self._pid, timeout, self.log_tail()))
            self.proc.kill()
            return self._ended(signal.SIGKILL)
        return self._ended(signal.SIGTERM)

    def kill9(self):
        self._close_client()
        if self.proc is not None:
            self._pid = self.proc.pid
            if self.proc.poll() is not None:
                self._ended(None)
                return
            self.proc.kill()
            self._ended(signal.SIGKILL)

    def problems(self):
        """Each end of crisp that was not asked for, and each sanitizer report written by crisp
        or the monitors it started."""
        if self.proc is not None and self.proc.poll() is not None:
            self._pid = self.proc.pid
            self._ended(None)
        return self.ends + sanitizer_reports(self.san_dir) + sanitizer_lines(self.log_path)

    def restart(self):
        self.stop()
        return self.start()

    def remove_everything(self):
        """Best effort: ask crisp to remove the containers and pods a test left behind."""
        if self.client is None:
            return
        for name, req, key in (("ListContainers", pb.ListContainersRequest(), "containers"),
                               ("ListPodSandbox", pb.ListPodSandboxRequest(), "items")):
            try:
                items = getattr(self.client.call(name, req, timeout=10), key)
            except grpc.RpcError:
                continue
            for item in items:
                self.ids.add(item.id)
                try:
                    if key == "containers":
                        self.client.call("RemoveContainer",
                                         pb.RemoveContainerRequest(container_id=item.id), 30)
                    else:
                        self.client.call("StopPodSandbox",
                                         pb.StopPodSandboxRequest(pod_sandbox_id=item.id), 30)
                        self.client.call("RemovePodSandbox",
                                         pb.RemovePodSandboxRequest(pod_sandbox_id=item.id), 30)
                except grpc.RpcError:
                    pass

    def leak_scope(self):
        """What this daemon may leave behind (leakcheck.Scope)."""
        return Scope(self.tmp, state_dirs=[self.root, self.run_root],
                     runc_roots=[os.path.join(self.run_root, "runtime", "*")],
                     cni_dirs=[self.cni_dir], ids=self.ids, cgroup_names=self.cgroup_names)

    def finish(self):
        """Removes every pod and container through CRI and stops crisp; a daemon that was
        stopped with some still recorded is started again for that."""
        if self.proc is None and self.started and any(
                state_files(d) for d in (self.root, self.run_root)):
            try:
                self.start()
            except RuntimeError as e:
                self.ends.append("crisp could not be started again to remove what is left: %s"
                                 % e)
        self.remove_everything()
        self.stop()

    def check_leaks(self):
        """finish(), then the leak check of this daemon, removing what leaked; returns the
        leaks."""
        self.finish()
        scope = self.leak_scope()
        found = scope.leaks()
        if found:
            scope.clean()
        return found

    def cleanup(self):
        """check_leaks() and removal of the daemon's directories; returns the leaks and
        problems()."""
        found = self.check_leaks() + self.problems()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return found
