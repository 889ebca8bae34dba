"""For the benchmarks in bench/: a crisp with busybox served by a local registry, in a
temporary directory that is removed afterwards."""
import contextlib
import importlib.util
import os
import shutil
import tempfile

from container_harness import ContainerEnv
from cri_client import pb
from crisp_daemon import CrispDaemon
from image_harness import registries_conf
from registry_harness import Registry, build_images


@contextlib.contextmanager
def busybox_crisp(prefix, config, leaks):
    """Yields a ContainerEnv; what crisp's cleanup found left behind is appended to leaks."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    logdir = os.path.join(tmp, "logs")
    os.makedirs(logdir)
    d = None
    try:
        images = build_images(os.path.join(tmp, "images"), ["busybox"])
        with Registry() as reg:
            reg.push(images["busybox"]["dir"], "latest", "busybox", "latest")
            d = CrispDaemon(os.path.join(tmp, "crisp"), config)
            with open(os.path.join(d.registries_dir, "50-bench.conf"), "w") as f:
                f.write(registries_conf(reg.host))
            d.start()
            yield ContainerEnv(d, reg, {}, logdir)
    finally:
        if d is not None:
            leaks.extend(d.cleanup())
        shutil.rmtree(tmp, ignore_errors=True)


def host_pod_configs(name, logdir, image, command):
    """(PodSandboxConfig, ContainerConfig) of a host-network pod NAME with one container "c"
    running COMMAND from IMAGE, its log under LOGDIR."""
    pod_cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=name + "-uid", namespace="bench"),
        log_directory=logdir,
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.NODE))))
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"),
                             image=pb.ImageSpec(image=image), command=command,
                             log_path="%s.log" % name)
    return pod_cfg, cfg


def load_bench_steps():
    """bench/steps/bench-steps.py as a module (its name has a hyphen, so it is loaded by path),
    for the benches that run its steps or start its runtimes."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "steps",
                        "bench-steps.py")
    spec = importlib.util.spec_from_file_location("bench_steps", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
