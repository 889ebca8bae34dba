"""Pods in user namespaces (userns_options mode POD, Kubernetes' hostUsers: false): the pod's
user namespace owns its net, ipc and uts namespaces, all four pinned; container root is an
unprivileged host id; the root filesystem and volumes are id-mapped mounts, so image files keep
their owners on disk; hostile mappings are refused; the pod outlives a crisp restart."""
import concurrent.futures
import os
import subprocess

import grpc
import pytest

from container_harness import (ContainerEnv, SLEEPER, finish_env, push_extra_images,
                               rpc_error, wait_for)
from cri_client import pb
from image_harness import pull, registries_conf
from pod_harness import PLUGIN_DIRS, PodNet, nsfs_mounts_under, pod_config, run_pod
from test_crash_points import RUNC, WRAPPER, Paused
from test_exec_direct import compare
from test_image_volumes import data_image, image_mount, sh, staged
from test_pod import podenv  # noqa: F401

BASE = 100000 * 7  # a multiple of 65536 is what kubelet picks; any free range will do
LEN = 65536


def mapping(host=BASE, container=0, length=LEN):
    return pb.IDMapping(host_id=host, container_id=container, length=length)


def userns(uids=None, gids=None, mode=pb.POD):
    return pb.UserNamespace(mode=mode, uids=[mapping()] if uids is None else uids,
                            gids=[mapping()] if gids is None else gids)


@pytest.fixture
def uenv(crisp_factory, registry, tmp_path):
    """A ContainerEnv whose daemon has a CNI network: a pod with a user namespace needs its
    own network namespace."""
    images = push_extra_images(registry)
    d = crisp_factory(start=False)
    net = PodNet(d.tmp)
    net.install(d.cni_dir)
    # A "paused" handler: runc behind a wrapper that can hold a verb (test_crash_points.py).
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    wrapper = tmp_path / "paused-runc"
    wrapper.write_text(WRAPPER % {"ctl": ctl, "runc": RUNC})
    wrapper.chmod(0o755)
    with open(os.path.join(d.conf_dir, "50-net.conf"), "w") as f:
        f.write("[network]\ncni-plugin-dirs = %s\n" % ";".join(PLUGIN_DIRS))
        f.write("[runtime.paused]\npath = %s\nroot = %s\n" % (wrapper, tmp_path / "paused-root"))
    with open(os.path.join(d.registries_dir, "50-test.conf"), "w") as f:
        f.write(registries_conf(registry.host))
    # The runtime sets the container up as the pod's root, an unprivileged host id: it must
    # be able to pass through the directories above crisp's run root (pytest makes its own
    # 0700).  crisp makes its own directories searchable itself.
    opened = []
    parent = os.path.dirname(os.path.abspath(d.run_root))
    while parent != "/":
        mode = os.stat(parent).st_mode & 0o777
        if not mode & 0o001:
            os.chmod(parent, mode | 0o011)
            opened.append((parent, mode))
        parent = os.path.dirname(parent)
    d.start()
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    env = ContainerEnv(d, registry, images, logdir)
    env.paused = Paused(env, ctl)
    yield env
    env.paused.disarm()
    if d.proc is None:
        d.start()
    d.finish()
    subprocess.run(["ip", "link", "del", net.bridge], stderr=subprocess.DEVNULL)
    leaks = finish_env(env)
    for path, mode in opened:
        os.chmod(path, mode)
    assert not leaks, "leaked: %s" % leaks


def run_userns_pod(env, name="upod", ns=None, pid=pb.CONTAINER, sysctls=None, handler=""):
    cfg = env.pod_config(name, pid=pid)
    cfg.linux.sysctls.update(sysctls or {})
    o = cfg.linux.security_context.namespace_options
    o.network = pb.POD
    o.userns_options.CopyFrom(ns if ns is not None else userns())
    os.makedirs(cfg.log_directory, exist_ok=True)
    pod_id = env.c.call("RunPodSandbox", pb.RunPodSandboxRequest(config=cfg,
                                                                 runtime_handler=handler),
                        timeout=60).pod_sandbox_id
    env.pods[pod_id] = cfg
    return pod_id


def proc_ids(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


def ns_inode(pid, kind):
    return os.stat("/proc/%d/ns/%s" % (pid, kind)).st_ino


def test_container_root_is_an_unprivileged_host_uid(uenv):
    pod = run_userns_pod(uenv)
    st = uenv.c.call("PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status
    assert st.linux.namespaces.options.userns_options == userns()
    cid = uenv.run(pod, "c", command=SLEEPER)
    assert sh(uenv, cid, "id -u; id -g") == (0, "0\n0\n")
    pid = uenv.pid(cid)
    # Real, effective, saved and filesystem ids: all the mapped host id of container root.
    assert proc_ids(pid, "Uid") == [BASE] * 4
    assert proc_ids(pid, "Gid") == [BASE] * 4
    with open("/proc/%d/uid_map" % pid) as f:
        assert f.read().split() == ["0", str(BASE), str(LEN)]
    assert ns_inode(pid, "user") != ns_inode(os.getpid(), "user")
    # The image's files are root's inside, and writable by container root (copy-up) ...
    assert sh(uenv, cid, "stat -c '%u %g' /bin/busybox /etc; echo x >> /etc/passwd && "
                         "touch /made && stat -c %u /made") == (0, "0 0\n0 0\n0\n")
    # ... while the image's layer files keep their owners on disk: nothing was chowned.
    owners = set()
    for dirpath, _, files in os.walk(uenv.d.root):
        if "layers" not in dirpath.split(os.sep):
            continue
        for fn in files:
            owners.add(os.lstat(os.path.join(dirpath, fn)).st_uid)
    assert owners and 0 in owners and not any(o >= BASE for o in owners), owners


def test_run_as_user_is_a_container_id(uenv):
    """run_as_user names a container id: uid 4242 inside is BASE + 4242 on the host, and
    ContainerStatus reports the container-side ids."""
    pod = run_userns_pod(uenv)
    ns = uenv.pods[pod].linux.security_context.namespace_options
    sec = pb.LinuxContainerSecurityContext(namespace_options=ns,
                                           run_as_user=pb.Int64Value(value=4242))
    cid = uenv.run(pod, "c", command=SLEEPER, security=sec)
    assert sh(uenv, cid, "id -u") == (0, "4242\n")
    assert proc_ids(uenv.pid(cid), "Uid") == [BASE + 4242] * 4
    assert uenv.status(cid).status.user.linux.uid == 4242


def test_pod_files_proc_sys_and_shm_inside(uenv):
    pod = run_userns_pod(uenv, sysctls={"net.ipv4.ip_local_port_range": "20000 30000"})
    cid = uenv.run(pod, "c", command=SLEEPER)
    rc, out = sh(uenv, cid, "cat /etc/hostname /etc/hosts /etc/resolv.conf >/dev/null && "
                            "echo shm > /dev/shm/f && cat /dev/shm/f && "
                            "ls /proc/self/status /sys/kernel >/dev/null && echo ok")
    assert (rc, out) == (0, "shm\nok\n"), out
    # The pod's sysctl was set in its network namespace, which its user namespace owns.
    assert sh(uenv, cid, "cat /proc/sys/net/ipv4/ip_local_port_range") == (0, "20000\t30000\n")
    # /sys is a sysfs of the pod's network namespace (the user namespace owns it), not the
    # host's bound in: it lists the pod's interfaces only.
    rc, out = sh(uenv, cid, "ls /sys/class/net")
    assert rc == 0 and sorted(out.split()) == ["eth0", "lo"], out
    # The pod's files are crisp's (host root), unmapped inside: nobody.
    rc, out = sh(uenv, cid, "stat -c %u /etc/hosts")
    assert (rc, out) == (0, "65534\n"), out


def test_volume_writes_land_with_the_on_disk_ids(uenv, tmp_path):
    """A hostPath volume is bound id-mapped with the pod's mappings: host id BASE+n is
    container id n, and an id-mapped mount shows on-disk id n as host id BASE+n.  So what
    container root (host id BASE) writes lands on disk as uid 0, what container uid 1000
    writes lands as 1000, and a file the host made as 1000 is 1000 inside."""
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "host-made").write_text("h\n")
    os.chown(vol / "host-made", 1000, 1000)
    pod = run_userns_pod(uenv)
    cid = uenv.run(pod, "c", command=SLEEPER,
                   mounts=[pb.Mount(container_path="/vol", host_path=str(vol))])
    assert sh(uenv, cid, "stat -c '%u %g' /vol/host-made; echo r > /vol/by-root; "
                         "chown 1000:1000 /vol/by-root; echo u > /vol/by-root2") == \
        (0, "1000 1000\n")
    assert os.stat(vol / "by-root").st_uid == 1000
    st = os.stat(vol / "by-root2")
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert len(staged(uenv)) == 1
    uenv.remove(cid)
    assert not staged(uenv), staged(uenv)


def test_image_volume_and_read_only_tree_are_id_mapped(uenv, tmp_path):
    """An image volume (an overlay of the image's layers, id-mapped layer by layer) and a
    recursive read-only bind (the host tree cloned, read-only and id-mapped throughout) show
    on-disk root as container root, like the root filesystem."""
    data = data_image(uenv.registry)
    pull(uenv.d, data)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "top.txt").write_text("top\n")
    pod = run_userns_pod(uenv)
    cid = uenv.run(pod, "c", command=SLEEPER, mounts=[
        image_mount("/img", data),
        pb.Mount(container_path="/rro", host_path=str(tree), readonly=True,
                 recursive_read_only=True)])
    assert sh(uenv, cid, "cat /img/data/hello.txt; stat -c %u /img/data/hello.txt /rro/top.txt") \
        == (0, "hello from the image\n0\n0\n")
    rc, out = sh(uenv, cid, "echo x > /rro/new")
    assert rc != 0 and "Read-only file system" in out, out
    assert len(staged(uenv)) == 2
    uenv.remove(cid)
    assert not staged(uenv), staged(uenv)


HOSTILE = [
    (userns(uids=[]), "at least one uid mapping"),
    (userns(gids=[]), "at least one gid mapping"),
    (userns(uids=[mapping(host=0)]), "maps the host's root id"),
    (userns(uids=[mapping(length=0)]), "length 0"),
    (userns(uids=[mapping(host=0xffffffff - 10, length=LEN)]), "runs past the largest id"),
    (userns(uids=[mapping(), mapping(host=BASE + 100, container=LEN)]), "overlap on the host"),
    (userns(gids=[mapping(), mapping(host=BASE + LEN, container=100)]),
     "overlap on the container"),
    (userns(uids=[mapping(host=BASE + i * 10, container=i * 10, length=10)
                  for i in range(17)]), "over the limit of 16"),
    (userns(uids=[mapping(container=1)]), "no uid mapping covers container id 0"),
    (userns(mode=pb.CONTAINER), "mode CONTAINER is not supported"),
    (userns(mode=pb.TARGET), "mode TARGET is not supported"),
    (userns(mode=pb.NODE), "mode NODE (the host's user namespace) takes no uid or gid"),
]


@pytest.mark.parametrize("ns, needle", HOSTILE)
def test_hostile_mappings_are_refused(uenv, ns, needle):
    err = rpc_error(run_userns_pod, uenv, ns=ns)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    assert needle in err.details(), err.details()
    assert not uenv.c.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert not os.listdir(os.path.join(uenv.d.run_root, "ns"))


def test_host_network_with_userns_is_refused(uenv):
    cfg = uenv.pod_config("hn")
    cfg.linux.security_context.namespace_options.userns_options.CopyFrom(userns())
    os.makedirs(cfg.log_directory, exist_ok=True)
    err = rpc_error(uenv.c.call, "RunPodSandbox", pb.RunPodSandboxRequest(config=cfg))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "host's network namespace is not supported" in err.details(), err.details()


def test_container_options_must_match_the_pod(uenv, tmp_path):
    pod = run_userns_pod(uenv)
    bad = [
        (pb.NamespaceOption(network=pb.POD, userns_options=userns(mode=pb.NODE, uids=[],
                                                                  gids=[])),
         "cannot leave its pod's user namespace"),
        (pb.NamespaceOption(network=pb.POD, userns_options=userns(uids=[mapping(BASE * 2)])),
         "mappings differ from the pod's"),
        (pb.NamespaceOption(network=pb.POD, userns_options=userns(mode=pb.CONTAINER)),
         "mode CONTAINER is not supported"),
    ]
    for ns, needle in bad:
        sec = pb.LinuxContainerSecurityContext(namespace_options=ns)
        err = rpc_error(uenv.create, pod, "c", command=SLEEPER, security=sec)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
        assert needle in err.details(), err.details()
    m = pb.Mount(container_path="/v", host_path=str(tmp_path), uidMappings=[mapping(BASE * 2)],
                 gidMappings=[mapping()])
    err = rpc_error(uenv.create, pod, "c", command=SLEEPER, mounts=[m])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "must be the pod's own user namespace mappings" in err.details(), err.details()
    assert not uenv.list() and not staged(uenv)
    # The pod's own mappings, said again, are accepted.
    m = pb.Mount(container_path="/v", host_path=str(tmp_path), uidMappings=[mapping()],
                 gidMappings=[mapping()])
    cid = uenv.run(pod, "c", command=SLEEPER, mounts=[m])
    assert sh(uenv, cid, "id -u") == (0, "0\n")


def test_status_reports_user_namespaces(uenv):
    resp = uenv.c.call("Status", pb.StatusRequest())
    # With the host's network a user namespace is refused (test_host_network_with_userns...).
    assert not resp.features.user_namespaces_host_network
    handlers = list(resp.runtime_handlers)
    assert handlers and all(h.features.user_namespaces for h in handlers), handlers


def test_pod_survives_a_restart_and_keeps_its_user_namespace(uenv):
    pod = run_userns_pod(uenv, pid=pb.POD)
    first = uenv.run(pod, "a", command=SLEEPER)
    pid = uenv.pid(first)
    before = ns_inode(pid, "user"), ns_inode(pid, "net")
    uenv.d.kill9()
    uenv.d.start()
    second = uenv.run(pod, "b", command=SLEEPER)
    pid2 = uenv.pid(second)
    assert (ns_inode(pid2, "user"), ns_inode(pid2, "net")) == before
    assert proc_ids(pid2, "Uid") == [BASE] * 4
    assert sh(uenv, second, "id -u") == (0, "0\n")
    wait_for(lambda: uenv.state(first) == pb.CONTAINER_RUNNING, what="first still running")


def test_kill_during_create_leaves_no_id_mapped_mount(uenv, tmp_path):
    """crisp killed while the runtime creates a container whose volume it staged id-mapped:
    the start-up repair takes the stage off with the rest, and the retried create works."""
    vol = tmp_path / "vol"
    vol.mkdir()
    pod = run_userns_pod(uenv, handler="paused")
    cfg = uenv.config("c", command=SLEEPER,
                      mounts=[pb.Mount(container_path="/vol", host_path=str(vol))])
    cfg.linux.security_context.namespace_options.CopyFrom(
        uenv.pods[pod].linux.security_context.namespace_options)
    req = pb.CreateContainerRequest(pod_sandbox_id=pod, config=cfg,
                                    sandbox_config=uenv.pods[pod])
    uenv.paused.kill_during("before-create", "CreateContainer", req)
    assert not staged(uenv), staged(uenv)
    cid = uenv.c.call("CreateContainer", req, timeout=60).container_id
    uenv.start(cid)
    assert sh(uenv, cid, "touch /vol/f && id -u") == (0, "0\n")
    assert os.stat(vol / "f").st_uid == 0
    uenv.remove(cid)
    assert not staged(uenv), staged(uenv)


def test_kill_during_run_releases_the_user_namespace(podenv):  # noqa: F811
    """crisp killed during RunPodSandbox of a pod with a user namespace, once all four pins
    and the pause process exist (CNI ADD is held): the start-up repair releases them all."""
    cfg = pod_config("half-user", pid=pb.POD)
    cfg.linux.security_context.namespace_options.userns_options.CopyFrom(userns())
    podenv.pause("ADD")
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(run_pod, podenv.client, cfg)
        podenv.wait_marker("ADD")
        pins = sorted(os.listdir(os.path.join(podenv.d.run_root, "ns")))
        assert [p.rsplit("-", 1)[1] for p in pins] == ["ipc", "net", "pid", "user", "uts"]
        podenv.d.kill9()
        with pytest.raises(grpc.RpcError):
            fut.result()
    podenv.unpause("ADD")
    podenv.d.start()
    assert not podenv.client.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert not nsfs_mounts_under(podenv.d.tmp)
    assert os.listdir(os.path.join(podenv.d.root, "pods")) == []


@pytest.mark.parametrize("run_as", [None, 4242])
def test_direct_exec_in_a_user_namespace_matches_runc_exec(uenv, run_as):
    """ExecSync's direct path joins the pod's user namespace first, as runc exec does: the
    probe of test_exec_direct.py sees the same ids, groups, capabilities, namespaces, cgroups
    and limits both ways, and root inside is the mapped host id outside."""
    pod = run_userns_pod(uenv)
    ns = uenv.pods[pod].linux.security_context.namespace_options
    sec = pb.LinuxContainerSecurityContext(namespace_options=ns)
    if run_as is not None:
        sec.run_as_user.value = run_as
        sec.supplemental_groups.extend([4000])
    cid, st, out = compare(uenv, pod, "dx", security=sec)
    want = run_as or 0
    assert st["Uid"].split() == [str(want)] * 4, out
    user_line = [l for l in out if l.startswith("/proc/self/ns/user ")]
    assert user_line and user_line[0].split()[1] == os.readlink("/proc/%d/ns/user" % uenv.pid(cid))
    assert user_line[0].split()[1] != os.readlink("/proc/self/ns/user")
