"""The real node's decisions, without starting it: its configuration files, when it falls back to simulated
nodes, and what `make up` prints once Langflow runs on it."""

from __future__ import annotations

import json
import tomllib

import pytest

from localcluster import daemon, node
from localcluster.cluster import ClusterError
from releases import local_access


def test_containerd_keeps_to_its_own_directories_and_can_start_sandboxes_here(tmp_path):
    config = tomllib.loads(node.containerd_config(tmp_path / "node", tmp_path / "root"))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    # This machine refuses a lower oom_score_adj: without this runc fails every sandbox (platform.md).
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == node.PAUSE_IMAGE
    assert config["root"] == str(tmp_path / "root")
    runc = cri["containerd"]["runtimes"]["runc"]["options"]
    # Nothing under the host's /run/containerd or /var/run/netns: state, sockets and runc's root are ours.
    for path in (config["state"], config["grpc"]["address"], runc["Root"], cri["cni"]["conf_dir"]):
        assert path.startswith(str(tmp_path / "node")), path
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["stream_server_address"] == "127.0.0.1"
    assert runc["SystemdCgroup"] is False


def test_pods_get_addresses_apart_from_the_simulated_ones(tmp_path):
    plugins = node.cni_config(tmp_path)["plugins"]
    bridge = plugins[0]
    assert bridge["bridge"] == node.POD_BRIDGE
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.245.0.0/16", "gateway": "10.245.0.1"}]]
    assert bridge["ipam"]["dataDir"].startswith(str(tmp_path))
    assert not bridge["ipMasq"]  # one masquerade rule of ours (MASQ_CHAIN), not one chain per pod
    from localcluster.objects import POD_CIDR as SIMULATED
    assert not SIMULATED.startswith("10.245.")


def test_the_kubelet_listens_only_on_the_node_address_and_never_collects_an_image(tmp_path):
    config = node.kubelet_config(tmp_path, tmp_path / "ca.crt", (tmp_path / "s.crt", tmp_path / "s.key"), 10250, 10248)
    assert config["address"] == node.NODE_IP and config["healthzBindAddress"] == "127.0.0.1"
    assert config["readOnlyPort"] == 0 and config["authentication"]["anonymous"]["enabled"] is False
    assert config["imageGCHighThresholdPercent"] == 100  # nothing can be pulled again here
    assert config["cgroupRoot"] == f"/{node.CGROUP_ROOT}" and config["failCgroupV1"] is False
    assert config["clusterDNS"] == [node.CLUSTER_DNS]
    assert config["podLogsDir"].startswith(str(tmp_path))


def test_kube_proxy_leaves_the_hosts_loopback_and_conntrack_alone(tmp_path):
    config = node.kube_proxy_config(tmp_path, 1, 2)
    assert config["iptables"]["localhostNodePorts"] is False
    assert config["nodePortAddresses"] == [f"{node.NODE_IP}/32"]
    assert config["conntrack"]["maxPerCore"] == 0 and config["conntrack"]["min"] == 0
    assert config["clusterCIDR"] == node.POD_CIDR


def test_cluster_dns_is_where_the_programs_dns_rule_allows_it():
    objects = dict((obj["kind"], obj) for _, obj in node_objects())
    assert objects["Service"]["spec"]["clusterIP"] == node.CLUSTER_DNS
    assert objects["Service"]["metadata"]["namespace"] == "kube-system"
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["imagePullPolicy"] == "Never"


def node_objects():
    from localcluster.objects import coredns_objects
    return coredns_objects(node.CLUSTER_DNS, node.COREDNS_IMAGE)


def test_auto_falls_back_to_simulated_nodes_with_one_line_saying_why(monkeypatch, tmp_path):
    monkeypatch.setattr(node, "unavailable", lambda bin_dir: "not root: a real node needs root")
    real, notice = daemon.node_choice("auto", tmp_path)
    assert real is False
    assert notice.count("\n") == 0 and "not root" in notice and "simulated" in notice
    with pytest.raises(ClusterError, match="no real node: not root"):
        daemon.node_choice("real", tmp_path)
    assert daemon.node_choice("simulated", tmp_path) == (False, "")
    monkeypatch.setattr(node, "unavailable", lambda bin_dir: None)
    assert daemon.node_choice("auto", tmp_path) == (True, "")


def test_a_missing_node_program_names_the_command_that_builds_it(monkeypatch, tmp_path):
    monkeypatch.setattr(node.os, "geteuid", lambda: 0)
    reason = node.unavailable(tmp_path)
    assert "missing in" in reason and "containerd" in reason and "toolchain/build.sh" in reason


def test_make_up_says_where_langflow_answers_only_when_its_pods_run(tmp_path, monkeypatch):
    outputs = {"namespace": "langflow-dev", "service_name": "langflow",
               "base_url": "http://langflow.langflow-dev.svc.cluster.local:7860"}
    assert local_access.forwarded_service(outputs) == "langflow-dev/langflow:7860"
    assert "login is off" in local_access.sign_in_line(outputs, "dev")
    line = local_access.sign_in_line({**outputs, "superuser": {"name": "admin", "password": "x"}}, "prod")
    assert "admin" in line and "x" not in line.replace("stack output", "") and "--show-secrets" in line
    (tmp_path / "localcluster.json").write_text(json.dumps({"status": "running", "node": "simulated"}))
    assert not local_access.local_node(str(tmp_path))
    monkeypatch.setenv("LANGFLOW_LOCAL_CLUSTER_DIR", str(tmp_path))
    said = []
    assert local_access.announce(outputs, "dev", said.append) == 0 and said == []
    (tmp_path / "localcluster.json").write_text(json.dumps({"status": "running", "node": "real"}))
    monkeypatch.setenv("LANGFLOW_LOCAL_PORT", "http")
    assert local_access.announce(outputs, "dev", said.append) == 2
    assert said == ["LANGFLOW_LOCAL_PORT='http' is not a port number (1 to 65535)"]


def test_the_forwarder_refuses_a_port_another_program_holds(tmp_path):
    import socket
    from localcluster import forward
    (tmp_path / "localcluster.json").write_text(json.dumps({"status": "running", "node": "real"}))
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert forward.request(tmp_path, "ns/svc:80", port) == 1
    assert not (tmp_path / forward.REQUESTS).exists()
    assert forward.request(tmp_path, "not a service", port) == 2


def test_a_failure_names_each_crashed_container_and_why():
    def pod(name, **status):
        return {"metadata": {"name": name}, "status": status}
    pods = [
        pod("fine", containerStatuses=[{"name": "app", "state": {"running": {}}, "restartCount": 0}]),
        pod("looping", containerStatuses=[{"name": "app", "restartCount": 4,
                                           "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                                           "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}}}]),
        pod("job", initContainerStatuses=[{"name": "migrate", "restartCount": 0,
                                           "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]),
        pod("done", containerStatuses=[{"name": "app", "state": {"terminated": {"exitCode": 0}}}]),
        pod("no-image", containerStatuses=[{"name": "app", "restartCount": 0,
                                            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}}]),
    ]
    assert node.crashed_containers(pods) == [
        ("looping", "app", True, "back-off; exit code 3"),
        ("job", "migrate", True, "Error; exit code 1"),
        ("no-image", "app", False, "not found"),
    ]
