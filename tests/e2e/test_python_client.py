"""The official Python client (`kubernetes` on PyPI), unmodified, against nodeos."""

from __future__ import annotations

import threading
import uuid

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.e2e


@pytest.fixture
def api_client(daemon):
    configuration = client.Configuration()
    configuration.host = daemon.url
    with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture
def namespace(api_client):
    name = f"py-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api_client).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def deployment(name: str, replicas: int = 1) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="busybox:1.36")]),
            ),
        ),
    )


def test_create_read_patch_delete_deployment(api_client, namespace):
    apps = client.AppsV1Api(api_client)
    created = apps.create_namespaced_deployment(namespace, deployment("api", 2))
    assert created.metadata.uid and created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"
    read = apps.read_namespaced_deployment("api", namespace)
    assert read.metadata.resource_version == created.metadata.resource_version
    patched = apps.patch_namespaced_deployment("api", namespace, {"spec": {"replicas": 4}})
    assert patched.spec.replicas == 4 and patched.metadata.generation == 2
    scale = apps.read_namespaced_deployment_scale("api", namespace)
    assert scale.spec.replicas == 4 and scale.status.selector == "app=api"
    apps.delete_namespaced_deployment("api", namespace)
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment("api", namespace)
    assert err.value.status == 404


def test_list_with_selectors_and_paging(api_client, namespace):
    core = client.CoreV1Api(api_client)
    for i in range(7):
        labels = {"parity": "even" if i % 2 == 0 else "odd"}
        pod = client.V1Pod(metadata=client.V1ObjectMeta(name=f"p{i}", labels=labels),
                           spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]))
        core.create_namespaced_pod(namespace, pod)
    odd = core.list_namespaced_pod(namespace, label_selector="parity=odd")
    assert sorted(p.metadata.name for p in odd.items) == ["p1", "p3", "p5"]
    named = core.list_namespaced_pod(namespace, field_selector="metadata.name=p4")
    assert [p.metadata.name for p in named.items] == ["p4"]
    page = core.list_namespaced_pod(namespace, limit=3)
    names = [p.metadata.name for p in page.items]
    while page.metadata._continue:
        page = core.list_namespaced_pod(namespace, limit=3, _continue=page.metadata._continue)
        names += [p.metadata.name for p in page.items]
    assert names == [f"p{i}" for i in range(7)]


def test_watch_stream_sees_changes(api_client, namespace):
    core = client.CoreV1Api(api_client)
    start = core.list_namespaced_pod(namespace)
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def follow() -> None:
        for event in w.stream(core.list_namespaced_pod, namespace,
                              resource_version=start.metadata.resource_version, timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 3:
                w.stop()

    thread = threading.Thread(target=follow)
    thread.start()
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="w"),
                       spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]))
    core.create_namespaced_pod(namespace, pod)
    core.patch_namespaced_pod("w", namespace, {"metadata": {"labels": {"x": "y"}}})
    core.delete_namespaced_pod("w", namespace)
    thread.join(15)
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_invalid_object_is_422_with_causes(api_client, namespace):
    apps = client.AppsV1Api(api_client)
    bad = deployment("bad")
    bad.spec.selector = client.V1LabelSelector(match_labels={"app": "other"})
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment(namespace, bad)
    assert err.value.status == 422
    assert '"reason":"Invalid"' in err.value.body.replace(" ", "")
    assert "spec.template.metadata.labels" in err.value.body


def test_stale_update_is_conflict(api_client, namespace):
    core = client.CoreV1Api(api_client)
    svc = client.V1Service(metadata=client.V1ObjectMeta(name="s"),
                           spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)], selector={"a": "b"}))
    created = core.create_namespaced_service(namespace, svc)
    assert created.spec.cluster_ip.startswith("10.96.")
    created.metadata.labels = {"v": "1"}
    core.replace_namespaced_service("s", namespace, created)
    created.metadata.labels = {"v": "2"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_service("s", namespace, created)  # still the old resourceVersion
    assert err.value.status == 409
