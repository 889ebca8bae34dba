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


class CRIClient:
    def __init__(self, socket_path):
        self.socket_path = socket_path
        self.channel = grpc.insecure_channel(
            "unix://" + socket_path,
            options=[("grpc.max_receive_message_length", MAX_MESSAGE)])

    def close(self):
        self.channel.close()

    def method(self, name):
        service, desc = SERVICES[name]
        reply = getattr(pb, desc.output_type.name)
        return self.channel.unary_unary("/%s/%s" % (service, name),
                                        request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=reply.FromString)

    def call(self, name, request=None, timeout=30):
        if request is None:
            request = getattr(pb, SERVICES[name][1].input_type.name)()
        return self.method(name)(request, timeout=timeout)

    def raw(self, path, payload, timeout=10):
        """Sends raw bytes to any method path; returns the raw reply bytes."""
        fn = self.channel.unary_unary(path, request_serializer=None, response_deserializer=None)
        return fn(payload, timeout=timeout)

    def future(self, name, request, timeout=30):
        return self.method(name).future(request, timeout=timeout)
