"""Chaos: pod and container lifecycles (CNI pods, create, start, exec-sync, stop, remove, image
pulls) run from several client threads while crisp is killed with SIGKILL at random instants
and at fixed crash points (a runc wrapper that pauses before or after a verb), then started
again.  The clients retry interrupted calls the way a kubelet does.  After every restart the
containers that were running must still run; no call may come back INTERNAL or wedge; and
once everything is removed through CRI nothing may remain: mounts, namespace pins, IP
allocations, veths, iptables rules, monitors, runtime state, cgroups, records, quarantined
files.

Seeded and reproducible in the sequence of decisions (the instants depend on the machine):
CRISP_CHAOS_SEED (default 1), CRISP_CHAOS_KILLS (default 50; `make chaos` runs 500)."""
import os
import random
import subprocess
import threading
import time

import grpc
import pytest

import leakcheck
from container_harness import SLEEPER, push_extra_images
from cri_client import LOCAL_SUBCHANNELS, MAX_MESSAGE, CRIClient, pb
from image_harness import pull, registries_conf
from pod_harness import PLUGIN_DIRS, PodNet
from test_crash_points import RUNC, WRAPPER

SEED = int(os.environ.get("CRISP_CHAOS_SEED", "1"))
KILLS = int(os.environ.get("CRISP_CHAOS_KILLS", "50"))
CLIENTS = 3
CRASH_POINTS = ["after-create", "before-start", "after-start", "before-create", "after-delete"]
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
             grpc.StatusCode.DEADLINE_EXCEEDED}
# A call retried for longer than this is wedged.
WEDGED_AFTER = 120

pytestmark = pytest.mark.skipif(not PLUGIN_DIRS, reason="no CNI plugins installed")


class Client(CRIClient):
    """One channel per client thread that reconnects quickly after crisp comes back."""

    def __init__(self, socket_path, ids):
        self.socket_path = socket_path
        self.ids = ids
        self.channel = grpc.insecure_channel(
            "unix://" + socket_path,
            options=[("grpc.max_receive_message_length", MAX_MESSAGE), LOCAL_SUBCHANNELS,
                     ("grpc.initial_reconnect_backoff_ms", 50),
                     ("grpc.min_reconnect_backoff_ms", 50),
                     ("grpc.max_reconnect_backoff_ms", 250)])

    def call(self, name, request=None, timeout=60):
        reply = self.method(name)(request, timeout=timeout, wait_for_ready=True)
        self._note(name, reply)
        return reply


class Chaos:
    def __init__(self, daemon, net, busybox, extra, ctl, logdir):
        self.d = daemon
        self.net = net
        self.busybox = busybox
        self.extra = extra
        self.ctl = ctl
        self.logdir = logdir
        self.rng = random.Random(SEED)
        self.lock = threading.Lock()
        self.running = set()      # containers a client started and has not begun to stop
        self.seen = set()         # every container id handed out
        self.errors = []
        self.retries = 0
        self.kills = 0
        self.crash_points_hit = 0
        self.lifecycles = 0
        self.audited = 0
        self.first_connect_failures = 0
        self.stop = threading.Event()

    # -- calls as a kubelet makes them --

    def call(self, client, name, req, ok_codes=(), locked=False):
        """Retries while crisp is down or the call died with it; returns the reply, or None
        for an accepted error code. Any other error, or a call that never gets through, is
        recorded as a failure and raised."""
        deadline = time.monotonic() + WEDGED_AFTER
        while True:
            try:
                return client.call(name, req, timeout=60)
            except grpc.RpcError as e:
                if e.code() in ok_codes:
                    return None
                if e.code() not in RETRYABLE or time.monotonic() > deadline:
                    msg = "%s: %s %s" % (name, e.code().name, e.details())
                    self.errors.append(msg)
                    raise AssertionError(msg)
                if locked:
                    self.retries += 1
                else:
                    with self.lock:
                        self.retries += 1
                time.sleep(0.05)

    # -- the clients --

    def lifecycle(self, client, k, i):
        name = "chaos-%d-%d" % (k, i)
        logdir = os.path.join(self.logdir, name)
        os.makedirs(logdir, exist_ok=True)
        ns = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
        pcfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=name + "-uid", namespace="chaos"),
            log_directory=logdir,
            linux=pb.LinuxPodSandboxConfig(
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns)))
        handler = "paused" if i % 2 else ""
        pod = self.call(client, "RunPodSandbox", pb.RunPodSandboxRequest(
            config=pcfg, runtime_handler=handler)).pod_sandbox_id
        ccfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"),
                                  image=pb.ImageSpec(image=self.busybox), command=SLEEPER,
                                  log_path="c.log")
        ccfg.linux.security_context.namespace_options.CopyFrom(ns)
        cid = self.call(client, "CreateContainer", pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=ccfg, sandbox_config=pcfg)).container_id
        with self.lock:
            self.seen.add(cid)
        self.call(client, "StartContainer", pb.StartContainerRequest(container_id=cid))
        with self.lock:
            self.running.add(cid)
        r = self.call(client, "ExecSync", pb.ExecSyncRequest(
            container_id=cid, cmd=["sh", "-c", "echo ok"], timeout=30))
        if (r.exit_code, r.stdout) != (0, b"ok\n"):
            self.fail("ExecSync in %s gave %d %r %r" % (cid[:12], r.exit_code, r.stdout,
                                                        r.stderr))
        with self.lock:
            self.running.discard(cid)
        self.call(client, "StopContainer", pb.StopContainerRequest(container_id=cid, timeout=0))
        st = self.call(client, "ContainerStatus",
                       pb.ContainerStatusRequest(container_id=cid)).status
        if st.state != pb.CONTAINER_EXITED or st.exit_code != 137 or st.started_at == 0:
            self.fail("after stop %s: state %d exit %d started %d" % (
                cid[:12], st.state, st.exit_code, st.started_at))
        self.call(client, "RemoveContainer", pb.RemoveContainerRequest(container_id=cid),
                  ok_codes={grpc.StatusCode.NOT_FOUND})
        self.call(client, "StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        self.call(client, "RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod),
                  ok_codes={grpc.StatusCode.NOT_FOUND})
        with self.lock:
            self.lifecycles += 1

    def lifecycles_loop(self, k):
        client = Client(self.d.sock, self.d.ids)
        i = 0
        try:
            while not self.stop.is_set():
                self.lifecycle(client, k, i)
                i += 1
        except AssertionError:
            self.stop.set()
        finally:
            client.close()

    def pull_loop(self):
        client = Client(self.d.sock, self.d.ids)
        ref = self.extra["nocmd"]
        try:
            while not self.stop.is_set():
                self.call(client, "PullImage", pb.PullImageRequest(image=pb.ImageSpec(image=ref)))
                st = self.call(client, "ImageStatus",
                               pb.ImageStatusRequest(image=pb.ImageSpec(image=ref)))
                if not st.image.id:
                    self.fail("image %s missing right after its pull" % ref)
                self.call(client, "RemoveImage", pb.RemoveImageRequest(image=pb.ImageSpec(
                    image=ref)), ok_codes={grpc.StatusCode.NOT_FOUND})
        except AssertionError:
            self.stop.set()
        finally:
            client.close()

    def fail(self, msg):
        with self.lock:
            self.errors.append(msg)
        raise AssertionError(msg)

    # -- the killer --

    def arm(self, point):
        (self.ctl / point).write_text("30")

    def disarm(self):
        for f in self.ctl.iterdir():
            f.unlink()

    def kill_once(self):
        point = self.rng.choice(CRASH_POINTS) if self.rng.random() < 0.3 else None
        if point:
            self.arm(point)
            marker = self.ctl / ("at-" + point)
            deadline = time.monotonic() + 10
            while not marker.exists() and time.monotonic() < deadline \
                    and not self.stop.is_set():
                time.sleep(0.01)
            self.crash_points_hit += marker.exists()
        else:
            time.sleep(self.rng.uniform(0.05, 0.8))
        with self.lock:
            before = set(self.running)
        self.d.kill9()
        self.kills += 1
        self.disarm()
        self.restart()
        self.audit(before)

    def restart(self):
        try:
            self.d.start(timeout=60)
            return
        except grpc.RpcError:
            if self.d.proc is None or self.d.proc.poll() is not None:
                raise
        # The harness's first call does not wait for the channel; a kubelet's retries. A first
        # connection closed while crisp is up is counted (see the note in the module doc).
        self.first_connect_failures += 1
        self.d.client = Client(self.d.sock, self.d.ids)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.d.client.call("Version", pb.VersionRequest(), timeout=30)
                return
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline \
                        or self.d.proc.poll() is not None:
                    raise
                time.sleep(0.05)

    def audit(self, before):
        """Every container running before the kill, and not being stopped since, runs."""
        with self.lock:
            for cid in before & self.running:
                st = self.call(self.killer_client, "ContainerStatus",
                               pb.ContainerStatusRequest(container_id=cid), locked=True).status
                if st.state != pb.CONTAINER_RUNNING:
                    self.errors.append("container %s was running before kill %d and is %d "
                                       "after" % (cid[:12], self.kills, st.state))
                self.audited += 1

    def kill_loop(self):
        self.killer_client = Client(self.d.sock, self.d.ids)
        try:
            while self.kills < KILLS and not self.stop.is_set():
                self.kill_once()
        except Exception as e:  # noqa: BLE001 - any failure here ends the run
            rc = self.d.proc.poll() if self.d.proc else None
            self.errors.append("killer after %d kills: %r; crisp exit status %s; its log:\n%s"
                               % (self.kills, e, rc, self.d.log_tail(30)))
        finally:
            self.stop.set()
            self.killer_client.close()


def leftovers(d):
    """Beyond what the daemon fixture checks after every test: the wrapper runtime's state,
    and quarantined records (a record crisp could not trust is a failure here)."""
    scope = leakcheck.Scope(d.tmp, runc_roots=[os.path.join(d.tmp, "paused-root")])
    found = ["runc state %s" % os.path.dirname(s) for root in scope.roots()
             for s in leakcheck.runc_containers(root)]
    for dirpath, dirnames, filenames in os.walk(d.tmp):
        if leakcheck.QUARANTINE in dirpath.split(os.sep):
            found += ["quarantined %s" % os.path.join(dirpath, f) for f in filenames]
    return found


def test_chaos(crisp_factory, registry, tmp_path):
    extra = push_extra_images(registry)
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    wrapper = tmp_path / "paused-runc"
    wrapper.write_text(WRAPPER % {"ctl": ctl, "runc": RUNC})
    wrapper.chmod(0o755)
    d = crisp_factory(start=False)
    net = PodNet(d.tmp)
    net.install(d.cni_dir)
    with open(os.path.join(d.conf_dir, "50-chaos.conf"), "w") as f:
        f.write("[network]\ncni-plugin-dirs = %s\n" % ";".join(PLUGIN_DIRS))
        f.write("[runtime.paused]\npath = %s\nroot = %s/paused-root\n" % (wrapper, d.tmp))
    with open(os.path.join(d.registries_dir, "50-test.conf"), "w") as f:
        f.write(registries_conf(registry.host))
    d.start()
    busybox = "%s/busybox:latest" % registry.host
    pull(d, busybox)
    chaos = Chaos(d, net, busybox, extra, ctl, str(tmp_path / "logs"))
    threads = [threading.Thread(target=chaos.lifecycles_loop, args=(k,))
               for k in range(CLIENTS)]
    threads.append(threading.Thread(target=chaos.pull_loop))
    threads.append(threading.Thread(target=chaos.kill_loop))
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=1800)
    elapsed = time.monotonic() - t0
    chaos.disarm()
    if d.proc is None:
        d.start()
    print("chaos seed %d: %d kills (%d at crash points), %d lifecycles, %d retried calls, "
          "%d running containers audited, %d first connections refused, %.0f s"
          % (SEED, chaos.kills, chaos.crash_points_hit, chaos.lifecycles, chaos.retries,
             chaos.audited, chaos.first_connect_failures, elapsed))
    assert not any(t.is_alive() for t in threads), "a client is wedged"
    if chaos.errors:
        with open(d.log_path, errors="replace") as f:
            notable = [line.rstrip() for line in f if " debug " not in line][-40:]
    assert not chaos.errors, "%s\ncrisp's log (no debug):\n%s" % (chaos.errors[:10],
                                                                "\n".join(notable))
    assert chaos.kills == KILLS
    # Removal through CRI; the daemon fixture then checks mounts, pins, IP allocations, links,
    # iptables, monitors, runtime state, cgroups and records; this test adds the rest.
    d.finish()
    found = leftovers(d)
    subprocess.run(["ip", "link", "del", net.bridge], stderr=subprocess.DEVNULL)
    assert not found, "left behind: %s" % found[:20]
