#!/usr/bin/env python3
"""Real check that the patched kube-network-policies enforces NetworkPolicy.

No Kubernetes node is needed: a real control plane (localcluster, nodes=0)
holds the objects, and "pods" are network namespaces on a bridge:

    netns knpt-node      the node: bridge knptbr0, kube-network-policies runs
                         here (its nftables table, NFQUEUE socket and metrics
                         listener live in this namespace, not on the host)
    netns knpt-a/b/c     pods A, B, C: eth0 = veth into knptbr0,
                         10.245.250.11/.12/.13 (inside the pod CIDR 10.245.0.0/16)

The node namespace reaches the API server through a small TCP forwarder
(127.0.0.1:P in knpt-node -> the API server's 127.0.0.1 port on the host);
the API server's certificate is valid for 127.0.0.1.

Pod objects a/b/c (namespaces knpt-a/b/c labelled team=a/b/c) are bound to a
Node object knpt-node (not managed by kwok) and get status.podIP via the
status subresource. Then, with B listening on TCP 8080:

  1. no policy:                 A->B and C->B connect
  2. policy in knpt-b (ingress to app=b only from namespaces team=a):
                                A->B connects, C->B does not (dropped), B->A still connects
  3. policy deleted:            both connect again
  4. policy re-created, then kube-network-policies gets SIGTERM (policy still
     there): both connect, which shows the table is gone (its queue rules are
     not "bypass", so leftover rules would drop the SYNs)
  5. restarted, then SIGKILLed: the table stays and both are dropped;
     `kube-network-policies --cleanup` removes it and both connect

Everything created (namespaces, veths, bridge, processes, API objects, the
cluster) is removed in `finally`; the host's net.ipv4.ip_forward and
net.bridge.bridge-nf-call-iptables are checked unchanged (restored if not).
Listeners bind only inside the namespaces made here.

    sudo /work/main/.venv/bin/python toolchain/knp/selfcheck.py \
        [--bin BIN_DIR] [--knp PATH] [--workdir DIR] [-v]

BIN_DIR defaults to the last line of `bash toolchain/build.sh --check`; the
kube-network-policies binary to BIN_DIR/kube-network-policies, else the one
`bash toolchain/knp.sh` links into a scratch dir. Exit 0 = enforcement proven.

Why a node namespace instead of the host's: kube-network-policies always
names its table `inet kube-network-policies`, so a second instance in the
host namespace would replace (and on exit delete) the table of a real node's
instance running there. The kernel path is the same (br_netfilter -> inet
postrouting hook -> NFQUEUE); only the namespace differs.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

PREFIX = "knpt"
NODE_NS = f"{PREFIX}-node"
BRIDGE = f"{PREFIX}br0"
NODE_NAME = f"{PREFIX}-node"
SUBNET_PREFIX = "10.245.250."
PODS = {  # name: (ip, namespace label team=)
    "a": SUBNET_PREFIX + "11",
    "b": SUBNET_PREFIX + "12",
    "c": SUBNET_PREFIX + "13",
}
PORT = 8080
QUEUE_ID = 1077  # not 100: a real kube-network-policies may run on this host
CLONE_NEWNET = 0x40000000
CONNECT_TIMEOUT = 2.0

_libc = ctypes.CDLL(None, use_errno=True)


def log(msg: str) -> None:
    print(f"[selfcheck {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(*argv: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    if not quiet and p.returncode != 0:
        log(f"(ignored) {' '.join(argv)}: {p.stderr.strip()}")
    return p


def in_ns(ns: str, *argv: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    return run("ip", "netns", "exec", ns, *argv, check=check, quiet=quiet)


@contextlib.contextmanager
def netns(name: str):
    """Run the body with this thread in network namespace `name` (sockets made here stay there)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({name})")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns(back)")
    finally:
        os.close(target)
        os.close(own)


def read_sysctl(path: str) -> str:
    return Path(path).read_text().strip()


# --------------------------------------------------------------------- network
def setup_network() -> None:
    run("ip", "netns", "add", NODE_NS)
    in_ns(NODE_NS, "ip", "link", "set", "lo", "up")
    # br_netfilter: bridged IPv4 must traverse the inet hooks (per network namespace).
    in_ns(NODE_NS, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
    in_ns(NODE_NS, "ip", "link", "add", BRIDGE, "type", "bridge")
    in_ns(NODE_NS, "ip", "link", "set", BRIDGE, "up")
    for name, ip in PODS.items():
        ns, host_if, pod_if = f"{PREFIX}-{name}", f"{PREFIX}-{name}1", f"{PREFIX}-{name}0"
        run("ip", "netns", "add", ns)
        in_ns(NODE_NS, "ip", "link", "add", host_if, "type", "veth", "peer", "name", pod_if)
        in_ns(NODE_NS, "ip", "link", "set", pod_if, "netns", ns)
        in_ns(NODE_NS, "ip", "link", "set", host_if, "master", BRIDGE, "up")
        in_ns(ns, "ip", "link", "set", pod_if, "name", "eth0")
        in_ns(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        in_ns(ns, "ip", "link", "set", "lo", "up")


def teardown_network() -> None:
    for name in PODS:
        run("ip", "netns", "del", f"{PREFIX}-{name}", check=False, quiet=True)
    # Deleting the node namespace removes the bridge, the veth ends and the
    # nftables table kube-network-policies made there.
    run("ip", "netns", "del", NODE_NS, check=False, quiet=True)
    left = [n for n in run("ip", "netns", "list", check=False).stdout.split()
            if n.startswith(PREFIX)]
    left += [ln for ln in run("ip", "-o", "link", "show", check=False).stdout.splitlines()
             if f": {PREFIX}" in ln]
    if left:
        log(f"WARNING: left over after cleanup: {left}")


class Listener:
    """TCP server in pod B's namespace: answers 'ok' to every connection."""

    def __init__(self, ns: str, ip: str, port: int):
        with netns(ns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            with conn:
                try:
                    conn.sendall(b"ok\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(timeout=2)


def connect(src: str, dst_ip: str, port: int = PORT) -> str:
    """'ok', or why a TCP connection from pod `src`'s namespace failed."""
    with netns(f"{PREFIX}-{src}"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(CONNECT_TIMEOUT)
    try:
        s.connect((dst_ip, port))
        data = s.recv(16)
        return "ok" if data.startswith(b"ok") else f"bad reply {data!r}"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return f"error: {e.strerror or e}"
    finally:
        s.close()


# ------------------------------------------------------------ API forwarder
class Forwarder:
    """127.0.0.1:<port> inside `ns` -> 127.0.0.1:<target> on the host."""

    def __init__(self, ns: str, target_port: int):
        with netns(ns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.target = target_port
        self.stop = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                down, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            try:
                up = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                down.close()
                continue
            up.settimeout(None)
            down.settimeout(None)
            self.conns += [up, down]
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.close()
        self.thread.join(timeout=2)


# --------------------------------------------------------------- API objects
def create_objects(client) -> None:
    client.create("/api/v1/nodes", {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/hostname": NODE_NAME}},
    })
    for name, ip in PODS.items():
        ns = f"{PREFIX}-{name}"
        client.create("/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"team": name}},
        })
        client.create(f"/api/v1/namespaces/{ns}/pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"nodeName": NODE_NAME, "containers": [{"name": "c", "image": "pause"}]},
        })
        client.merge_patch(f"/api/v1/namespaces/{ns}/pods/{name}/status", {"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.245.250.1",
            "conditions": [{"type": "Ready", "status": "True"}],
        }})
        got = client.get(f"/api/v1/namespaces/{ns}/pods/{name}")["status"].get("podIP")
        if got != ip:
            raise RuntimeError(f"pod {ns}/{name}: status.podIP is {got!r}, wanted {ip}")


POLICY = {
    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
    "metadata": {"name": "only-team-a", "namespace": f"{PREFIX}-b"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "b"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}],
    },
}
POLICY_PATH = f"/apis/networking.k8s.io/v1/namespaces/{PREFIX}-b/networkpolicies"


def wait_for(what: str, want: dict[str, str], timeout: float = 30.0) -> dict[str, str]:
    """Poll until connect(src, B) == want[src] for every src (a result is 'ok' or not)."""
    deadline = time.monotonic() + timeout
    while True:
        got = {}
        for pair in want:  # "a>b": from pod a to pod b
            src, dst = pair.split(">")
            got[pair] = connect(src, PODS[dst])
        ok = all((got[k] == "ok") == (want[k] == "ok") for k in want)
        if ok or time.monotonic() > deadline:
            log(f"{what}: {got}" + ("" if ok else f"  (WANTED {want})"))
            if not ok:
                raise AssertionError(f"{what}: got {got}, wanted {want}")
            return got
        time.sleep(0.5)


def nft_table(ns: str) -> str:
    if not shutil.which("nft"):
        return "(nft not installed)"
    p = in_ns(ns, "nft", "list", "table", "inet", "kube-network-policies", check=False, quiet=True)
    return p.stdout.strip() if p.returncode == 0 else f"(no table: {p.stderr.strip()})"


# ------------------------------------------------------------------- main
def default_bin_dir() -> str:
    p = subprocess.run(["bash", str(REPO / "toolchain/build.sh"), "--check"],
                       capture_output=True, text=True)
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        sys.exit("no toolchain: run bash toolchain/build.sh (or pass --bin)")
    return lines[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", help="toolchain bin dir (kube-apiserver, etcd, ...)")
    ap.add_argument("--knp", help="kube-network-policies binary")
    ap.add_argument("--workdir", help="scratch dir (default: a new temp dir, removed at the end)")
    ap.add_argument("-v", "--verbose", action="store_true", help="kube-network-policies at -v=2 and its log on exit")
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces, nftables)")
    bin_dir = args.bin or default_bin_dir()
    knp = args.knp or str(Path(bin_dir) / "kube-network-policies")
    if not os.access(knp, os.X_OK):
        # Not linked into BIN_DIR (yet): build/link it into a scratch dir of our own.
        scratch = tempfile.mkdtemp(prefix="knpt-bin.")
        atexit.register(shutil.rmtree, scratch, True)
        subprocess.run(["bash", str(REPO / "toolchain/knp.sh"), scratch], check=True)
        knp = str(Path(scratch) / "kube-network-policies")
    stale = [n for n in run("ip", "netns", "list").stdout.split() if n.startswith(PREFIX)]
    if stale:
        sys.exit(f"network namespaces {stale} exist (an earlier run?); remove them first")

    from localcluster import LocalCluster  # noqa: E402

    host_sysctls = {p: read_sysctl(p) for p in ("/proc/sys/net/ipv4/ip_forward",
                                                 "/proc/sys/net/bridge/bridge-nf-call-iptables")}
    log(f"host sysctls: {host_sysctls}")
    own_workdir = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="knpt-selfcheck."))
    cluster = knp_proc = forwarder = None
    listeners: list[Listener] = []
    knp_log = workdir / "kube-network-policies.log"
    ok = False
    try:
        cluster = LocalCluster(bin_dir, workdir / "cluster", nodes=0)
        cluster.start()
        log(f"API server {cluster.server} (up in {cluster.startup_seconds:.1f}s)")
        client = cluster.client()
        create_objects(client)

        setup_network()
        forwarder = Forwarder(NODE_NS, int(cluster.server.rsplit(":", 1)[1]))
        kubeconfig = workdir / "knp.kubeconfig"
        kubeconfig.write_text(cluster.kubeconfig.read_text().replace(
            cluster.server, f"https://127.0.0.1:{forwarder.port}"))
        kubeconfig.chmod(0o600)
        listeners.append(Listener(f"{PREFIX}-b", PODS["b"], PORT))
        # A listener on A too, to check B's own (unrestricted) egress B->A.
        listeners.append(Listener(f"{PREFIX}-a", PODS["a"], PORT))

        argv = ["ip", "netns", "exec", NODE_NS, knp,
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                f"--nfqueue-id={QUEUE_ID}",
                "--metrics-bind-address=127.0.0.1:9080",  # inside knpt-node
                "--disable-nri",
                "--netfilter-bug-1766-fix=false",
                f"-v={2 if args.verbose else 1}"]
        log("starting: " + " ".join(argv))
        with open(knp_log, "wb") as f:
            # `ip netns exec` execs the program: this pid is kube-network-policies itself.
            knp_proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 30
        while "Syncing nftables rules" not in knp_log.read_text(errors="replace"):
            if knp_proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("kube-network-policies did not start:\n" + knp_log.read_text()[-3000:])
            time.sleep(0.2)

        wait_for("1. no policy", {"a>b": "ok", "c>b": "ok"}, timeout=10)
        client.create(POLICY_PATH, POLICY)
        wait_for("2. policy only-team-a", {"a>b": "ok", "c>b": "blocked"})
        got = connect("c", PODS["b"])
        assert got != "ok", f"C->B connected on a second try: {got}"
        log(f"   C->B again: {got}; B->A: {connect('b', PODS['a'])}")
        assert connect("b", PODS["a"]) == "ok", "B->A (egress of B, not restricted) failed"
        log("   nftables table in knpt-node:\n" + nft_table(NODE_NS))
        client.delete(f"{POLICY_PATH}/only-team-a")
        wait_for("3. policy deleted", {"a>b": "ok", "c>b": "ok"})
        client.create(POLICY_PATH, POLICY)
        wait_for("4a. policy re-created", {"a>b": "ok", "c>b": "blocked"})

        t0 = time.monotonic()
        knp_proc.send_signal(signal.SIGTERM)
        rc = knp_proc.wait(timeout=30)
        log(f"4b. kube-network-policies exited {rc} {time.monotonic() - t0:.1f}s after SIGTERM")
        log("   nftables table in knpt-node: " + nft_table(NODE_NS))
        wait_for("4c. controller stopped (policy still present)", {"a>b": "ok", "c>b": "ok"}, timeout=5)

        # 5. A killed controller leaves its table: with no program on the
        # (non-bypass) queue, new connections to B are dropped, even A's, until
        # `kube-network-policies --cleanup` removes it.
        with open(knp_log, "ab") as f:
            knp_proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for("5a. controller restarted", {"a>b": "ok", "c>b": "blocked"})
        knp_proc.kill()
        knp_proc.wait()
        wait_for("5b. controller SIGKILLed", {"a>b": "blocked", "c>b": "blocked"}, timeout=5)
        out = in_ns(NODE_NS, knp, "--cleanup").stdout.strip()
        log(f"   kube-network-policies --cleanup: {out}")
        assert out == "removed table inet kube-network-policies", out
        out = in_ns(NODE_NS, knp, "--cleanup").stdout.strip()
        assert out == "no table inet kube-network-policies", out
        wait_for("5c. after --cleanup", {"a>b": "ok", "c>b": "ok"}, timeout=5)
        ok = True
    finally:
        if knp_proc is not None and knp_proc.poll() is None:
            knp_proc.send_signal(signal.SIGTERM)
            try:
                knp_proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                knp_proc.kill()
                knp_proc.wait()
        if args.verbose or not ok:
            with contextlib.suppress(OSError):
                print("---- kube-network-policies log (tail) ----\n" + knp_log.read_text()[-6000:], flush=True)
        for closer in [*listeners, forwarder]:
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer.close()
        teardown_network()
        if cluster is not None:
            cluster.stop()
        for p, v in host_sysctls.items():
            if read_sysctl(p) != v:
                log(f"WARNING: {p} changed to {read_sysctl(p)}; restoring {v}")
                Path(p).write_text(v)
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    log("PASS: NetworkPolicy enforced (A->B allowed, C->B dropped); table removed on SIGTERM and by --cleanup")
    return 0


if __name__ == "__main__":
    sys.exit(main())
