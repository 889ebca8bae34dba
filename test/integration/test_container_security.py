"""What a container sees from inside: user and group resolution (request, username, image
User), mounts (rw, ro, a single file, propagation), devices, capabilities (default set,
add, drop, ALL), seccomp (RuntimeDefault, Unconfined, Localhost), no-new-privileges,
privileged, read-only root, masked and read-only paths.  Checked through the container's
own log output or ExecSync, as kubelet and crictl users would see them."""
import json
import os
import re
import subprocess

import grpc
import pytest

from container_harness import SLEEPER, cenv, log_lines, proc_status, rpc_error  # noqa: F401
from cri_client import pb

CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
        "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
        "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
        "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
        "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
        "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]

# containerd's default set; CRI-O's is the same minus MKNOD, NET_RAW, SYS_CHROOT and
# AUDIT_WRITE.  crisp's documented set must lie between the two.
CONTAINERD_DEFAULT = {"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW",
                      "SETGID", "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE",
                      "SYS_CHROOT", "KILL", "AUDIT_WRITE"}
CRIO_DEFAULT = CONTAINERD_DEFAULT - {"MKNOD", "NET_RAW", "SYS_CHROOT", "AUDIT_WRITE"}


def capset(mask_hex):
    mask = int(mask_hex, 16)
    return {name for bit, name in enumerate(CAPS) if mask & (1 << bit)}


def host_bounding_set():
    with open("/proc/self/status") as f:
        return capset(proc_status(f.read())["CapBnd"])


def sec(**kw):
    caps = kw.pop("caps", None)
    s = pb.LinuxContainerSecurityContext(**kw)
    if caps is not None:
        s.capabilities.CopyFrom(caps)
    return s


def inside_status(cenv, pod, name="st", **kw):
    """/proc/self/status of a container's main process, read by the container."""
    st, out = cenv.output(pod, ["cat", "/proc/self/status"], name=name, **kw)
    assert st.exit_code == 0, log_lines(st.log_path)
    return proc_status("\n".join(out))


# ---- users and groups ----

def test_root_directory_is_open_to_every_user(cenv):
    """The image has no entry for / itself: it is 0755 as in every runtime, so a non-root
    user can reach files under it."""
    pod = cenv.run_pod()
    _, out = cenv.output(pod, ["stat", "-c", "%a %u", "/", "/bin", "/tmp"], name="modes")
    assert out == ["755 0", "755 0", "1777 0"]
    st, out = cenv.output(pod, ["sh", "-c", "cat /etc/group | head -1; ls /bin/busybox"],
                          name="nonroot", security=sec(run_as_user=pb.Int64Value(value=1002)))
    assert out == ["root:x:0:", "/bin/busybox"], log_lines(st.log_path)


ID_RE = re.compile(r"uid=(\d+)(?:\(\S*\))? gid=(\d+)(?:\(\S*\))?(?: groups=(\S+))?")


def run_id(cenv, pod, name="id", **kw):
    st, out = cenv.output(pod, ["id"], name=name, **kw)
    assert st.exit_code == 0 and len(out) == 1, out
    m = ID_RE.match(out[0])
    assert m, out[0]
    groups = {int(re.match(r"\d+", g).group()) for g in (m.group(3) or "").split(",") if g}
    return int(m.group(1)), int(m.group(2)), groups


def test_default_user_is_root(cenv):
    pod = cenv.run_pod()
    uid, gid, _ = run_id(cenv, pod)
    assert (uid, gid) == (0, 0)


def test_run_as_user_takes_its_primary_group_from_the_image(cenv):
    pod = cenv.run_pod()
    uid, gid, groups = run_id(cenv, pod, security=sec(run_as_user=pb.Int64Value(value=1002)))
    assert (uid, gid) == (1002, 1003)
    assert groups == {1003}


def test_run_as_user_unknown_to_the_image(cenv):
    pod = cenv.run_pod()
    uid, gid, _ = run_id(cenv, pod, security=sec(run_as_user=pb.Int64Value(value=4242)))
    assert (uid, gid) == (4242, 0)


def test_run_as_username(cenv):
    pod = cenv.run_pod()
    uid, gid, _ = run_id(cenv, pod, security=sec(run_as_username="web"))
    assert (uid, gid) == (1002, 1003)


def test_run_as_username_unknown_fails_at_create(cenv):
    pod = cenv.run_pod()
    rpc_error(cenv.create, pod, "nouser", command=["id"],
              security=sec(run_as_username="nosuchuser"))
    assert not cenv.list()


def test_run_as_group_and_supplemental_groups(cenv):
    pod = cenv.run_pod()
    uid, gid, groups = run_id(cenv, pod, security=sec(
        run_as_user=pb.Int64Value(value=1002), run_as_group=pb.Int64Value(value=2000),
        supplemental_groups=[4000, 5000]))
    assert (uid, gid) == (1002, 2000)
    assert {2000, 4000, 5000} <= groups


def test_image_user_by_name_and_number(cenv):
    pod = cenv.run_pod()
    assert run_id(cenv, pod, "a", image=cenv.image("userweb"))[:2] == (1002, 1003)
    assert run_id(cenv, pod, "b", image=cenv.image("usernum"))[:2] == (1002, 1003)


def test_run_as_user_overrides_the_image_user(cenv):
    pod = cenv.run_pod()
    uid, gid, _ = run_id(cenv, pod, image=cenv.image("userweb"),
                         security=sec(run_as_user=pb.Int64Value(value=0)))
    assert (uid, gid) == (0, 0)


def test_exec_runs_as_the_container_user(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "u", command=SLEEPER, security=sec(
        run_as_user=pb.Int64Value(value=1002), supplemental_groups=[4000]))
    r = cenv.exec_sync(cid, ["id"])
    m = ID_RE.match(r.stdout.decode())
    assert m and m.group(1) == "1002" and m.group(2) == "1003" and "4000" in m.group(3)


# ---- ContainerStatus.user and the supplemental groups policy ----

def process_ids(pid):
    """(uid, gid, [groups]) of a live process, from /proc."""
    with open("/proc/%d/status" % pid) as f:
        st = proc_status(f.read())
    return (int(st["Uid"].split()[0]), int(st["Gid"].split()[0]),
            sorted(int(g) for g in st["Groups"].split()))


def status_user(cenv, cid):
    u = cenv.status(cid).status.user.linux
    return u.uid, u.gid, sorted(u.supplemental_groups)


def test_status_reports_the_user_the_process_has(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "u", command=SLEEPER, security=sec(
        run_as_user=pb.Int64Value(value=1002), run_as_group=pb.Int64Value(value=2000),
        supplemental_groups=[4000, 5000]))
    assert status_user(cenv, cid) == (1002, 2000, [2000, 4000, 5000])
    assert status_user(cenv, cid) == process_ids(cenv.pid(cid))
    root = cenv.run(pod, "root", command=SLEEPER)
    assert status_user(cenv, root) == process_ids(cenv.pid(root)) == (0, 0, [0])
    cenv.d.restart()
    assert status_user(cenv, cid) == (1002, 2000, [2000, 4000, 5000])


GROUPS_IMAGE = {}


def groups_image(cenv):
    """An image whose /etc/group lists user web in group audio (1500), as images do."""
    from image_harness import build_and_push
    from registry_harness import import_builder
    if cenv.registry.host not in GROUPS_IMAGE:
        build = import_builder()
        group = b"root:x:0:\nweb:x:1003:\naudio:x:1500:web\n"
        build_and_push(cenv.registry, "ctest/groups",
                       [build.busybox_layer(), [build.file_("etc/group", group)]],
                       config={"Cmd": ["sh"], "User": "web"})
        GROUPS_IMAGE[cenv.registry.host] = "%s/ctest/groups:latest" % cenv.registry.host
    ref = GROUPS_IMAGE[cenv.registry.host]
    cenv.c.call("PullImage", pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=120)
    return ref


def test_supplemental_groups_policy_merge_and_strict(cenv):
    """Merge (the default) adds the image's /etc/group memberships, Strict leaves them out;
    either way the status says what the process got (Status's supplemental_groups_policy
    feature promises both)."""
    image = groups_image(cenv)
    pod = cenv.run_pod()
    merge = cenv.run(pod, "merge", image=image, command=SLEEPER,
                     security=sec(supplemental_groups=[4000]))
    strict = cenv.run(pod, "strict", image=image, command=SLEEPER, security=sec(
        supplemental_groups=[4000],
        supplemental_groups_policy=pb.SupplementalGroupsPolicy.Value("Strict")))
    assert process_ids(cenv.pid(merge)) == (1002, 1003, [1003, 1500, 4000])
    assert process_ids(cenv.pid(strict)) == (1002, 1003, [1003, 4000])
    assert status_user(cenv, merge) == process_ids(cenv.pid(merge))
    assert status_user(cenv, strict) == process_ids(cenv.pid(strict))
    assert cenv.c.call("Status", pb.StatusRequest()).features.supplemental_groups_policy


# ---- mounts and devices ----

def test_bind_mounts_rw_ro_and_file(cenv, tmp_path):
    pod = cenv.run_pod()
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "seen").write_text("from host\n")
    conf = tmp_path / "app.conf"
    conf.write_text("key=value\n")
    mounts = [pb.Mount(container_path="/rw", host_path=str(rw)),
              pb.Mount(container_path="/ro", host_path=str(ro), readonly=True),
              pb.Mount(container_path="/etc/app.conf", host_path=str(conf), readonly=True)]
    script = ("echo written > /rw/hello; cat /ro/seen; "
              "touch /ro/nope && echo ro-writable; cat /etc/app.conf")
    st, out = cenv.output(pod, ["sh", "-c", script], mounts=mounts)
    assert (rw / "hello").read_text() == "written\n"
    assert out == ["from host", "key=value"]
    assert not (ro / "nope").exists()


def test_mount_target_inside_the_root_is_resolved_safely(cenv, tmp_path):
    """A mount target under a symlink that points out of the root must stay in the root."""
    pod = cenv.run_pod()
    src = tmp_path / "src"
    src.mkdir()
    (src / "marker").write_text("m\n")
    mounts = [pb.Mount(container_path="/../../../tmp/escape-test", host_path=str(src))]
    cid = None
    try:
        cid = cenv.run(pod, "esc", command=["cat", "/tmp/escape-test/marker"], mounts=mounts)
        st = cenv.wait_exit(cid)
        assert st.exit_code == 0
    except grpc.RpcError:
        pass  # refusing the path is fine too
    assert not os.path.exists("/tmp/escape-test/marker"), "mount escaped onto the host"


@pytest.fixture
def shared_dir(tmp_path):
    """A host directory that is its own shared mount point (what propagation needs)."""
    d = tmp_path / "shared"
    d.mkdir()
    subprocess.run(["mount", "--bind", str(d), str(d)], check=True)
    subprocess.run(["mount", "--make-shared", str(d)], check=True)
    yield d
    for mp in sorted((line.split()[4] for line in open("/proc/self/mountinfo")
                      if line.split()[4].startswith(str(d))), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], check=False)


def mounted_inside(cenv, cid, path):
    r = cenv.exec_sync(cid, ["cat", "/proc/self/mountinfo"])
    return any(line.split()[4] == path for line in r.stdout.decode().splitlines())


@pytest.mark.parametrize("propagation,seen", [(pb.PROPAGATION_PRIVATE, False),
                                              (pb.PROPAGATION_HOST_TO_CONTAINER, True)])
def test_mount_propagation_host_to_container(cenv, shared_dir, propagation, seen):
    pod = cenv.run_pod()
    mounts = [pb.Mount(container_path="/prop", host_path=str(shared_dir),
                       propagation=propagation)]
    cid = cenv.run(pod, "prop", command=SLEEPER, mounts=mounts)
    sub = shared_dir / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "ctest", str(sub)], check=True)
    assert mounted_inside(cenv, cid, "/prop/sub") == seen


def test_mount_propagation_bidirectional(cenv, shared_dir):
    pod = cenv.run_pod(privileged=True)
    (shared_dir / "up").mkdir()
    mounts = [pb.Mount(container_path="/prop", host_path=str(shared_dir),
                       propagation=pb.PROPAGATION_BIDIRECTIONAL)]
    cid = cenv.run(pod, "bidi", command=SLEEPER, mounts=mounts, security=sec(privileged=True))
    r = cenv.exec_sync(cid, ["mount", "-t", "tmpfs", "fromctr", "/prop/up"])
    assert r.exit_code == 0, r.stderr
    with open("/proc/self/mountinfo") as f:
        assert any(line.split()[4] == str(shared_dir / "up") for line in f)
    cenv.exec_sync(cid, ["umount", "/prop/up"])


def test_device(cenv):
    pod = cenv.run_pod()
    cfg = cenv.config("dev", command=SLEEPER)
    cfg.devices.append(pb.Device(container_path="/dev/mynull", host_path="/dev/null",
                                 permissions="rwm"))
    cid = cenv.create(pod, config=cfg)
    cenv.start(cid)
    r = cenv.exec_sync(cid, ["sh", "-c", "stat -c '%t,%T %F' /dev/mynull; echo x > /dev/mynull"])
    assert r.exit_code == 0, r.stderr
    assert r.stdout.decode().split("\n")[0] == "1,3 character special file"


# ---- capabilities, seccomp, privileges ----

def test_default_capabilities(cenv):
    pod = cenv.run_pod()
    s = inside_status(cenv, pod)
    eff = capset(s["CapEff"])
    assert CRIO_DEFAULT <= eff <= CONTAINERD_DEFAULT, sorted(eff)
    assert capset(s["CapBnd"]) == eff
    assert "SYS_ADMIN" not in eff and "NET_ADMIN" not in eff


def test_non_root_user_has_no_effective_capabilities(cenv):
    pod = cenv.run_pod()
    s = inside_status(cenv, pod, security=sec(run_as_user=pb.Int64Value(value=1002)))
    assert capset(s["CapEff"]) == set()
    assert CRIO_DEFAULT <= capset(s["CapBnd"])


@pytest.mark.parametrize("name", ["SYS_ADMIN", "CAP_SYS_ADMIN"])
def test_add_capability(cenv, name):
    pod = cenv.run_pod()
    s = inside_status(cenv, pod, security=sec(caps=pb.Capability(add_capabilities=[name])))
    assert "SYS_ADMIN" in capset(s["CapEff"])


def test_drop_capability(cenv):
    pod = cenv.run_pod()
    s = inside_status(cenv, pod, security=sec(caps=pb.Capability(drop_capabilities=["CHOWN"])))
    eff = capset(s["CapEff"])
    assert "CHOWN" not in eff and "KILL" in eff


def test_drop_all_capabilities(cenv):
    pod = cenv.run_pod()
    s = inside_status(cenv, pod, security=sec(caps=pb.Capability(drop_capabilities=["ALL"])))
    assert capset(s["CapEff"]) == set() and capset(s["CapBnd"]) == set()


def test_drop_all_add_one(cenv):
    pod = cenv.run_pod()
    s = inside_status(cenv, pod, security=sec(caps=pb.Capability(
        drop_capabilities=["ALL"], add_capabilities=["NET_BIND_SERVICE"])))
    assert capset(s["CapEff"]) == {"NET_BIND_SERVICE"}


def test_add_all_capabilities(cenv):
    pod = cenv.run_pod()
    s = inside_status(cenv, pod, security=sec(caps=pb.Capability(add_capabilities=["ALL"])))
    assert capset(s["CapEff"]) == host_bounding_set()


def test_unknown_capability_is_rejected(cenv):
    pod = cenv.run_pod()
    err = rpc_error(cenv.create, pod, "cap", command=SLEEPER,
                    security=sec(caps=pb.Capability(add_capabilities=["NOT_A_CAP"])))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("profile,expected", [
    (pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault), "2"),
    (pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined), "0"),
])
def test_seccomp_seen_from_inside(cenv, profile, expected):
    pod = cenv.run_pod()
    s = inside_status(cenv, pod, security=sec(seccomp=profile))
    assert s["Seccomp"] == expected


def test_seccomp_localhost_profile(cenv, tmp_path):
    pod = cenv.run_pod()
    profile_path = tmp_path / "no-mkdir.json"
    profile_path.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    profile = pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost,
                                 localhost_ref=str(profile_path))
    cid = cenv.run(pod, "lh", command=SLEEPER, security=sec(seccomp=profile))
    r = cenv.exec_sync(cid, ["mkdir", "/tmp/denied"])
    assert r.exit_code != 0
    assert cenv.exec_sync(cid, ["touch", "/tmp/allowed"]).exit_code == 0


@pytest.mark.parametrize("content", [None, "{not json", '{"defaultAction": "SCMP_ACT_NOPE"}'])
def test_seccomp_localhost_profile_invalid(cenv, tmp_path, content):
    pod = cenv.run_pod()
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    profile = pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost,
                                 localhost_ref=str(path))
    rpc_error(cenv.create, pod, "bad", command=SLEEPER, security=sec(seccomp=profile))
    assert not cenv.list()


def test_no_new_privileges(cenv):
    pod = cenv.run_pod()
    assert inside_status(cenv, pod, "a", security=sec(no_new_privs=True))["NoNewPrivs"] == "1"
    assert inside_status(cenv, pod, "b")["NoNewPrivs"] == "0"


def mounts_seen(cenv, pod, name, **kw):
    st, out = cenv.output(pod, ["cat", "/proc/self/mountinfo"], name=name, **kw)
    return {line.split()[4]: line.split()[5].split(",") for line in out}


def test_privileged_container_needs_a_privileged_pod(cenv):
    pod = cenv.run_pod()
    err = rpc_error(cenv.create, pod, "p", command=SLEEPER, security=sec(privileged=True))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


# Masked by every runtime's defaults; runc skips those the kernel does not have (this VM
# has no /proc/kcore), so look for the ones that exist here.
MASKED = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug")
          if os.path.exists(p)]


def test_privileged(cenv):
    pod = cenv.run_pod(privileged=True)
    s = inside_status(cenv, pod, "p", security=sec(privileged=True))
    assert capset(s["CapEff"]) == host_bounding_set()
    assert s["Seccomp"] == "0"
    mounts = mounts_seen(cenv, pod, "pm", security=sec(privileged=True))
    assert "rw" in mounts["/sys"]
    assert not [p for p in MASKED if p in mounts]
    _, devs = cenv.output(pod, ["ls", "/dev"], name="pd", security=sec(privileged=True))
    assert "mem" in devs or "loop-control" in devs or "kmsg" in devs


def test_unprivileged_masks_and_read_only_paths(cenv):
    pod = cenv.run_pod()
    mounts = mounts_seen(cenv, pod, "u")
    assert "ro" in mounts["/sys"]
    assert MASKED and all(p in mounts for p in MASKED)
    assert "ro" in mounts.get("/proc/sys", [])
    _, devs = cenv.output(pod, ["ls", "/dev"], name="ud")
    assert "mem" not in devs and "kmsg" not in devs
    assert {"null", "zero", "random", "urandom", "full", "tty"} <= set(devs)


def test_requested_masked_and_read_only_paths(cenv):
    pod = cenv.run_pod()
    script = "cat /etc/group; echo ---; touch /var/tmp/x && echo writable"
    st, out = cenv.output(pod, ["sh", "-c", script], security=sec(
        masked_paths=["/etc/group"], readonly_paths=["/var/tmp"]))
    assert out == ["---"]


def test_read_only_rootfs(cenv):
    pod = cenv.run_pod()
    st, out = cenv.output(pod, ["sh", "-c", "touch /x || echo refused; touch /dev/shm/ok && "
                                            "echo shm-ok"],
                          security=sec(readonly_rootfs=True))
    assert out == ["refused", "shm-ok"]
    st, out = cenv.output(pod, ["sh", "-c", "touch /x && echo written"], name="rw")
    assert out == ["written"]
