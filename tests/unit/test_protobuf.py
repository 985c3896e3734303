"""Decoding Kubernetes protobuf request bodies: real kubectl captures, hand-built messages, hostile bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeos.api.kinds import RESOURCES
from nodeos.api.protobuf import decode_object
from nodeos.api.protobuf.field import INLINE, MAP, MESSAGE, Field, message
from nodeos.api.protobuf.schema import MESSAGES, OBJECTS
from nodeos.errors import ApiError

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"
MAGIC = b"k8s\x00"

# -- a tiny test-only encoder ------------------------------------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negatives as 64-bit two's complement, as Go writes int32 and int64
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def msg(*fields: tuple[int, Any]) -> bytes:
    """A message from (number, value) pairs: ints and bools as varints, str and bytes length-delimited."""
    out = b""
    for number, value in fields:
        if isinstance(value, bool | int):
            out += varint(number << 3) + varint(int(value))
        else:
            data = value.encode() if isinstance(value, str) else value
            out += varint(number << 3 | 2) + varint(len(data)) + data
    return out


def entry(key: str, value: str | bytes) -> bytes:
    return msg((1, key), (2, value))


def qty(text: str) -> bytes:
    return msg((1, text))


def intstr(value: int | str) -> bytes:
    return msg((1, 1), (3, value)) if isinstance(value, str) else msg((1, 0), (2, value))


def body(api_version: str, kind: str, raw: bytes, **envelope: str) -> bytes:
    extra = [(3, envelope["encoding"])] if "encoding" in envelope else []
    return MAGIC + msg((1, msg((1, api_version), (2, kind))), (2, raw), *extra, (4, ""))


def meta(name: str, namespace: str = "") -> tuple[int, bytes]:
    return 1, msg((1, name), (2, ""), (3, namespace), (7, 0), (8, b""))


# -- kubectl's own bodies ----------------------------------------------------------------------

STATUS_LB = {"loadBalancer": {}}
CAPTURED = {
    "namespace.bin": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gen-x"}, "spec": {},
                      "status": {}},
    "deployment.bin": {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "gen-x", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27",
                                                  "ports": [{"containerPort": 80}], "resources": {}}]}},
            "strategy": {},
        },
        "status": {},
    },
    "deployment-command.bin": {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "cmd", "labels": {"app": "cmd"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "cmd"}},
            "template": {"metadata": {"labels": {"app": "cmd"}},
                         "spec": {"containers": [{"name": "busybox", "image": "busybox:1.36",
                                                  "command": ["sleep", "100"], "resources": {}}]}},
            "strategy": {},
        },
        "status": {},
    },
    "service-clusterip.bin": {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                 "selector": {"app": "web"}, "type": "ClusterIP"},
        "status": STATUS_LB,
    },
    "service-nodeport.bin": {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "np", "labels": {"app": "np"}},
        "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}],
                 "selector": {"app": "np"}, "type": "NodePort"},
        "status": STATUS_LB,
    },
    "service-loadbalancer.bin": {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb", "labels": {"app": "lb"}},
        "spec": {"ports": [{"name": "443-8443", "protocol": "TCP", "port": 443, "targetPort": 8443},
                           {"name": "80", "protocol": "TCP", "port": 80, "targetPort": 80}],
                 "selector": {"app": "lb"}, "type": "LoadBalancer"},
        "status": STATUS_LB,
    },
    "service-externalname.bin": {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "labels": {"app": "ext"}},
        "spec": {"selector": {"app": "ext"}, "type": "ExternalName", "externalName": "example.com"},
        "status": STATUS_LB,
    },
    "pod-debug-node.bin": {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "node-debugger-n1-ncdfx"},
        "spec": {
            "volumes": [{"name": "host-root", "hostPath": {"path": "/"}}],
            "containers": [{"name": "debugger", "image": "busybox:1.36", "resources": {},
                            "volumeMounts": [{"name": "host-root", "mountPath": "/host"}],
                            "terminationMessagePolicy": "File"}],
            "restartPolicy": "Never", "nodeName": "n1", "hostNetwork": True, "hostPID": True, "hostIPC": True,
            "tolerations": [{"operator": "Exists"}],
        },
        "status": {},
    },
    "pod-debug-copy.bin": {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1-debug", "namespace": "default"},
        "spec": {
            "containers": [
                {"name": "c", "image": "busybox", "command": ["sleep", "1000"], "resources": {},
                 "terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "Always",
                 "terminationMessagePolicy": "File"},
                {"name": "dbg", "image": "busybox:1.36", "command": ["sh"], "resources": {},
                 "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}, "terminationMessagePolicy": "File"},
            ],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "securityContext": {}, "schedulerName": "default-scheduler",
            "priority": 0,  # a pointer: kubectl copied an explicit 0, which must survive
            "shareProcessNamespace": True, "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {},
    },
    "deleteoptions-drain.bin": {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 5},
}


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_bodies_kubectl_sent_decode_to_what_its_json_would_say(name):
    assert decode_object((FIXTURES / name).read_bytes()) == CAPTURED[name]


def test_every_fixture_is_asserted():
    assert sorted(p.name for p in FIXTURES.glob("*.bin")) == sorted(CAPTURED)


# -- hand-built messages for what kubectl's generators never send --------------------------------


def test_a_deployment_with_every_pod_feature():
    env = [
        (7, msg((1, "PLAIN"), (2, "1"))),
        (7, msg((1, "POD_IP"), (3, msg((1, msg((1, "v1"), (2, "status.podIP"))))))),
        (7, msg((1, "CPU"), (3, msg((2, msg((1, "app"), (2, "limits.cpu"), (3, qty("1m")))))))),
        (7, msg((1, "CM"), (3, msg((3, msg((1, msg((1, "settings"))), (2, "mode"), (3, False))))))),
        (7, msg((1, "PW"), (3, msg((4, msg((1, msg((1, "creds"))), (2, "password"))))))),
    ]
    container = msg(
        (1, "app"), (2, "registry.local/app:2"), (3, "sh"), (3, "-c"), (4, "exec app"), (5, "/srv"),
        (6, msg((1, "http"), (3, 8080), (4, "TCP"))),
        *env,
        (8, msg((1, entry("cpu", qty("500m"))), (1, entry("memory", qty("128Mi"))),
                (2, entry("cpu", qty("250m"))))),
        (9, msg((1, "data"), (2, True), (3, "/data"))),
        (10, msg((1, msg((2, msg((1, "/healthz"), (2, intstr(8080)), (4, "HTTP"))))), (2, 5), (4, 10))),
        (11, msg((1, msg((3, msg((1, intstr("http")))))), (6, 3))),
        (22, msg((1, msg((1, msg((1, "cat"), (1, "/ready"))))), (7, 0))),
        (13, "/dev/termination-log"), (20, "FallbackToLogsOnError"), (14, "IfNotPresent"),
        (15, msg((2, False), (4, 1000), (5, True), (1, msg((2, "ALL"))))),
        (16, True), (18, True),
    )
    zone_term = msg((1, msg((1, "zone"), (2, "In"), (3, "a"), (3, "b"))))
    gpu_term = msg((1, msg((1, "gpu"), (2, "Exists"))))
    node_affinity = msg((1, msg((1, zone_term))), (2, msg((1, 50), (2, gpu_term))))
    affinity = msg((1, node_affinity))
    pod_spec = msg(
        (1, msg((1, "data"), (2, msg((2, msg((1, "Memory"), (2, qty("1Gi")))))))),
        (1, msg((1, "logs"), (2, msg((1, msg((1, "/var/log"), (2, "Directory"))))))),
        (1, msg((1, "cfg"), (2, msg((19, msg((1, msg((1, "settings"))), (2, msg((1, "a"), (2, "a.conf"))),
                                             (3, 0o644))))))),
        (1, msg((1, "tls"), (2, msg((6, msg((1, "tls-secret"), (4, True))))))),
        (20, msg((1, "init"), (2, "busybox"), (3, "true"))),
        (2, container),
        (3, "Always"), (4, 0), (5, -1), (6, "ClusterFirst"),
        (7, entry("disktype", "ssd")),
        (8, "builder"), (10, "node-1"), (11, False),
        (14, msg((2, 1000), (4, 3000), (4, 4000), (5, 2000))),
        (18, affinity),
        (19, "default-scheduler"),
        (22, msg((1, "dedicated"), (2, "Equal"), (3, "db"), (4, "NoSchedule"), (5, 300))),
        (25, 1000), (30, False),
    )
    spec = msg(
        (1, 0),
        (2, msg((1, entry("app", "api")), (2, msg((1, "tier"), (2, "NotIn"), (3, "cache"))))),
        (3, msg(meta(""), (2, pod_spec))),
        (4, msg((1, "RollingUpdate"), (2, msg((1, intstr(0)), (2, intstr("25%")))))),
        (5, 10), (6, 0), (7, True), (9, 600),
    )
    raw = msg(
        (1, msg((1, "api"), (3, "prod"), (11, entry("app", "api")), (12, entry("note", "")),
                (13, msg((5, "apps/v1"), (1, "ReplicaSet"), (3, "api-1"), (4, "u-1"), (6, True), (7, False))),
                (14, "example.com/guard"), (17, msg((1, "kubectl"))))),
        (2, spec), (3, msg((2, 0))),
    )
    assert decode_object(body("apps/v1", "Deployment", raw)) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": "api", "namespace": "prod", "labels": {"app": "api"}, "annotations": {"note": ""},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-1", "uid": "u-1",
                                 "controller": True, "blockOwnerDeletion": False}],
            "finalizers": ["example.com/guard"],
        },
        "spec": {
            "replicas": 0,  # pointers keep their zero: scaled to nothing
            "selector": {"matchLabels": {"app": "api"},
                         "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["cache"]}]},
            "template": {"metadata": {}, "spec": {
                "volumes": [
                    {"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                    {"name": "logs", "hostPath": {"path": "/var/log", "type": "Directory"}},
                    {"name": "cfg", "configMap": {"name": "settings", "items": [{"key": "a", "path": "a.conf"}],
                                                  "defaultMode": 420}},
                    {"name": "tls", "secret": {"secretName": "tls-secret", "optional": True}},
                ],
                "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
                "containers": [{
                    "name": "app", "image": "registry.local/app:2", "command": ["sh", "-c"], "args": ["exec app"],
                    "workingDir": "/srv",
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [
                        {"name": "PLAIN", "value": "1"},
                        {"name": "POD_IP",
                         "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
                        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"containerName": "app",
                                                                           "resource": "limits.cpu", "divisor": "1m"}}},
                        {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode",
                                                                         "optional": False}}},
                        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                    ],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
                    "volumeMounts": [{"name": "data", "readOnly": True, "mountPath": "/data"}],
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                                      "initialDelaySeconds": 5, "periodSeconds": 10},
                    "readinessProbe": {"tcpSocket": {"port": "http"}, "failureThreshold": 3},
                    "startupProbe": {"exec": {"command": ["cat", "/ready"]}, "terminationGracePeriodSeconds": 0},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "imagePullPolicy": "IfNotPresent",
                    "securityContext": {"privileged": False, "runAsUser": 1000, "runAsNonRoot": True,
                                        "capabilities": {"drop": ["ALL"]}},
                    "stdin": True, "tty": True,
                }],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 0, "activeDeadlineSeconds": -1,
                "dnsPolicy": "ClusterFirst", "nodeSelector": {"disktype": "ssd"}, "serviceAccountName": "builder",
                "nodeName": "node-1",
                "securityContext": {"runAsUser": 1000, "supplementalGroups": [3000, 4000], "fsGroup": 2000},
                "affinity": {"nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]},
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 50, "preference": {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}}],
                }},
                "schedulerName": "default-scheduler",
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule",
                                 "tolerationSeconds": 300}],
                "priority": 1000, "enableServiceLinks": False,
            }},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "minReadySeconds": 10, "revisionHistoryLimit": 0, "paused": True, "progressDeadlineSeconds": 600,
        },
        "status": {},
    }


def test_packed_repeated_integers_decode_too():
    packed = varint(4 << 3 | 2) + varint(3) + varint(1) + varint(2) + varint(3)
    raw = msg((2, msg((14, packed))))
    assert decode_object(body("v1", "Pod", raw))["spec"]["securityContext"] == {"supplementalGroups": [1, 2, 3]}


def test_a_service_with_every_spec_field():
    spec = msg(
        (1, msg((1, "dns"), (2, "UDP"), (6, "dns"), (3, 53), (4, intstr("dns")), (5, 30053))),
        (2, entry("app", "dns")), (3, "10.96.0.10"), (18, "10.96.0.10"), (4, "NodePort"),
        (5, "192.0.2.1"), (7, "ClientIP"), (11, "Local"), (13, True),
        (14, msg((1, msg((1, 600))))), (19, "IPv4"), (17, "SingleStack"), (22, "Cluster"),
    )
    assert decode_object(body("v1", "Service", msg(meta("dns", "kube-system"), (2, spec)))) == {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns", "namespace": "kube-system"},
        "spec": {
            "ports": [{"name": "dns", "protocol": "UDP", "appProtocol": "dns", "port": 53, "targetPort": "dns",
                       "nodePort": 30053}],
            "selector": {"app": "dns"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "type": "NodePort",
            "externalIPs": ["192.0.2.1"], "sessionAffinity": "ClientIP", "externalTrafficPolicy": "Local",
            "publishNotReadyAddresses": True, "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
        },
    }


def test_a_node_with_status_and_times():
    raw = msg(
        meta("n1"),
        (2, msg((1, "10.244.1.0/24"), (7, "10.244.1.0/24"), (4, True),
                (5, msg((1, "node.kubernetes.io/unreachable"), (3, "NoExecute"), (4, msg((1, 1700000000))))))),
        (3, msg((1, entry("cpu", qty("4"))), (2, entry("pods", qty("110"))),
                (4, msg((1, "Ready"), (2, "True"), (3, msg((1, 1700000000), (2, 999_999_999))),
                        (4, msg()), (5, "KubeletReady"))),
                (5, msg((1, "InternalIP"), (2, "192.0.2.10"))),
                (6, msg((1, msg((1, 10250))))),
                (7, msg((7, "v1.32.0"), (9, "linux"), (10, "amd64"))))),
    )
    assert decode_object(body("v1", "Node", raw)) == {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"], "unschedulable": True,
                 "taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute",
                             "timeAdded": "2023-11-14T22:13:20Z"}]},
        "status": {
            "capacity": {"cpu": "4"}, "allocatable": {"pods": "110"},
            # Time is whole seconds on the JSON wire; Go's zero time (an empty message) is left out
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2023-11-14T22:13:20Z",
                            "reason": "KubeletReady"}],
            "addresses": [{"type": "InternalIP", "address": "192.0.2.10"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kubeletVersion": "v1.32.0", "operatingSystem": "linux", "architecture": "amd64"},
        },
    }


def test_a_pod_status():
    status = msg(
        (1, "Running"), (2, msg((1, "Ready"), (2, "True"))), (5, "192.0.2.10"), (6, "10.244.1.5"),
        (12, msg((1, "10.244.1.5"))), (7, msg((1, 1700000000))),
        (8, msg((1, "app"), (2, msg((3, msg((1, 0), (3, "Completed"))))), (4, False), (5, 0), (6, "busybox"))),
        (9, "BestEffort"),
    )
    assert decode_object(body("v1", "Pod", msg(meta("p"), (3, status))))["status"] == {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "hostIP": "192.0.2.10",
        "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}], "startTime": "2023-11-14T22:13:20Z",
        "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                               "ready": False, "restartCount": 0, "image": "busybox"}],
        "qosClass": "BestEffort",
    }


@pytest.mark.parametrize(("api_version", "kind", "raw", "expected"), [
    ("v1", "ReplicationController",
     msg(meta("rc"), (2, msg((1, 2), (2, entry("app", "rc")), (3, msg(meta(""), (2, msg((2, msg((1, "c")))))))))),
     {"metadata": {"name": "rc"}, "spec": {"replicas": 2, "selector": {"app": "rc"},
                                           "template": {"metadata": {}, "spec": {"containers": [{"name": "c"}]}}}}),
    ("apps/v1", "ReplicaSet",
     msg(meta("rs"), (2, msg((1, 1), (4, 0), (2, msg((1, entry("a", "b"))))))),
     {"metadata": {"name": "rs"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}}}),
    ("apps/v1", "DaemonSet",
     msg(meta("ds"), (2, msg((3, msg((1, "RollingUpdate"), (2, msg((1, intstr(1)), (2, intstr(0))))))))),
     {"metadata": {"name": "ds"}, "spec": {"updateStrategy": {"type": "RollingUpdate",
                                                              "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}}),
    ("v1", "Endpoints",
     msg(meta("web"), (2, msg((1, msg((1, "10.244.1.5"), (4, "n1"),
                                      (2, msg((1, "Pod"), (2, "ns"), (3, "web-1"), (4, "u"))))),
                              (2, msg((1, "10.244.1.6"))), (3, msg((1, "http"), (2, 8080), (3, "TCP")))))),
     {"metadata": {"name": "web"}, "subsets": [{
         "addresses": [{"ip": "10.244.1.5", "nodeName": "n1",
                        "targetRef": {"kind": "Pod", "namespace": "ns", "name": "web-1", "uid": "u"}}],
         "notReadyAddresses": [{"ip": "10.244.1.6"}],
         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]}),
    ("v1", "Event",
     msg(meta("web.1"), (2, msg((1, "Pod"), (3, "web"))), (3, "Pulled"), (4, "pulled"),
         (5, msg((1, "kubelet"), (2, "n1"))), (6, msg((1, 1700000000))), (8, 2), (9, "Normal"),
         (10, msg((1, 1700000000), (2, 123_456_789))), (14, "kubelet"), (15, "n1")),
     {"metadata": {"name": "web.1"}, "involvedObject": {"kind": "Pod", "name": "web"}, "reason": "Pulled",
      "message": "pulled", "source": {"component": "kubelet", "host": "n1"},
      "firstTimestamp": "2023-11-14T22:13:20Z", "count": 2, "type": "Normal",
      "eventTime": "2023-11-14T22:13:20.123456Z", "reportingComponent": "kubelet", "reportingInstance": "n1"}),
    ("v1", "Binding",
     msg(meta("web-1", "ns"), (2, msg((1, "Node"), (3, "n1")))),
     {"metadata": {"name": "web-1", "namespace": "ns"}, "target": {"kind": "Node", "name": "n1"}}),
    ("coordination.k8s.io/v1", "Lease",
     msg(meta("n1", "kube-node-lease"), (2, msg((1, "n1"), (2, 40), (4, msg((1, 1700000000))), (5, 0)))),
     {"metadata": {"name": "n1", "namespace": "kube-node-lease"},
      "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "2023-11-14T22:13:20.000000Z",
               "leaseTransitions": 0}}),
    ("autoscaling/v1", "Scale",
     msg(meta("web"), (2, msg((1, 0)))),
     {"metadata": {"name": "web"}, "spec": {"replicas": 0}}),
    ("apps/v1", "DeleteOptions",
     msg((1, 0), (2, msg((1, "u-1"))), (4, "Foreground"), (5, "All")),
     {"gracePeriodSeconds": 0, "preconditions": {"uid": "u-1"}, "propagationPolicy": "Foreground",
      "dryRun": ["All"]}),
    ("v1", "Namespace",
     msg(meta("ns"), (2, msg((1, "kubernetes")))),
     {"metadata": {"name": "ns"}, "spec": {"finalizers": ["kubernetes"]}}),
])
def test_each_served_kind(api_version, kind, raw, expected):
    assert decode_object(body(api_version, kind, raw)) == {"apiVersion": api_version, "kind": kind, **expected}


def test_unknown_fields_of_every_wire_type_are_skipped():
    fixed64 = varint(90 << 3 | 1) + bytes(8)
    fixed32 = varint(91 << 3 | 5) + bytes(4)
    raw = msg(meta("x"), (92, 7), (93, "later API")) + fixed64 + fixed32
    assert decode_object(body("v1", "Namespace", raw)) == {"apiVersion": "v1", "kind": "Namespace",
                                                           "metadata": {"name": "x"}}


def test_the_last_occurrence_of_a_field_wins():
    raw = msg((1, msg((1, "first"), (1, "second"), (7, 3), (7, 0))))
    assert decode_object(body("v1", "Namespace", raw))["metadata"] == {"name": "second"}


# -- what is refused ---------------------------------------------------------------------------


def bad_request(data: bytes) -> str:
    with pytest.raises(ApiError) as caught:
        decode_object(data)
    assert caught.value.code == 400, caught.value.message
    return caught.value.message


def test_malformed_bodies_are_bad_requests():
    assert "magic" in bad_request(b'{"kind": "Namespace"}')
    assert "truncated varint" in bad_request(MAGIC + b"\x0a\x80")
    assert "runs past the end" in bad_request(MAGIC + b"\x0a\x05ab")
    assert "unsupported wire type 3" in bad_request(MAGIC + b"\x0b")
    assert "field number 0" in bad_request(MAGIC + b"\x02\x00")
    assert "longer than 10 bytes" in bad_request(MAGIC + b"\x08" + b"\xff" * 11)
    wrong_type = bad_request(body("v1", "Namespace", msg((1, 5))))
    assert "Namespace.metadata (field 1) has wire type varint, expected length-delimited" in wrong_type
    assert "expected varint" in bad_request(body("apps/v1", "Deployment", msg((2, msg((1, "three"))))))
    assert "UTF-8" in bad_request(body("v1", "Namespace", msg((1, msg((1, b"\xff\xfe"))))))
    assert "gzip" in bad_request(body("v1", "Namespace", b"", encoding="gzip"))
    taint_from_far_future = msg((4, msg((1, 1 << 62))))
    assert "out of range" in bad_request(body("v1", "Node", msg((2, msg((5, taint_from_far_future))))))


def test_nesting_deeper_than_100_is_refused(monkeypatch):
    # no served kind nests anywhere near 100 levels, so build a message that contains itself
    monkeypatch.setitem(MESSAGES, "Russian", {1: message("doll", "Russian")})
    monkeypatch.setitem(OBJECTS, "Russian", "v1")
    doll = b""
    for _ in range(101):
        doll = msg((1, doll))
    assert "deeper than 100" in bad_request(body("v1", "Russian", doll))


@pytest.mark.parametrize(("api_version", "kind"),
                         [("v1", "PersistentVolumeClaim"), ("apps/v1beta1", "Deployment"), ("", "")])
def test_kinds_nodeos_does_not_decode_are_unsupported_media(api_version, kind):
    with pytest.raises(ApiError) as caught:
        decode_object(body(api_version, kind, b""))
    assert caught.value.code == 415
    assert "send JSON" in caught.value.message


# -- the tables themselves -----------------------------------------------------------------------


def test_every_served_kind_has_a_message():
    for resource in RESOURCES:
        assert OBJECTS[resource.kind] == resource.api_version
        assert resource.kind in MESSAGES


def test_tables_refer_only_to_messages_they_define():
    for name, table in MESSAGES.items():
        for number, field in table.items():
            assert number > 0, name
            if field.type in (MESSAGE, INLINE):
                assert field.message in MESSAGES, f"{name}.{field.name} -> {field.message}"
            if field.type == MAP:
                assert not field.repeated and field.message in ("string", "Quantity", "bytes"), \
                        f"{name}.{field.name}"
            assert isinstance(field, Field)


# -- fuzzing: whatever the bytes, the answer is an ApiError ------------------------------------

KINDS = sorted((api_version or "v1", kind) for kind, api_version in OBJECTS.items())


def wire_messages() -> st.SearchStrategy[bytes]:
    """Well-formed wire data with random numbers, types and nesting: it reaches deep into the tables."""
    scalar = st.one_of(st.integers(-(1 << 63), (1 << 64) - 1), st.binary(max_size=12),
                       st.sampled_from(["", "0", "25%", "app", "\u00e9"]))
    value = st.recursive(scalar, lambda inner: st.lists(st.tuples(st.integers(1, 40), inner), max_size=6)
                         .map(lambda pairs: msg(*pairs)), max_leaves=40)
    return st.lists(st.tuples(st.integers(1, 40), value), max_size=8).map(lambda pairs: msg(*pairs))


def decodes_or_refuses(data: bytes) -> None:
    try:
        decode_object(data)
    except ApiError as exc:
        assert exc.code in (400, 415)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_after_the_magic_only_ever_raise_api_errors(data):
    decodes_or_refuses(MAGIC + data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KINDS), st.binary(max_size=300))
def test_random_raw_objects_only_ever_raise_api_errors(kind, raw):
    decodes_or_refuses(body(*kind, raw))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KINDS), wire_messages())
def test_random_well_formed_messages_only_ever_raise_api_errors(kind, raw):
    decodes_or_refuses(body(*kind, raw))



def test_a_secret_s_data_arrives_base64_as_in_json():
    entry = msg((1, b"password"), (2, b"\x00hunter2"))
    obj = decode_object(body("v1", "Secret", msg((2, entry), (3, b"Opaque"))))
    assert obj["data"] == {"password": "AGh1bnRlcjI="}
    assert obj["type"] == "Opaque"
