"""The one check that a test left nothing behind: a snapshot before, a diff after.

Network state (links, iptables rules and user chains) and the cgroups named as crisp names a
container's are compared with the snapshot; the rest
belongs to a Scope (a test's directory, or one daemon's) and must simply be gone: mounts and
namespace pins under the directory, host-local IP allocations of its CNI networks, crisp-conmon
processes whose argv names it, runc state under its runtime roots, cgroups named after the pods
and containers it made, and files in crisp's state directories once everything was removed
through CRI (only the image store may stay: images are not removed by pod or container
removal).

    check = LeakCheck()                   # before anything is created
    check.add(Scope(tmp, ...))            # or check.add(daemon.leak_scope())
    ...
    leaks = check.leaks()                 # ["link crisp-t12ab", "mount /tmp/x/y (tmpfs)", ...]
    check.clean()                         # best effort, so the next test starts clean
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import time

CGROUP_ROOT = "/sys/fs/cgroup"

# portmap creates these shared chains once and, by design, never deletes them (nat table).
SHARED_PORTMAP = {
    ":CNI-HOSTPORT-DNAT", ":CNI-HOSTPORT-MASQ", ":CNI-HOSTPORT-SETMARK",
    "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
    "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
    '-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
    "-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE",
    '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" '
    "-j MARK --set-xmark 0x2000/0x2000",
}

# What may stay in crisp's state directories after every pod and container was removed through
# CRI, besides empty directories: the image store (root/storage), the pod CIDR that
# UpdateRuntimeConfig set (run-root/pod-cidr), the state format version of each directory
# (version), and records quarantined because they could not be trusted (a store's
# .quarantine/, kept for a human to look at).
KEPT_STATE = ("storage", "pod-cidr", "version")
QUARANTINE = ".quarantine"


# ---- network (per network namespace: compared with the snapshot) ----

def links():
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def iptables_items(save="iptables-save"):
    """{(table, item)}: the rules ("-A ...") and user chains (":NAME") of every table.

    A table header and its built-in chains (":INPUT ACCEPT [0:0]") appear on the table's first
    use, whoever uses it; a user chain is the one whose policy is "-"."""
    if shutil.which(save) is None:
        return set()
    out = subprocess.run([save], capture_output=True, text=True, check=True).stdout
    items, table = set(), None
    for line in out.splitlines():
        if line.startswith("*"):
            table = save.split("-")[0] + " " + line
        elif line.startswith(":"):
            name, policy = line.split()[:2]
            if policy == "-":
                items.add((table, name))
        elif line.startswith("-A"):
            items.add((table, line))
    return items


def iptables():
    return iptables_items("iptables-save") | iptables_items("ip6tables-save")


def remove_shared_portmap_chains():
    """Undo portmap's shared chains (when they were absent before the test)."""
    for chain, jump in (("PREROUTING", "-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT"),
                        ("OUTPUT", "-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT"),
                        ("POSTROUTING", '-m comment --comment "CNI portfwd requiring masquerade" '
                                        "-j CNI-HOSTPORT-MASQ")):
        subprocess.run("iptables -t nat -D %s %s" % (chain, jump), shell=True,
                       stderr=subprocess.DEVNULL)
    for c in ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"):
        subprocess.run(["iptables", "-t", "nat", "-F", c], stderr=subprocess.DEVNULL)
        subprocess.run(["iptables", "-t", "nat", "-X", c], stderr=subprocess.DEVNULL)


def remove_iptables_item(table, item):
    tool, name = table.split(" *")
    cmd = ["iptables" if tool == "iptables" else "ip6tables", "-t", name]
    if item.startswith(":"):
        subprocess.run(cmd + ["-F", item[1:]], stderr=subprocess.DEVNULL)
        subprocess.run(cmd + ["-X", item[1:]], stderr=subprocess.DEVNULL)
    else:
        subprocess.run(" ".join(cmd) + " -D" + item[2:], shell=True, stderr=subprocess.DEVNULL)


# ---- things under a directory ----

def mounts_under(path):
    """[(mount point, fstype)] at or below path, deepest first."""
    found = []
    prefix = path.rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            mp = parts[4].replace("\\040", " ")
            if mp == path or mp.startswith(prefix):
                found.append((mp, parts[parts.index("-") + 1]))
    return sorted(found, key=lambda m: len(m[0]), reverse=True)


def read_cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return None


def monitors(needle):
    """{pid: argv} of live crisp-conmon processes whose argv contains needle."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            argv = read_cmdline(entry)
            if (argv and os.path.basename(argv[0]) == "crisp-conmon"
                    and any(needle in a for a in argv[1:])):
                found[int(entry)] = argv
    return found


def runc_containers(runc_root):
    """Containers runc still keeps state for under runc_root."""
    return sorted(glob.glob(os.path.join(runc_root, "*", "state.json")))


def host_local_dirs(cni_dir):
    """{network name: dataDir} of the host-local IPAM of every CNI config in cni_dir."""
    dirs = {}
    for path in glob.glob(os.path.join(cni_dir, "*.conf*")):
        try:
            with open(path) as f:
                conf = json.load(f)
        except (OSError, ValueError):
            continue
        for plugin in conf.get("plugins", [conf]):
            ipam = plugin.get("ipam") or {}
            if ipam.get("type") == "host-local":
                dirs[conf.get("name")] = ipam.get("dataDir", "/var/lib/cni/networks")
    return dirs


def ip_allocations(cni_dir):
    """Allocation files (named by the address) host-local keeps for cni_dir's networks."""
    found = []
    for name, data_dir in host_local_dirs(cni_dir).items():
        d = os.path.join(data_dir, name)
        if os.path.isdir(d):
            found += [os.path.join(d, f) for f in sorted(os.listdir(d))
                      if f[0].isdigit() or ":" in f]
    return found


def cgroup_dirs():
    """Every cgroup directory on the host (the tree is small: crisp's, runc's, systemd's)."""
    found = []

    def walk(path):
        try:
            with os.scandir(path) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        found.append(e.path)
                        walk(e.path)
        except OSError:
            pass
    walk(CGROUP_ROOT)
    return found


def crisp_cgroups():
    """Every cgroup directory named as crisp names a container's (crisp-<id>, or
    crisp-<id>.scope): one a test's daemon made and left is a leak even when the test never
    learnt the id (a create that a kill interrupted)."""
    return {p for p in cgroup_dirs() if os.path.basename(p).startswith("crisp-")}


def cgroups_of(ids, names):
    """Cgroup directories named after one of ids (crisp-<id>, crisp-<id>.scope) or at one of
    names (a path below each hierarchy, e.g. "/crisp-test-123"), deepest first."""
    found = []
    if ids:
        found = [p for p in cgroup_dirs() if any(i in os.path.basename(p) for i in ids)]
    if names:
        for hier in os.listdir(CGROUP_ROOT):
            for n in names:
                p = os.path.join(CGROUP_ROOT, hier, n.strip("/"))
                if not os.path.islink(os.path.join(CGROUP_ROOT, hier)) and os.path.isdir(p):
                    found.append(p)
    return sorted(set(found), key=len, reverse=True)


def remove_cgroup(path):
    for _ in range(100):  # a killed process takes a moment to leave its cgroup
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


def state_files(state_dir):
    """Files left under one of crisp's state directories (not below a mount point: that is
    reported as a mount)."""
    found = []
    for dirpath, dirs, files in os.walk(state_dir):
        dirs[:] = [d for d in dirs
                   if d != QUARANTINE and not os.path.ismount(os.path.join(dirpath, d))]
        if dirpath == state_dir:
            dirs[:] = [d for d in dirs if d not in KEPT_STATE]
            files = [f for f in files if f not in KEPT_STATE]
        found += [os.path.join(dirpath, f) for f in files]
    return sorted(found)


def state_leaks(state_dir):
    """state_files() as one line per object (<state dir>/<kind>/<id>), naming a few files."""
    groups = {}
    for path in state_files(state_dir):
        parts = os.path.relpath(path, state_dir).split(os.sep)
        key = os.path.join(state_dir, *parts[:2])
        groups.setdefault(key, []).append(os.path.relpath(path, key))
    found = []
    for key, files in sorted(groups.items()):
        if files == ["."]:
            found.append("state file %s" % key)
        else:
            more = " and %d more" % (len(files) - 4) if len(files) > 4 else ""
            found.append("state files in %s: %s%s" % (key, ", ".join(files[:4]), more))
    return found


# ---- scopes and the check ----

class Scope:
    """What belongs to one test or daemon.

    dir: its directory (mounts below it, monitors naming it); state_dirs: crisp's root and
    run-root; runc_roots: runc --root directories (a glob is fine); cni_dirs: CNI config dirs
    whose host-local allocations must be gone; ids: pod and container ids it made (a live set
    is fine: it is read at check time); cgroup_names: cgroup paths it chose itself."""

    def __init__(self, dir, state_dirs=(), runc_roots=(), cni_dirs=(), ids=None,
                 cgroup_names=None):
        self.dir = dir
        self.state_dirs = list(state_dirs)
        self.runc_roots = list(runc_roots)
        self.cni_dirs = list(cni_dirs)
        self.ids = ids if ids is not None else set()
        self.cgroup_names = cgroup_names if cgroup_names is not None else []

    def roots(self):
        return sorted({p for pattern in self.runc_roots for p in glob.glob(pattern)})

    def leaks(self, monitor_grace=10):
        found = []
        deadline = time.monotonic() + monitor_grace
        while monitors(self.dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        found += ["monitor pid %d: %s" % (pid, " ".join(argv))
                  for pid, argv in sorted(monitors(self.dir).items())]
        for root in self.roots():
            found += ["runc state %s" % os.path.dirname(s) for s in runc_containers(root)]
        for mp, fstype in mounts_under(self.dir):
            found.append(("nsfs pin %s" if fstype == "nsfs" else "mount %%s (%s)" % fstype) % mp)
        for cni_dir in self.cni_dirs:
            found += ["IP allocation %s" % a for a in ip_allocations(cni_dir)]
        found += ["cgroup %s" % p for p in cgroups_of(set(self.ids), self.cgroup_names)]
        for d in self.state_dirs:
            found += state_leaks(d)
        return found

    def clean(self):
        """Ends and removes what leaked, so later tests and the host stay clean."""
        for pid in monitors(self.dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for root in self.roots():
            for s in runc_containers(root):
                subprocess.run(["runc", "--root", root, "delete", "--force",
                                os.path.basename(os.path.dirname(s))], capture_output=True)
        for mp, _ in mounts_under(self.dir):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        for p in cgroups_of(set(self.ids), self.cgroup_names):
            remove_cgroup(p)


class LeakCheck:
    """A snapshot of the network namespace now, and the scopes added later."""

    def __init__(self, *scopes):
        self.links = links()
        self.iptables = iptables()
        self.cgroups = crisp_cgroups()
        self.scopes = list(scopes)

    def add(self, scope):
        self.scopes.append(scope)
        return scope

    def shared_portmap_was_there(self):
        return any(item in SHARED_PORTMAP for _, item in self.iptables)

    def network_leaks(self):
        self.new_items = iptables() - self.iptables
        new_items = {(t, i) for t, i in self.new_items if i not in SHARED_PORTMAP}
        found = ["%s %s" % r for r in sorted(new_items)]
        found += ["link %s" % name for name in sorted(links() - self.links)]
        return found

    def leaks(self):
        found = []
        for s in self.scopes:
            found += s.leaks()
        found += ["cgroup %s" % p for p in self.new_cgroups() if "cgroup %s" % p not in found]
        return found + self.network_leaks()

    def new_cgroups(self):
        """crisp_cgroups() made since the snapshot, deepest first."""
        return sorted(crisp_cgroups() - self.cgroups, key=len, reverse=True)

    def clean(self):
        for s in self.scopes:
            s.clean()
        for p in self.new_cgroups():
            remove_cgroup(p)
        new_items = iptables() - self.iptables
        # Rules first: a chain that a rule still jumps to cannot be deleted.
        for table, item in sorted(new_items, key=lambda r: r[1][0] == ":"):
            if item not in SHARED_PORTMAP:
                remove_iptables_item(table, item)
        if any(item in SHARED_PORTMAP for _, item in new_items):
            remove_shared_portmap_chains()
        for name in links() - self.links:
            subprocess.run(["ip", "link", "del", name], stderr=subprocess.DEVNULL)

    def check(self):
        """leaks(), then clean() if anything leaked; returns the leaks. portmap's shared chains
        are no leak, but are removed if the test brought them."""
        found = self.leaks()
        if found:
            self.clean()
        elif any(item in SHARED_PORTMAP for _, item in self.new_items):
            remove_shared_portmap_chains()
        return found
