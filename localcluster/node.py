"""A real node beside kwok's simulated ones: containerd, kubelet and kube-proxy on this machine.

Pods scheduled to it run as real containers (runc, from Debian's `containerd` and `runc` packages),
get an address on a bridge of ours (Debian's CNI plugins), reach Services through kube-proxy
(iptables) and names through CoreDNS (a pod in kube-system, as on a kubeadm cluster).

Whatever such a node changes on the host is host-wide: the bridges, the iptables chains, the cgroup
root, three sysctls. So one real node runs per host at a time (a host lock), what it changes is
recorded in HOST_STATE before it is changed, and every start first sweeps what a killed run left.
`stop()` leaves no process, mount, link, chain or cgroup behind (tests/integration/test_real_node.py
checks each).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from . import objects

if TYPE_CHECKING:  # pragma: no cover
    from .cluster import LocalCluster

NODE_NAME = "localcluster-node"
# The API server binds here instead of 127.0.0.1 when a real node runs: pods reach it through the
# `kubernetes` Service, which kube-proxy sends to this address. Both addresses sit on a bridge of
# ours with no ports (this kernel has no dummy links), so nothing outside the host sees them.
API_ADDRESS = "198.18.0.1"
NODE_IP = "198.18.0.2"
HOST_BRIDGE = "lc0"
POD_BRIDGE = "lcbr0"
POD_CIDR = "10.245.0.0/16"  # kwok's pods take 10.244.0.0/16
POD_GATEWAY = "10.245.0.1"
CLUSTER_DNS = "10.96.0.10"
CGROUP_ROOT = "localcluster"
MASQ_CHAIN = "LC-MASQ"
# Chains of kubelet, kube-proxy, the CNI plugins, kube-network-policies and ours.
CHAIN_PREFIXES = ("KUBE-", "CNI-", "KNP-", "LC-")
HOST_LOCK = Path("/run/localcluster-node.lock")
HOST_STATE = Path("/run/localcluster-node.json")
# ip_forward for pod-to-Service traffic, bridge-nf for Services and policies between pods of one
# bridge; the kubelet itself sets the other three (setupKernelTunables).
SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/bridge/bridge-nf-call-iptables": "1",
    "vm/overcommit_memory": None,
    "kernel/panic": None,
    "kernel/panic_on_oops": None,
}
NODE_BINARIES = ("containerd", "ctr", "kubelet", "kube-proxy", "kube-network-policies", "coredns", "pause")
# kube-network-policies (toolchain/knp/) keeps its rules in an nftables table of its own, which
# iptables-save does not show.
KNP_TABLE = ("inet", "kube-network-policies")
KNP_QUEUE = "100"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1"
COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.12.1"
CNI_BIN_DIR = Path("/usr/lib/cni")
RUNC = Path("/usr/sbin/runc")
# Images are big (Langflow 1.6.4 is 9 GiB unpacked, twice that while it is imported).
MIN_FREE_BYTES = 4 * 2**30


class NodeError(RuntimeError):
    """The real node could not start; the message says what and how to fix it."""


def cache_dir() -> Path:
    return Path(os.environ.get("LANGFLOW_TOOLCHAIN_CACHE")
                or Path.home() / ".cache" / "langflow-pulumi-toolchain")


def containerd_root() -> Path:
    """Persistent, so that imported images survive: a warm start imports nothing."""
    return cache_dir() / "containerd-root"


def unavailable(bin_dir: Path) -> str | None:
    """Why a real node cannot start on this machine (one line with the fix), or None."""
    if os.geteuid() != 0:
        return "not root: a real node needs root (containers, bridges, iptables, cgroups)"
    missing = [b for b in NODE_BINARIES if not os.access(bin_dir / b, os.X_OK)]
    if missing:
        return f"missing in {bin_dir}: {', '.join(missing)} (build them: bash toolchain/build.sh)"
    for tool, package in ((RUNC, "runc"), (CNI_BIN_DIR / "bridge", "containernetworking-plugins"),
                          (Path("/usr/sbin/iptables"), "iptables"), (Path("/usr/sbin/nft"), "nftables")):
        if not os.access(tool, os.X_OK):
            return f"{tool} is missing (apt-get install {package})"
    for controller in ("cpu", "cpuacct", "cpuset", "memory", "pids"):
        if not Path("/sys/fs/cgroup", controller).is_dir():
            return f"cgroup controller {controller} is not mounted under /sys/fs/cgroup"
    if not Path("/proc/sys/net/bridge").is_dir():
        return "bridge netfilter is missing (modprobe br_netfilter)"
    root = containerd_root()
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        return (f"only {free / 2**30:.1f} GiB free under {root}; the node's images need at least "
                f"{MIN_FREE_BYTES / 2**30:.0f} GiB (free some, or set LANGFLOW_TOOLCHAIN_CACHE elsewhere)")
    return None


# -- host-wide changes ---------------------------------------------------------------------------
def _run(argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key


def _read_sysctls() -> dict[str, str]:
    found = {}
    for key in SYSCTLS:
        try:
            found[key] = _sysctl_path(key).read_text().strip()
        except OSError:
            pass
    return found


def _write_sysctl(key: str, value: str) -> None:
    try:
        _sysctl_path(key).write_text(value)
    except OSError:
        pass


def _chains(family: str, table: str) -> tuple[list[str], list[str]]:
    """(our chains, rules of any chain that jump to one of them) in one iptables table."""
    save = _run([f"{family}-save", "-t", table], check=False).stdout
    ours, jumps = [], []
    for line in save.splitlines():
        if line.startswith(":") and line[1:].startswith(CHAIN_PREFIXES):
            ours.append(line[1:].split()[0])
        elif line.startswith("-A "):
            words = shlex.split(line)
            target = words[words.index("-j") + 1] if "-j" in words else ""
            if target.startswith(CHAIN_PREFIXES) and not words[1].startswith(CHAIN_PREFIXES):
                jumps.append(line)
    return ours, jumps


def sweep_iptables() -> None:
    """Every chain of ours (CHAIN_PREFIXES) and every jump to one, in both families."""
    for family in ("iptables", "ip6tables"):
        if not shutil.which(family):
            continue
        for table in ("filter", "nat", "mangle", "raw"):
            ours, jumps = _chains(family, table)
            for rule in jumps:
                _run([family, "-w", "-t", table, "-D", *shlex.split(rule)[1:]], check=False)
            for chain in ours:
                _run([family, "-w", "-t", table, "-F", chain], check=False)
            for chain in ours:
                _run([family, "-w", "-t", table, "-X", chain], check=False)


def _knp_table() -> bool:
    listed = _run(["nft", "list", "tables"], check=False).stdout.split("\n") if shutil.which("nft") else []
    return f"table {' '.join(KNP_TABLE)}" in listed


def leftover_chains() -> list[str]:
    found = ["nft/" + "/".join(KNP_TABLE)] if _knp_table() else []
    for family in ("iptables", "ip6tables"):
        if shutil.which(family):
            for table in ("filter", "nat", "mangle", "raw"):
                found += [f"{family}/{table}/{c}" for c in _chains(family, table)[0]]
    return found


def _links() -> set[str]:
    return {p.name for p in Path("/sys/class/net").iterdir()}


def leftover_links() -> list[str]:
    """Our bridges, and the host ends of pod veths still attached to the pod bridge."""
    found = [name for name in (HOST_BRIDGE, POD_BRIDGE) if name in _links()]
    brif = Path("/sys/class/net", POD_BRIDGE, "brif")
    if brif.is_dir():
        found += [p.name for p in brif.iterdir()]
    return found


def _cgroup_dirs() -> list[Path]:
    return [d / CGROUP_ROOT for d in Path("/sys/fs/cgroup").iterdir() if (d / CGROUP_ROOT).is_dir()]


def leftover_cgroups() -> list[str]:
    return [str(d) for d in _cgroup_dirs()]


def _kill_cgroups() -> None:
    """Kill whatever still runs in our cgroup root (a container whose shim was killed), then rmdir it."""
    for _ in range(50):
        pids = set()
        for root in _cgroup_dirs():
            for procs in root.rglob("cgroup.procs"):
                try:
                    pids |= {int(p) for p in procs.read_text().split()}
                except (OSError, ValueError):
                    pass
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    for root in _cgroup_dirs():
        for sub in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                sub.rmdir()
            except OSError:
                pass
        try:
            root.rmdir()
        except OSError:
            pass


def _own_cpu_shares() -> str | None:
    """cpu.shares of this process's cpu cgroup (v1), when it is not the root one."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "cpu" in controllers.split(",") and path != "/":
                return (Path("/sys/fs/cgroup/cpu") / path.lstrip("/") / "cpu.shares").read_text().strip()
    except (OSError, ValueError):
        pass
    return None


def mounts_under(prefixes: list[Path]) -> list[str]:
    """Mount points at or below any of `prefixes`, deepest first (the order to unmount them in)."""
    roots = [str(Path(p).resolve()) for p in prefixes]
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # The kernel writes a space, tab, newline or backslash in a path as a 3-digit octal escape.
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if any(point == root or point.startswith(f"{root}/") for root in roots):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _unmount(prefixes: list[Path]) -> None:
    for _ in range(5):
        points = mounts_under(prefixes)
        if not points:
            return
        for point in points:
            if _run(["umount", point], check=False).returncode != 0:
                _run(["umount", "-l", point], check=False)


def _processes(match: Callable[[list[str]], bool]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if argv and match(argv):
            found.append(int(entry.name))
    return found


def _is_ours(workdir: str) -> Callable[[list[str]], bool]:
    """containerd's shims (`-address DIR/...`) and the node's processes, by their command line."""
    return lambda argv: any(workdir in a for a in argv) and Path(argv[0]).name.startswith(
        ("containerd", "kubelet", "kube-proxy", "kube-network-policies"))


def leftover_processes(workdir: Path) -> list[int]:
    return _processes(_is_ours(str(workdir)))


def leftovers(workdir: Path) -> dict[str, list]:
    """What a stopped node must not have left behind (empty lists when clean)."""
    return {"processes": leftover_processes(workdir), "mounts": mounts_under([workdir]),
            "links": leftover_links(), "chains": leftover_chains(), "cgroups": leftover_cgroups()}


def sweep_host(workdir: Path | None = None) -> None:
    """Undo every host-wide change a real node makes (the one running, or one a killed run left)."""
    state = _read_state()
    dirs = [Path(d) for d in {str(workdir) if workdir else None, state.get("workdir")} if d]
    for d in dirs:
        pids = leftover_processes(d)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _kill_cgroups()
    _unmount(dirs)
    for name in (POD_BRIDGE, HOST_BRIDGE):
        if name in _links():
            _run(["ip", "link", "del", name], check=False)
    sweep_iptables()
    if _knp_table():  # a table left by a killed run would queue packets nobody reads any more
        _run(["nft", "delete", "table", *KNP_TABLE], check=False)
    for key, value in (state.get("sysctls") or {}).items():
        _write_sysctl(key, value)
    for d in dirs:
        logs = Path("/var/log/containers")
        if logs.is_dir():
            for link in logs.iterdir():
                if link.is_symlink() and str(d) in os.readlink(link):
                    link.unlink(missing_ok=True)
    for cached in Path("/var/lib/cni/results").glob("localcluster-*"):
        cached.unlink(missing_ok=True)
    HOST_STATE.unlink(missing_ok=True)


def _read_state() -> dict:
    try:
        return json.loads(HOST_STATE.read_text())
    except (OSError, ValueError):
        return {}


# -- configuration files ------------------------------------------------------------------------------
def containerd_config(workdir: Path, root: Path) -> str:
    state = workdir / "containerd" / "state"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{workdir / 'containerd' / 'containerd.sock'}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{workdir / 'containerd' / 'opt'}"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # This machine lets no process lower its oom_score_adj; without this runc fails every sandbox
  # ("can't get final child's PID from pipe: EOF"; platform.md).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_unprivileged_ports = true
[{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
    BinaryName = "{RUNC}"
    Root = "{state / 'runc'}"
    SystemdCgroup = false
[{cri}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{workdir / 'cni' / 'net.d'}"
    max_conf_num = 1
"""


def cni_config(workdir: Path) -> dict:
    return {
        "cniVersion": "0.4.0", "name": "localcluster",
        "plugins": [
            {"type": "bridge", "bridge": POD_BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": str(workdir / "cni" / "ipam"),
                      "ranges": [[{"subnet": POD_CIDR, "gateway": POD_GATEWAY}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(workdir: Path, ca_file: Path, serving: tuple[Path, Path], port: int, healthz_port: int) -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "address": NODE_IP, "port": port, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": healthz_port,
        "tlsCertFile": str(serving[0]), "tlsPrivateKeyFile": str(serving[1]),
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(ca_file)}},
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{workdir / 'containerd' / 'containerd.sock'}",
        "cgroupDriver": "cgroupfs", "cgroupRoot": f"/{CGROUP_ROOT}",
        "failCgroupV1": False, "failSwapOn": False,
        "clusterDomain": "cluster.local", "clusterDNS": [CLUSTER_DNS],
        "podLogsDir": str(workdir / "pod-logs"),
        "volumePluginDir": str(workdir / "kubelet" / "volume-plugins"),
        # Nothing can be pulled again here: never collect an image.
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "rotateCertificates": False, "serverTLSBootstrap": False,
        "serializeImagePulls": False,
        "shutdownGracePeriod": "0s",
        "allowedUnsafeSysctls": [],
    }


def kube_proxy_config(workdir: Path, healthz_port: int, metrics_port: int) -> dict:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(workdir / "run" / "kube-proxy.kubeconfig")},
        "hostnameOverride": NODE_NAME, "bindAddress": NODE_IP,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}", "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "clusterCIDR": POD_CIDR, "nodePortAddresses": [f"{NODE_IP}/32"],
        # Else it sets route_localnet=1 for NodePorts on 127.0.0.1.
        "iptables": {"localhostNodePorts": False},
        # Zeros leave the host's conntrack sysctls as they are.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "oomScoreAdj": 0,
    }


# -- the node -------------------------------------------------------------------------------------------
class RealNode:
    """containerd + kubelet + kube-proxy (+ CoreDNS as a pod) for one LocalCluster."""

    def __init__(self, cluster: "LocalCluster"):
        self.cluster = cluster
        self.workdir = cluster.workdir / "node"
        self.socket = self.workdir / "containerd" / "containerd.sock"
        self.ctr = str(cluster.bin_dir / "ctr")
        self._lock_fd: int | None = None
        self._host_changed = False
        self.image_seconds: dict[str, float] = {}
        self.image_errors: dict[str, str] = {}
        self._images_stop = threading.Event()
        self._images_thread: threading.Thread | None = None

    # -- start --------------------------------------------------------------------------------------
    def prepare_host(self, timeout: float) -> None:
        """Before the API server starts: it binds to API_ADDRESS, which this puts on HOST_BRIDGE."""
        reason = unavailable(self.cluster.bin_dir)
        if reason:
            raise NodeError(reason)
        # The test streams run side by side and each may start a real node: they wait their turn.
        self._take_host_lock(float(os.environ.get("LOCALCLUSTER_NODE_LOCK_WAIT") or timeout))
        sweep_host()  # what a killed run left
        HOST_STATE.write_text(json.dumps({"workdir": str(self.workdir), "pid": os.getpid(),
                                          "sysctls": _read_sysctls()}))
        self._host_changed = True
        shutil.rmtree(self.workdir, ignore_errors=True)
        for sub in ("containerd", "cni/net.d", "kubelet/pki", "pod-logs", "volumes"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        for key, value in SYSCTLS.items():
            if value is not None:
                _write_sysctl(key, value)
        _run(["ip", "link", "add", HOST_BRIDGE, "type", "bridge"])
        for address in (API_ADDRESS, NODE_IP):
            _run(["ip", "addr", "add", f"{address}/32", "dev", HOST_BRIDGE])
        _run(["ip", "link", "set", HOST_BRIDGE, "up"])
        self._make_cgroup_root()
        _run(["iptables", "-w", "-t", "nat", "-N", MASQ_CHAIN])
        _run(["iptables", "-w", "-t", "nat", "-A", MASQ_CHAIN, "-s", POD_CIDR, "!", "-d", POD_CIDR,
              "-j", "MASQUERADE"])
        _run(["iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-j", MASQ_CHAIN])

    def _take_host_lock(self, timeout: float) -> None:
        fd = os.open(HOST_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    owner = _read_state().get("workdir", "?")
                    raise NodeError(f"another real node runs on this host ({owner}); stop it first "
                                    "(make cluster-down)") from None
                time.sleep(0.5)
        self._lock_fd = fd

    @staticmethod
    def _make_cgroup_root() -> None:
        for controller in ("cpu", "cpuacct", "cpuset", "memory", "pids", "systemd", "freezer", "devices",
                           "blkio", "hugetlb", "net_cls", "net_prio", "perf_event"):
            base = Path("/sys/fs/cgroup", controller)
            if not base.is_dir():
                continue
            (base / CGROUP_ROOT).mkdir(exist_ok=True)
            if controller == "cpuset":  # a new cpuset has no CPUs or memory nodes until given some
                for name in ("cpuset.cpus", "cpuset.mems"):
                    (base / CGROUP_ROOT / name).write_text((base / name).read_text())
        # The pods get the CPU weight of whoever starts the node (make test runs the engine tests at a low
        # weight, so that they leave the real-Langflow tests' timing alone).
        shares = _own_cpu_shares()
        if shares:
            Path("/sys/fs/cgroup/cpu", CGROUP_ROOT, "cpu.shares").write_text(shares)

    def start(self, deadline: float) -> None:
        """After the control plane: containerd, the sandbox and DNS images, kubelet, kube-proxy, CoreDNS."""
        c = self.cluster
        (self.workdir / "containerd" / "config.toml").write_text(
            containerd_config(self.workdir, containerd_root()))
        (self.workdir / "cni" / "net.d" / "10-localcluster.conflist").write_text(
            json.dumps(cni_config(self.workdir), indent=2))
        c._spawn("containerd", [str(c.bin_dir / "containerd"), "--config",
                               str(self.workdir / "containerd" / "config.toml")])
        c._wait("containerd to answer", self._containerd_up, "containerd", deadline)
        self._forget_old_containers()
        try:
            self.import_images([PAUSE_IMAGE, COREDNS_IMAGE])
        except Exception as exc:
            raise NodeError(f"could not import the node's images: {exc}") from exc
        self._images_thread = threading.Thread(target=self._load_images, daemon=True, name="node-images")
        self._images_thread.start()
        self._start_kubelet()
        self._start_kube_proxy()
        self._start_network_policies()
        c._wait(f"node {NODE_NAME} to be Ready (kubelet)", self._node_ready, "kubelet", deadline)
        for path, obj in objects.coredns_objects(CLUSTER_DNS, COREDNS_IMAGE):
            c._client.ensure(path, obj)
        try:
            c._wait("CoreDNS to be Ready", self._dns_ready, "kubelet", deadline)
        except Exception as exc:
            raise NodeError(f"{exc}\n{crash_report(c._client, 'kube-system')}") from None

    def import_images(self, refs: list[str]) -> None:
        """Build (cached) and import images into the node's containerd; a present image costs nothing."""
        from .images import ensure_images  # the image builders are only needed with a real node
        self.image_seconds.update(ensure_images(refs, socket=self.socket, ctr=Path(self.ctr),
                                                bin_dir=self.cluster.bin_dir))

    def _load_images(self) -> None:
        """Images on demand: no registry is reachable, so what a pod on the node names is built here.

        The kubelet retries its pull with back-off and finds the image once it is imported. One that
        cannot be built gets a Warning event on the pod saying why (and the supervisor's log)."""
        from .images import ImageError
        done: set[str] = {PAUSE_IMAGE, COREDNS_IMAGE}
        client = self.cluster.client()
        while not self._images_stop.wait(1.0):
            try:
                pods = client.items(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{NODE_NAME}")
            except Exception:
                continue  # the API server may be restarting
            for pod in pods:
                spec = pod.get("spec") or {}
                for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                    ref = container.get("image", "")
                    if ref in done or self._images_stop.is_set():
                        continue
                    try:
                        self.import_images([ref])
                        done.add(ref)
                        self.image_errors.pop(ref, None)
                    except (ImageError, OSError, subprocess.SubprocessError) as exc:
                        if self.image_errors.get(ref) != str(exc):
                            self.image_errors[ref] = str(exc)
                            self.cluster.log.warning("image %s: %s", ref, exc)
                            self._event(client, pod, f"localcluster cannot build image {ref}: {exc}")

    @staticmethod
    def _event(client, pod: dict, message: str) -> None:
        meta = pod["metadata"]
        try:
            client.create(f"/api/v1/namespaces/{meta['namespace']}/events", {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                                   "uid": meta["uid"], "apiVersion": "v1"},
                "reason": "ImageBuildFailed", "message": message[:1000], "type": "Warning",
                "source": {"component": "localcluster-images"}})
        except Exception:
            pass

    def _ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run([self.ctr, "-a", str(self.socket), "-n", "k8s.io", *args], check=check, timeout=120)

    def _containerd_up(self) -> bool:
        return self.socket.exists() and self._ctr("version", check=False).returncode == 0

    def _forget_old_containers(self) -> None:
        """The root is kept for its images; a killed run's containers in it are gone for good."""
        listed = self._ctr("containers", "ls", "-q", check=False).stdout.split()
        if listed:
            self._ctr("containers", "rm", *listed, check=False)

    def _start_kubelet(self) -> None:
        c = self.cluster
        pki = c.pki
        client = pki.leaf("kubelet", f"system:node:{NODE_NAME}", organizations=("system:nodes",), client=True)
        serving = pki.leaf("kubelet-serving", NODE_NAME, server=True, ips=(NODE_IP,), dns=(NODE_NAME,))
        pki.leaf("kube-proxy", "system:kube-proxy", client=True)
        del client
        run = c.workdir / "run"
        for user in ("kubelet", "kube-proxy"):
            (run / f"{user}.kubeconfig").write_text(c._kubeconfig_text(user, embed=False))
        ports = {name: c._new_port() for name in ("kubelet", "kubelet-healthz", "kube-proxy-healthz",
                                                  "kube-proxy-metrics")}
        c.ports.update(ports)
        config = self.workdir / "kubelet.yaml"
        config.write_text(json.dumps(kubelet_config(self.workdir, pki.ca_cert, serving, ports["kubelet"],
                                                    ports["kubelet-healthz"]), indent=2))
        c._spawn("kubelet", [
            str(c.bin_dir / "kubelet"),
            f"--config={config}",
            f"--kubeconfig={run / 'kubelet.kubeconfig'}",
            f"--root-dir={self.workdir / 'kubelet'}",
            f"--cert-dir={self.workdir / 'kubelet' / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            "--v=1",
        ])

    def _start_kube_proxy(self) -> None:
        c = self.cluster
        config = self.workdir / "kube-proxy.yaml"
        config.write_text(json.dumps(kube_proxy_config(c.workdir, c.ports["kube-proxy-healthz"],
                                                       c.ports["kube-proxy-metrics"]), indent=2))
        c._spawn("kube-proxy", [str(c.bin_dir / "kube-proxy"), f"--config={config}", "--v=1"])

    def _start_network_policies(self) -> None:
        """NetworkPolicies enforced for real: kube-network-policies, patched to run here (toolchain/knp/)."""
        c = self.cluster
        user = "kube-network-policies"
        c.pki.leaf(user, user, client=True)
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        c._client.ensure(f"{rbac}/clusterroles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": user},
            "rules": [{"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["list", "watch"]},
                      {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
                       "verbs": ["list", "watch"]}]})
        c._client.ensure(f"{rbac}/clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": user},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user},
            "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]})
        kubeconfig = self.workdir / f"{user}.kubeconfig"
        kubeconfig.write_text(c._kubeconfig_text(user, embed=False))
        c.ports["kube-network-policies-metrics"] = c._new_port()
        c._spawn(user, [
            str(c.bin_dir / user), f"--kubeconfig={kubeconfig}", f"--hostname-override={NODE_NAME}",
            f"--nfqueue-id={KNP_QUEUE}", f"--metrics-bind-address=127.0.0.1:{c.ports['kube-network-policies-metrics']}",
            # containerd 1.6 has no NRI; the kernel bug 1766 works around is fixed in 6.12 and later.
            "--disable-nri", "--netfilter-bug-1766-fix=false", "-v=1"])

    def _node_ready(self) -> bool:
        node = self.cluster._client.get_or_none(f"/api/v1/nodes/{NODE_NAME}")
        conds = {x["type"]: x["status"] for x in ((node or {}).get("status") or {}).get("conditions", [])}
        return conds.get("Ready") == "True"

    def _dns_ready(self) -> bool:
        dep = self.cluster._client.get("/apis/apps/v1/namespaces/kube-system/deployments/coredns")
        return (dep.get("status") or {}).get("readyReplicas", 0) >= 1

    # -- stop ------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Containers get SIGTERM (a database shuts down cleanly), then everything goes."""
        c = self.cluster
        self._images_stop.set()
        if self._images_thread is not None:
            self._images_thread.join(5)
        node_procs = [c.components[n] for n in ("kube-network-policies", "kube-proxy", "kubelet")
                      if n in c.components]
        c._terminate(node_procs, 10.0)
        if "containerd" in c.components and c.components["containerd"].running():
            self._stop_containers()
            c._terminate([c.components["containerd"]], 10.0)
        if self._host_changed:
            sweep_host(self.workdir)
            self._host_changed = False
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _stop_containers(self, grace: float = 10.0) -> None:
        tasks = [line.split()[0] for line in self._ctr("tasks", "ls", check=False).stdout.splitlines()[1:]
                 if line.split()[2:3] == ["RUNNING"]]
        for task in tasks:
            self._ctr("tasks", "kill", task, check=False)
        deadline = time.monotonic() + grace
        while tasks and time.monotonic() < deadline:
            listed = self._ctr("tasks", "ls", check=False).stdout
            tasks = [t for t in tasks if f"{t} " in listed and "RUNNING" in listed.split(t, 1)[1].split("\n")[0]]
            time.sleep(0.2)
        for task in tasks:
            self._ctr("tasks", "kill", "-s", "SIGKILL", task, check=False)
        listed = self._ctr("tasks", "ls", "-q", check=False).stdout.split()
        for task in listed:
            self._ctr("tasks", "delete", "-f", task, check=False)
        self._forget_old_containers()


# -- what a failure shows ----------------------------------------------------------------------------------
CRASH_REASONS = ("CrashLoopBackOff", "Error", "CreateContainerError", "CreateContainerConfigError",
                 "RunContainerError", "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "OOMKilled")


def crashed_containers(pods: list[dict]) -> list[tuple[str, str, bool, str]]:
    """(pod, container, whether it ran before, why) for every container that failed or keeps failing."""
    found = []
    for pod in pods:
        status = pod.get("status") or {}
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            state, last = cs.get("state") or {}, cs.get("lastState") or {}
            waiting, ended = state.get("waiting") or {}, state.get("terminated") or last.get("terminated") or {}
            reason = waiting.get("reason") or ended.get("reason") or ""
            if waiting.get("reason") in CRASH_REASONS or (ended and ended.get("exitCode", 0) != 0):
                why = waiting.get("message") or reason
                if ended and ended.get("exitCode", 0) != 0:
                    why = f"{why}; exit code {ended['exitCode']}" if why else f"exit code {ended['exitCode']}"
                found.append((pod["metadata"]["name"], cs["name"], bool(cs.get("restartCount") or
                                                                        state.get("terminated")), why))
    return found


def crash_report(client, namespace: str, lines: int = 20) -> str:
    """The last log lines of every container of `namespace` that crashed, for a failure message."""
    try:
        pods = client.items(f"/api/v1/namespaces/{namespace}/pods")
    except Exception as exc:  # the report must never hide the failure it explains
        return f"(no container logs: {exc})"
    parts = []
    for pod, container, ran, why in crashed_containers(pods):
        text = ""
        if ran:
            for previous in ("false", "true"):
                try:
                    text = client.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log?container="
                                          f"{container}&tailLines={lines}&previous={previous}", raw=True)
                except Exception:
                    text = ""
                if text.strip():
                    break
        parts.append(f"--- {namespace}/{pod} container {container}: {why}\n{text.rstrip() or '(no log lines)'}")
    return "\n".join(parts)
