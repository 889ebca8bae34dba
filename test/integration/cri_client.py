"""A CRI client for crisp's integration tests, independent of crisp's C code.

Messages are generated from proto/runtime.proto by protoc at import time (into a temporary
directory), and calls go through grpcio's generic unary API, so no generated stubs are needed.

    from cri_client import CRIClient, pb
    c = CRIClient("/tmp/x/crisp.sock")
    c.call("Version", pb.VersionRequest())
"""
import atexit
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

import grpc

SRCDIR = os.environ.get(
    "CRISP_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
PROTO = os.path.join(SRCDIR, "proto", "runtime.proto")


def _generate():
    out = tempfile.mkdtemp(prefix="crisp-pb-")
    atexit.register(shutil.rmtree, out, True)
    subprocess.run(["protoc", "--python_out=" + out, "-I" + os.path.dirname(PROTO), PROTO],
                   check=True)
    sys.path.insert(0, out)
    return importlib.import_module("runtime_pb2")


pb = _generate()

SERVICES = {}
for _svc in pb.DESCRIPTOR.services_by_name.values():
    for _m in _svc.methods:
        SERVICES[_m.name] = (_svc.full_name, _m)

MAX_MESSAGE = 16 * 1024 * 1024


# By default gRPC lets channels with the same target and options share one connection.  A
# channel made after crisp restarted could then be given the connection of an older channel
# that nothing was reading, still to the crisp that went away, and fail with "Broken pipe".
# Each client here has its own connections, as separate client processes (the kubelet,
# crictl) would.
LOCAL_SUBCHANNELS = ("grpc.use_local_subchannel_pool", 1)

# The calls that make a pod or a container, and where their reply names it.
CREATES = {"RunPodSandbox": "pod_sandbox_id", "CreateContainer": "container_id"}


class CRIClient:
    def __init__(self, socket_path, ids=None):
        """ids: a set that collects the id of every pod and container made through this
        client (the leak check looks for their cgroups)."""
        self.socket_path = socket_path
        self.ids = ids if ids is not None else set()
        self.channel = grpc.insecure_channel(
            "unix://" + socket_path,
            options=[("grpc.max_receive_message_length", MAX_MESSAGE), LOCAL_SUBCHANNELS])

    def close(self):
        self.channel.close()

    def method(self, name):
        service, desc = SERVICES[name]
        reply = getattr(pb, desc.output_type.name)
        return self.channel.unary_unary("/%s/%s" % (service, name),
                                        request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=reply.FromString)

    def stream(self, name, request=None, timeout=30, **options):
        """A server-streaming call: an iterator of its messages (a grpc.Call too)."""
        service, desc = SERVICES[name]
        reply = getattr(pb, desc.output_type.name)
        if request is None:
            request = getattr(pb, desc.input_type.name)()
        fn = self.channel.unary_stream("/%s/%s" % (service, name),
                                       request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=reply.FromString)
        return fn(request, timeout=timeout, **options)

    def call(self, name, request=None, timeout=30):
        if request is None:
            request = getattr(pb, SERVICES[name][1].input_type.name)()
        reply = self.method(name)(request, timeout=timeout)
        self._note(name, reply)
        return reply

    def _note(self, name, reply):
        if name in CREATES:
            self.ids.add(getattr(reply, CREATES[name]))

    def raw(self, path, payload, timeout=10):
        """Sends raw bytes to any method path; returns the raw reply bytes."""
        fn = self.channel.unary_unary(path, request_serializer=None, response_deserializer=None)
        return fn(payload, timeout=timeout)

    def future(self, name, request, timeout=30):
        fut = self.method(name).future(request, timeout=timeout)
        if name in CREATES:
            fut.add_done_callback(
                lambda f: not f.cancelled() and f.exception() is None
                and self._note(name, f.result()))
        return fut
