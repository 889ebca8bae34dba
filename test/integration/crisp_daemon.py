"""Starts and stops a real crisp daemon on its own socket and state directories."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import grpc

from cri_client import CRIClient, pb

BUILDDIR = os.environ.get(
    "CRISP_BUILDDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
CRISP = os.path.join(BUILDDIR, "crisp")
CONMON = os.path.join(BUILDDIR, "crisp-conmon")


def mounts_under(path):
    """Mount points at or below path, deepest first."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path.rstrip("/") + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


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
        for d in (self.cni_dir, self.conf_dir, self.registries_dir):
            os.makedirs(d, exist_ok=True)
        with open(self.conf_file, "w") as f:
            f.write(self.base_config() + "\n" + config)
        self.proc = None
        self.client = None
        self.extra_args = []

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
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
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
        self.client = CRIClient(self.sock)
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

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit code."""
        self._close_client()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def kill9(self):
        self._close_client()
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

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

    def cleanup(self):
        """Stops the daemon and removes its directories; returns mounts that had leaked."""
        self.remove_everything()
        self.stop()
        leaked = mounts_under(self.tmp)
        for mp in leaked:
            subprocess.run(["umount", "-l", mp], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return leaked
