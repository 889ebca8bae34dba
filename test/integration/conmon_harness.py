"""Helpers for driving crisp-conmon directly: busybox bundles made with `runc spec`, the start
handshake over the sync socket, and small clients for the attach and control sockets
(pkg/base/monitor-protocol.h is the protocol)."""
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import time

RUNC = "/usr/sbin/runc"
BUSYBOX = "/bin/busybox"
VERSION = 2  # the monitor protocol version (pkg/base/monitor-protocol.h)

MSG = struct.Struct("=IIii")
HELLO, GO, CREATED, FAILED, STANDBY, ASSIGN = 1, 2, 3, 4, 5, 6
VERSION_REQ, RESIZE, REOPEN_LOG, EXEC = 16, 17, 18, 19
REPLY, EXEC_OUTPUT, EXEC_EXIT = 48, 49, 50
EXEC_REQ = struct.Struct("=IIIII")
TIMED_OUT, TRUNCATED = 1, 2
STDIN, STDOUT, STDERR, ATTACH_RESIZE, CLOSE_STDIN = 0, 1, 2, 3, 4


def builddir():
    return os.environ.get("CRISP_BUILDDIR", "/tmp/build-conmon")


def conmon_path():
    return os.path.join(builddir(), "crisp-conmon")


def wait_for(pred, timeout=10.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def make_rootfs(rootfs):
    os.makedirs(os.path.join(rootfs, "bin"))
    shutil.copy(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", os.path.join(rootfs, "bin", a))
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)


def make_bundle(path, args, terminal=False, memory_limit=None, cgroups_path=None):
    """A busybox bundle at path running args; runc's default spec otherwise."""
    os.makedirs(path)
    make_rootfs(os.path.join(path, "rootfs"))
    subprocess.run([RUNC, "spec"], cwd=path, check=True)
    cfg_path = os.path.join(path, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["process"]["args"] = list(args)
    cfg["process"]["terminal"] = terminal
    cfg["root"]["readonly"] = False
    if cgroups_path:
        cfg["linux"]["cgroupsPath"] = cgroups_path
    if memory_limit:
        cfg["linux"].setdefault("resources", {})["memory"] = {"limit": memory_limit,
                                                             "swap": memory_limit}
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    return path


def recv_msg(sock, size=1 << 17):
    data = sock.recv(size)
    if not data:
        raise EOFError("monitor closed the socket")
    version, typ, a0, a1 = MSG.unpack_from(data)
    return typ, a0, a1, data[MSG.size:]


def send_msg(sock, typ, a0=0, a1=0, payload=b""):
    sock.send(MSG.pack(VERSION, typ, a0, a1) + payload)


class Monitor:
    """One crisp-conmon run: spawn() does the handshake the way crisp will."""

    def __init__(self, tmp, cid, bundle, runtime_root, log_path=None, extra=(), runtime=None,
                 runtime_fd=None):
        self.cid = cid
        # A descriptor of the runtime's sealed copy, sent with GO as crisp sends it.
        self.runtime_fd = runtime_fd
        self.runtime = runtime or RUNC
        self.bundle = bundle
        self.root = runtime_root
        self.state = os.path.join(tmp, "state")
        os.makedirs(self.state, mode=0o700)
        self.log_path = log_path or os.path.join(tmp, "ctr.log")
        self.extra = list(extra)
        self.pid = None
        self.container_pid = None
        self.error = None

    def argv(self, sync_fd):
        return [conmon_path(), "--id", self.cid, "--bundle", self.bundle, "--state-dir",
                self.state, "--runtime", self.runtime, "--runtime-root", self.root, "--log-path",
                self.log_path, "--sync-fd", str(sync_fd)] + self.extra

    def spawn(self, before_go=None, standby=False, **popen_kw):
        """standby: started as crisp's standby monitor, then given this container."""
        if standby:
            ours = spawn_standby()
            self.standby_pid = self.pid = standby_pid(ours)
            send_msg(ours, ASSIGN, payload=self.options())
        else:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            p = subprocess.Popen(self.argv(theirs.fileno()), pass_fds=[theirs.fileno()],
                                 **popen_kw)
            theirs.close()
            assert p.wait(timeout=10) == 0
        try:
            ours.settimeout(30)
            typ, a0, a1, _ = recv_msg(ours)
            assert typ == HELLO and a1 == VERSION
            self.pid = a0
            if before_go:
                before_go(self)
            fds = [self.runtime_fd] if self.runtime_fd is not None else []
            socket.send_fds(ours, [MSG.pack(VERSION, GO, 0, 0)], fds)
            typ, a0, a1, payload = recv_msg(ours)
            if typ == CREATED:
                self.container_pid = a0
            else:
                assert typ == FAILED
                self.error = payload.decode(errors="replace")
            return typ == CREATED
        finally:
            ours.close()

    def options(self):
        """The argv options of this container, as a standby monitor's ASSIGN carries them."""
        argv = self.argv(3)
        i = argv.index("--sync-fd")
        return b"".join(a.encode() + b"\0" for a in argv[1:i] + argv[i + 2:])

    def start(self):
        subprocess.run([RUNC, "--root", self.root, "start", self.cid], check=True)

    def alive(self):
        return alive(self.pid)

    def wait_exit(self, timeout=20):
        assert wait_for(lambda: not self.alive(), timeout), "monitor still running"

    def exit_file(self):
        return read_kv(os.path.join(self.state, "exit"))

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read()

    def connect(self, name):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(os.path.join(self.state, name))
        s.settimeout(20)
        return s

    def ctl(self, typ, a0=0, a1=0):
        with self.connect("ctl") as s:
            send_msg(s, typ, a0, a1)
            return recv_msg(s)

    def exec(self, argv, timeout_ms=0, output_max=0, env=(), first_read_after=0, read_gap=0):
        """-> (exit code, flags, stdout, stderr), or ("error", -errno).  A slow reader waits
        first_read_after seconds before its first read and read_gap seconds before each."""
        strings = b"".join(a.encode() + b"\0" for a in list(argv) + list(env))
        req = EXEC_REQ.pack(timeout_ms, output_max, len(argv), len(env), 0)
        out = {STDOUT: bytearray(), STDERR: bytearray()}
        with self.connect("ctl") as s:
            send_msg(s, EXEC, payload=req + strings)
            time.sleep(first_read_after)
            while True:
                time.sleep(read_gap)
                typ, a0, a1, payload = recv_msg(s)
                if typ == EXEC_OUTPUT:
                    out[a0] += payload
                elif typ == EXEC_EXIT:
                    return a0, a1, bytes(out[STDOUT]), bytes(out[STDERR])
                else:
                    return "error", a0

    def cleanup(self):
        if self.pid and self.alive():
            os.kill(self.pid, 9)
        subprocess.run([RUNC, "--root", self.root, "delete", "-f", self.cid],
                       capture_output=True)
        # Whatever runc could not reach (its state gone with a killed monitor): the container
        # init this test started, by its pid.
        cpid = getattr(self, "container_pid", None)
        if cpid:
            try:
                os.kill(cpid, 9)
            except ProcessLookupError:
                pass


def sealed_copy(path, name="runc"):
    """A memfd holding path's bytes, sealed the way runc recognises as its own copy."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    with open(path, "rb") as f:
        os.write(fd, f.read())
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    return fd


def alive(pid):
    """pid runs and is not a zombie (one reaped while its stat is read is gone too)."""
    try:
        os.kill(pid, 0)
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def spawn_standby(room=512):
    """A standby crisp-conmon as crisp starts one: its end of the sync socket."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with theirs:
        p = subprocess.Popen([conmon_path(), "--standby", "--sync-fd", str(theirs.fileno()),
                              "--", " " * room], pass_fds=[theirs.fileno()])
    assert p.wait(timeout=10) == 0
    ours.settimeout(30)
    return ours


def standby_pid(sock):
    typ, a0, a1, _ = recv_msg(sock)
    assert typ == STANDBY and a0 > 0 and a1 == VERSION
    return a0


def read_kv(path):
    with open(path) as f:
        return dict(line.split("=", 1) for line in f.read().splitlines())


def parse_log(data):
    """CRI log records -> [(stream, tag, bytes)], checking each timestamp's shape."""
    out = []
    for line in data.split(b"\n")[:-1]:
        ts, stream, tag, content = line.split(b" ", 3)
        assert len(ts) == 30 and ts.endswith(b"Z") and ts[10:11] == b"T", ts
        time.strptime(ts[:19].decode(), "%Y-%m-%dT%H:%M:%S")
        assert stream in (b"stdout", b"stderr") and tag in (b"P", b"F"), line
        out.append((stream.decode(), tag.decode(), content))
    assert data == b"" or data.endswith(b"\n")
    return out
