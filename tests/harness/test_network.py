"""Who may talk to whom in the cluster, and what the Ingress lets through.

The network policies of the kustomize build are evaluated as Kubernetes defines them (a pod selected by
a policy of a type is isolated for that direction; a connection needs the sender's egress and the
receiver's ingress allowed) over the pods of the stack and a few outsiders: the ingress controller, the
cluster DNS, KEDA's operator, a pod of another namespace, and an address on the internet. The whole
matrix of the flow is asserted, allowed and denied. Enforcing them takes a network plugin that does, as
the users' CI runs (.github/workflows/ci.yml: minikube with Calico, the converter refused the internet).
"""

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness.k8s_stack import APP_SERVICES, BACKING_SERVICES, build, named, pod_spec, stack_copy

NAMESPACE = "mp3converter"
INTERNET = "93.184.215.14"


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict = field(hash=False)
    ip: str = "10.244.0.10"
    ports: dict = field(default_factory=dict, hash=False)  # named container ports


OUTSIDERS = {
    "ingress-nginx": Pod("ingress-nginx", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}, "10.244.1.2"),
    "kube-dns": Pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, "10.244.1.3"),
    "keda": Pod("keda", "keda", {"app": "keda-operator"}, "10.244.1.4"),
    "stranger": Pod("stranger", "default", {"app.kubernetes.io/name": "gateway"}, "10.244.1.5"),
}
NAMESPACE_LABELS = {ns: {"kubernetes.io/metadata.name": ns}
                    for ns in (NAMESPACE, "ingress-nginx", "kube-system", "keda", "default")}


def pods_of(objects) -> dict[str, Pod]:
    pods = {}
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            ports = {p["name"]: p["containerPort"] for c in pod_spec(obj)["containers"] for p in c.get("ports", [])
                     if "name" in p}
            labels = obj["spec"]["template"]["metadata"]["labels"]
            pods[obj["metadata"]["name"]] = Pod(obj["metadata"]["name"], NAMESPACE, labels, ports=ports)
    return pods


def selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, f"the evaluator knows matchLabels only: {selector}"
    return selector.get("matchLabels", {}).items() <= labels.items()


def peer_matches(peer: dict, policy_namespace: str, source) -> bool:
    """Does a NetworkPolicyPeer match `source` (a Pod, or an IP address outside the cluster)?"""
    if "ipBlock" in peer:
        # Whether an ipBlock also matches pods' addresses is left to the network plugin; Calico's does
        # (it matches any address), so a pod is matched by its IP too.
        network = ipaddress.ip_network(peer["ipBlock"]["cidr"])
        excepted = [ipaddress.ip_network(cidr) for cidr in peer["ipBlock"].get("except", [])]
        address = ipaddress.ip_address(source.ip if isinstance(source, Pod) else source)
        return address in network and not any(address in net for net in excepted)
    if not isinstance(source, Pod):
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], NAMESPACE_LABELS[source.namespace]):
            return False
    elif source.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector", {}), source.labels)


def port_matches(ports: list | None, port: int, protocol: str, target) -> bool:
    if not ports:
        return True
    for entry in ports:
        wanted = entry.get("port")
        if isinstance(wanted, str):
            wanted = target.ports.get(wanted) if isinstance(target, Pod) else None
        if entry.get("protocol", "TCP") == protocol and (wanted is None or wanted == port):
            return True
    return False


class Policies:
    def __init__(self, objects):
        self.policies = [obj for obj in objects if obj["kind"] == "NetworkPolicy"]

    def _of(self, pod: Pod, direction: str) -> list:
        return [p for p in self.policies
                if p["metadata"].get("namespace") == pod.namespace and direction in p["spec"].get("policyTypes", [])
                and selects(p["spec"]["podSelector"], pod.labels)]

    def _admits(self, pod: Pod, direction: str, peer, port: int, protocol: str) -> bool:
        """Does `pod` let `peer` in (Ingress) or out to `peer` (Egress), on that port?"""
        policies = self._of(pod, direction)
        if not policies:
            return True
        rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        target = pod if direction == "Ingress" else peer
        return any(
            port_matches(rule.get("ports"), port, protocol, target)
            and (not rule.get(peers_key) or any(peer_matches(p, pod.namespace, peer) for p in rule[peers_key]))
            for policy in policies for rule in policy["spec"].get(rules_key, [])
        )

    def allowed(self, source, target, port: int, protocol: str = "TCP") -> bool:
        egress = self._admits(source, "Egress", target, port, protocol) if isinstance(source, Pod) else True
        ingress = self._admits(target, "Ingress", source, port, protocol) if isinstance(target, Pod) else True
        return egress and ingress


@pytest.fixture(scope="module")
def stack(tmp_path_factory, make_env) -> list[dict]:
    return build(stack_copy(tmp_path_factory.mktemp("network") / "repo", make_env()))


@pytest.fixture(scope="module")
def with_keda(tmp_path_factory, make_env) -> list[dict]:
    root = stack_copy(tmp_path_factory.mktemp("network-keda") / "repo", make_env())
    return build(root) + build(root / "manifests/overlays/keda-autoscale")


@pytest.fixture(scope="module")
def network(stack):
    pods = pods_of(stack)
    assert set(pods) == set(APP_SERVICES) | set(BACKING_SERVICES)
    return Policies(stack), {**pods, **OUTSIDERS}


# (from, to, port): the flow of README's diagram, and nothing else.
ALLOWED = {
    ("ingress-nginx", "gateway", 8080),
    ("gateway", "auth", 5000),
    ("gateway", "mongodb", 27017),
    ("gateway", "rabbitmq", 5672),
    ("auth", "mysql", 3306),
    ("converter", "mongodb", 27017),
    ("converter", "rabbitmq", 5672),
    ("notification", "mongodb", 27017),
    ("notification", "rabbitmq", 5672),
}
PORTS = {"gateway": 8080, "auth": 5000, "mysql": 3306, "mongodb": 27017, "rabbitmq": 5672}


def test_every_pod_starts_from_deny_all_both_ways(stack):
    policies = Policies(stack)
    for pod in pods_of(stack).values():
        assert policies._of(pod, "Ingress") and policies._of(pod, "Egress"), pod.name
    default = named(stack, "NetworkPolicy")["default-deny"]["spec"]
    assert default == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_exactly_the_connections_of_the_flow_are_allowed(network):
    policies, pods = network
    sources = [*APP_SERVICES, *BACKING_SERVICES, "ingress-nginx", "stranger", "keda"]
    for source in sources:
        for target, port in PORTS.items():
            expected = (source, target, port) in ALLOWED
            assert policies.allowed(pods[source], pods[target], port) is expected, (source, target, port)


def test_the_management_ui_and_other_ports_are_closed_to_everyone(network):
    policies, pods = network
    for source in [*APP_SERVICES, "ingress-nginx", "stranger"]:
        assert not policies.allowed(pods[source], pods["rabbitmq"], 15672), source
        assert not policies.allowed(pods[source], pods["rabbitmq"], 25672), source  # Erlang distribution


def test_every_pod_resolves_names_through_the_cluster_dns_only(network):
    policies, pods = network
    for name in [*APP_SERVICES, *BACKING_SERVICES]:
        for protocol in ("UDP", "TCP"):
            assert policies.allowed(pods[name], pods["kube-dns"], 53, protocol), name
        assert not policies.allowed(pods[name], "8.8.8.8", 53, "UDP"), name


@pytest.mark.parametrize("port", [80, 443, 53, 25, 587])
def test_the_converter_never_reaches_the_internet(network, port):
    policies, pods = network
    assert not policies.allowed(pods["converter"], INTERNET, port)


def test_only_notification_reaches_out_and_only_to_mail_servers(network):
    policies, pods = network
    for name in [*APP_SERVICES, *BACKING_SERVICES]:
        for port in (80, 443):
            assert not policies.allowed(pods[name], INTERNET, port), (name, port)
        smtp = {port for port in (25, 465, 587) if policies.allowed(pods[name], INTERNET, port)}
        assert smtp == ({25, 465, 587} if name == "notification" else set()), name


# Where clusters put their pods and Services: kubeadm's and minikube's defaults, k3s's, GKE's, EKS's
# (its VPC), a cluster on a home network, carrier-grade NAT ranges some plugins use, and link-local.
IN_CLUSTER = {"pod (minikube)": "10.244.0.7", "Service (minikube)": "10.96.0.10", "pod (k3s)": "10.42.0.5",
              "Service (k3s)": "10.43.0.10", "pod (EKS)": "172.31.20.4", "node": "192.168.49.2",
              "pod (CGNAT)": "100.64.3.4", "metadata": "169.254.169.254"}


@pytest.mark.parametrize("port", [25, 465, 587])
def test_notification_reaches_mail_servers_outside_the_cluster_only(network, port):
    """Mail may go to the internet; the same ports on an address of the cluster (a pod of another
    namespace, a Service, a node) stay closed, so SMTP_HOST cannot be pointed at them."""
    policies, pods = network
    assert policies.allowed(pods["notification"], INTERNET, port)
    for what, address in IN_CLUSTER.items():
        assert not policies.allowed(pods["notification"], address, port), what
    assert not policies.allowed(pods["notification"], OUTSIDERS["stranger"], port)


def test_keda_may_read_the_queue_length_only_with_its_component(with_keda, network):
    policies, pods = network
    assert not policies.allowed(pods["keda"], pods["rabbitmq"], 5672)
    assert Policies(with_keda).allowed(pods["keda"], pods["rabbitmq"], 5672)
    assert not Policies(with_keda).allowed(pods["keda"], pods["mongodb"], 27017)


def test_the_evaluator_can_say_yes_and_no():
    """Without policies everything is open; one deny-all closes everything: the evaluator is not stuck."""
    pod = Pod("a", NAMESPACE, {"x": "y"})
    assert Policies([]).allowed(pod, INTERNET, 443)
    deny = [{"kind": "NetworkPolicy", "metadata": {"name": "d", "namespace": NAMESPACE},
             "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}]
    assert not Policies(deny).allowed(pod, INTERNET, 443)


# ---------------------------------------------------------------- the Ingress


def annotations(ingress: dict) -> dict:
    return {key.removeprefix("nginx.ingress.kubernetes.io/"): value
            for key, value in ingress["metadata"].get("annotations", {}).items()}


def test_the_ingress_limits_each_client_and_keeps_uploads_streaming(stack):
    """Slow or greedy clients meet nginx first: a bounded number of connections and requests per client
    address, bounded waits on the gateway; uploads stream (no buffering, the gateway's own 413)."""
    ingress = annotations(named(stack, "Ingress")["gateway"])
    assert ingress["proxy-request-buffering"] == "off" and ingress["proxy-body-size"] == "0"
    assert 1 <= int(ingress["limit-connections"]) <= 50
    assert 1 <= int(ingress["limit-rps"]) <= 50 and int(ingress["limit-burst-multiplier"]) >= 1
    assert int(ingress["proxy-connect-timeout"]) <= 10
    assert 0 < int(ingress["proxy-send-timeout"]) <= 300 and 0 < int(ingress["proxy-read-timeout"]) <= 300


def test_login_has_its_own_stricter_limits_and_a_small_buffered_body(stack):
    ingresses = named(stack, "Ingress")
    login = ingresses["gateway-login"]
    [rule] = login["spec"]["rules"]
    [path] = rule["http"]["paths"]
    assert rule["host"] == ingresses["gateway"]["spec"]["rules"][0]["host"]
    assert (path["path"], path["pathType"]) == ("/login", "Exact")
    assert path["backend"] == ingresses["gateway"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    limits = annotations(login)
    # The whole body is read by nginx before gunicorn sees the request: a trickled body holds no thread.
    assert limits["proxy-request-buffering"] == "on" and limits["proxy-body-size"].lower() in ("16k", "8k", "4k")
    per_minute = int(limits["limit-rpm"])
    assert per_minute <= 60 and per_minute < 60 * int(annotations(ingresses["gateway"])["limit-rps"])
    assert int(limits["proxy-read-timeout"]) <= 60


def test_every_annotation_is_one_ingress_nginx_knows(stack):
    """A misspelled annotation is silently ignored by the controller."""
    known = {
        "proxy-body-size", "proxy-request-buffering", "proxy-connect-timeout", "proxy-send-timeout",
        "proxy-read-timeout", "limit-connections", "limit-rps", "limit-rpm", "limit-burst-multiplier",
        "denylist-source-range",
    }  # fmt: skip
    for ingress in named(stack, "Ingress").values():
        for key in ingress["metadata"].get("annotations", {}):
            assert key.startswith("nginx.ingress.kubernetes.io/") and annotations(ingress).keys() <= known, key


def test_tls_is_documented_as_off_by_default_with_a_local_option():
    docs = (Path(__file__).resolve().parents[2] / "docs/kubernetes.md").read_text()
    assert "scripts/ingress-cert" in docs and "manifests/components/ingress-tls" in docs
    assert "plain HTTP" in docs
