"""Start and stop a local Kubernetes control plane with fake (kwok) nodes."""

from __future__ import annotations

import atexit
import base64
import ctypes
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import node as node_mod, objects, stages
from .addons import Addons
from .kubeapi import KubeClient
from .pki import PKI

# How long a control-plane process other than etcd may take to stop (see LocalCluster.stop).
STATELESS_GRACE_SECONDS = 1.0
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

# The API server needs a non-loopback advertise address (it cannot derive one
# when the host has no default route). Nothing ever connects to it -- every
# component talks to 127.0.0.1 -- it only ends up in the endpoints of the
# `kubernetes` Service. Default: an address from 198.18.0.0/15 (RFC 2544,
# never routed), so the result is the same on every machine.
DEFAULT_ADVERTISE_ADDRESS = "198.18.0.1"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


class ClusterError(RuntimeError):
    """The local cluster could not be started (message includes log tails)."""


def _child_setup(parent_pid: int) -> Callable[[], None]:
    """preexec_fn: die with the parent, and don't outlive an already-dead one.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so
    start the cluster from a thread that lives as long as the cluster (the
    main thread, normally).
    """
    def setup() -> None:
        if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != parent_pid:  # parent died before prctl took effect
            os._exit(125)
    return setup


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


def tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(data.splitlines()[-lines:])


@dataclass
class Component:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class LocalCluster:
    """A throw-away Kubernetes control plane on 127.0.0.1.

    etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok run
    as child processes; ``nodes`` fake Nodes are managed by kwok; a default
    StorageClass (with a hostPath provisioner), a default IngressClass and
    the platform CRDs (Dex) exist; LoadBalancer Services and Ingresses get a
    status address.

        with LocalCluster(bin_dir, workdir) as cluster:
            subprocess.run(["kubectl", "--kubeconfig", cluster.kubeconfig, ...])

    Everything lives under ``workdir``: ``kubeconfig`` (admin), ``logs/``,
    ``pki/``, ``etcd/``, ``volumes/``. Starting wipes the state of a
    previous run in the same directory.
    """

    def __init__(self, bin_dir: str | os.PathLike, workdir: str | os.PathLike, *,
                 nodes: int = 3, advertise_address: str | None = None,
                 startup_timeout: float = 120.0, addons: bool = True,
                 extra_crds: list[dict] | None = None,
                 langflow_start_seconds: float = 0.0,
                 langflow_stop_seconds: float = stages.LANGFLOW_STOP_SECONDS,
                 real_node: bool = False):
        self.bin_dir = Path(bin_dir).absolute()
        self.workdir = Path(workdir).absolute()
        self.node_count = nodes
        self.advertise_address = (advertise_address
                                  or os.environ.get("LOCALCLUSTER_ADVERTISE_ADDRESS")
                                  or DEFAULT_ADVERTISE_ADDRESS)
        self.startup_timeout = startup_timeout
        self.enable_addons = addons
        self.extra_crds = list(extra_crds or [])
        # How long a simulated Langflow pod takes to start and to stop (localcluster/stages.py).
        self.langflow_seconds = (langflow_start_seconds, langflow_stop_seconds)
        # With a real node (localcluster/node.py), pods scheduled to it run as containers; the API
        # server then binds to an address pods can reach, on a bridge of the node's.
        self.node = node_mod.RealNode(self) if real_node else None
        self.bind_address = node_mod.API_ADDRESS if self.node else "127.0.0.1"

        self.log_dir = self.workdir / "logs"
        self.pki = PKI(self.workdir / "pki")
        self.kubeconfig = self.workdir / "kubeconfig"
        self.ports: dict[str, int] = {}
        self.components: dict[str, Component] = {}
        self.startup_seconds: float | None = None
        self.kube_version = ""

        self._addons: Addons | None = None
        self._client: KubeClient | None = None
        self._lock_fd: int | None = None
        self._started = False
        self._stopping = threading.Lock()
        self.log = logging.getLogger(f"localcluster.{id(self):x}")

    # -- public API ------------------------------------------------------------
    @property
    def server(self) -> str:
        """URL of the API server (https://127.0.0.1:<port>, or the real node's API_ADDRESS)."""
        if "apiserver" not in self.ports:
            raise ClusterError("cluster not started")
        return f"https://{self.bind_address}:{self.ports['apiserver']}"

    api_server_url = server

    @property
    def ca_file(self) -> Path:
        return self.pki.ca_cert

    @property
    def running(self) -> bool:
        return self._started

    def pids(self) -> dict[str, int]:
        return {n: c.pid for n, c in self.components.items() if c.pid is not None}

    def client(self) -> KubeClient:
        """An admin API client (new per call; cheap)."""
        crt, key = self.pki.dir / "admin.crt", self.pki.dir / "admin.key"
        return KubeClient(self.server, str(self.pki.ca_cert), str(crt), str(key))

    def __enter__(self) -> "LocalCluster":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "LocalCluster":
        if self._started:
            raise ClusterError("cluster already started")
        t0 = time.monotonic()
        self.components = {}
        self.ports = {}
        try:
            self._prepare_dirs()
            self._setup_logging()
            self._check_binaries()
            self._make_pki()
            self._write_kubeconfigs()
            self._started = True
            atexit.register(self.stop)
            if self.node:
                self.node.prepare_host(self.startup_timeout)
            self._start_etcd()
            self._start_apiserver()
            self._start_rest()
            self._bootstrap()
            if self.enable_addons:
                self._addons = Addons(self.client(), self.workdir / "volumes",
                                      self.log.getChild("addons"),
                                      node=node_mod.NODE_NAME if self.node else None)
                self._addons.start()
            self._wait_ready()
            if self.node:
                self.node.start(time.monotonic() + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        self.log.info("cluster ready in %.1fs: %s (kubeconfig %s)",
                      self.startup_seconds, self.server, self.kubeconfig)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every process this cluster started and wait for them to exit.

        etcd, which holds every object, gets `timeout` seconds after SIGTERM. The others keep no state and
        get at most STATELESS_GRACE_SECONDS: kube-apiserver's graceful termination took up to 8 s of each
        test's teardown. Idempotent; safe to call from ``finally`` blocks and atexit.
        """
        with self._stopping:
            if self.node:  # its containers first, while the API server still answers
                self.node.stop()
            if self._addons is not None:
                self._addons.stop()
                self._addons = None
            if self._client is not None:
                self._client.close()
                self._client = None
            # Everything that talks to the API server first, etcd last.
            order = [n for n in reversed(list(self.components)) if n != "etcd"]
            self._terminate([self.components[n] for n in order], min(timeout, STATELESS_GRACE_SECONDS))
            if "etcd" in self.components:
                self._terminate([self.components["etcd"]], timeout)
            self._started = False
            try:
                atexit.unregister(self.stop)
            except Exception:
                pass
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            for h in list(self.log.handlers):
                h.close()
                self.log.removeHandler(h)

    def stop_apiserver(self, timeout: float = 15.0) -> None:
        """Stop the API server alone, as in an outage: etcd and every object stay."""
        self._terminate([self.components["kube-apiserver"]], timeout)

    def start_apiserver(self) -> None:
        """Start the API server again after stop_apiserver(): same port, certificates and data."""
        if self._client is not None:
            self._client.close()
        self._start_apiserver()

    # -- processes -------------------------------------------------------------
    def _terminate(self, comps: list[Component], timeout: float) -> None:
        # Never signal a process group twice after its leader was reaped: the
        # pid could belong to someone else by then.
        live = [c for c in comps if c.proc is not None and not c.extra.get("stopped")]
        for c in live:
            self._signal_group(c, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for c in live:
            try:
                c.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log.info("%s did not stop within %.0f s of SIGTERM; killing", c.name, timeout)
                self._signal_group(c, signal.SIGKILL)
                c.proc.wait(10)
            # Anything left in its process group (there should be nothing).
            self._signal_group(c, signal.SIGKILL)
            c.extra["stopped"] = True
            log_file = c.extra.pop("log_file", None)
            if log_file:
                log_file.close()

    @staticmethod
    def _signal_group(c: Component, sig: int) -> None:
        try:
            os.killpg(c.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Component:
        log_path = self.log_dir / f"{name}.log"
        log_file = open(log_path, "ab", buffering=0)
        log_file.write(f"=== {time.strftime('%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            cwd=self.workdir, env=full_env, close_fds=True, process_group=0,
            preexec_fn=_child_setup(os.getpid()))
        comp = Component(name, argv, log_path, env, proc, time.monotonic())
        comp.extra["log_file"] = log_file
        self.components[name] = comp
        self.log.info("started %s (pid %d)", name, proc.pid)
        return comp

    def _fail(self, what: str, comp: str | None) -> ClusterError:
        msg = what
        if comp and comp in self.components:
            c = self.components[comp]
            msg += f"\n--- last lines of {c.log_path} ---\n{tail(c.log_path)}"
        self.log.error(msg)
        return ClusterError(msg)

    def _check_alive(self) -> None:
        for c in self.components.values():
            code = c.proc.poll() if c.proc else None
            if code is not None:
                raise self._fail(f"{c.name} exited with code {code} during start-up", c.name)

    def _wait(self, what: str, check: Callable[[], bool], comp: str,
              deadline: float) -> None:
        last_exc: Exception | None = None
        while True:
            self._check_alive()
            try:
                if check():
                    return
            except Exception as exc:  # keep polling; report the last error
                last_exc = exc
            if time.monotonic() > deadline:
                extra = f" (last error: {last_exc})" if last_exc else ""
                raise self._fail(f"timed out waiting for {what}{extra}", comp)
            time.sleep(0.2)

    # -- setup steps -------------------------------------------------------------
    def _prepare_dirs(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.workdir / ".localcluster.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise ClusterError(f"another local cluster is running in {self.workdir}") from None
        self._lock_fd = lock
        for sub in ("etcd", "pki", "volumes", "run"):
            shutil.rmtree(self.workdir / sub, ignore_errors=True)
        if self.log_dir.exists():
            for old in self.log_dir.glob("*.log"):
                if old.name != "supervisor.log":
                    old.unlink()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "run").mkdir()

    def _setup_logging(self) -> None:
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        handler = logging.FileHandler(self.log_dir / "localcluster.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        self.log.addHandler(handler)

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _check_binaries(self) -> None:
        needed = BINARIES + (node_mod.NODE_BINARIES if self.node else ())
        missing = [b for b in needed if not os.access(self.bin_dir / b, os.X_OK)]
        if missing:
            raise ClusterError(
                f"missing in {self.bin_dir}: {', '.join(missing)} "
                f"(build them with: bash toolchain/kube.sh {self.bin_dir})")
        out = subprocess.run([self._bin("kube-apiserver"), "--version"],
                             capture_output=True, text=True)
        self.kube_version = out.stdout.strip().rsplit(" ", 1)[-1] or "v0.0.0"

    def _make_pki(self) -> None:
        p = self.pki
        p.ensure_ca()
        p.ensure_service_account_keys()
        p.leaf("apiserver", "kube-apiserver", server=True,
               dns=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local"),
               ips=("127.0.0.1", SERVICE_IP, self.advertise_address, node_mod.API_ADDRESS))
        p.leaf("admin", "localcluster-admin", organizations=("system:masters",), client=True)
        # An administrator, since its controllers use its own credentials (see _start_rest).
        p.leaf("controller-manager", "system:kube-controller-manager", organizations=("system:masters",), client=True)
        p.leaf("scheduler", "system:kube-scheduler", client=True)
        p.leaf("kwok", "kwok-controller", organizations=("system:masters",), client=True)
        if self.node:  # logs, exec and port-forward: the API server calls the kubelet
            p.leaf("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                   organizations=("system:masters",), client=True)

    def _pick_ports(self) -> None:
        for name in ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler"):
            self.ports[name] = self._new_port()

    def _new_port(self) -> int:
        return _free_port(set(self.ports.values()))

    def _kubeconfig_text(self, user: str, embed: bool) -> str:
        crt, key = self.pki.dir / f"{user}.crt", self.pki.dir / f"{user}.key"
        if embed:
            def b64(p: Path) -> str:
                return base64.b64encode(p.read_bytes()).decode()
            ca = f"certificate-authority-data: {b64(self.pki.ca_cert)}"
            cert = f"client-certificate-data: {b64(crt)}"
            keyl = f"client-key-data: {b64(key)}"
        else:
            ca = f"certificate-authority: {json.dumps(str(self.pki.ca_cert))}"
            cert = f"client-certificate: {json.dumps(str(crt))}"
            keyl = f"client-key: {json.dumps(str(key))}"
        return (
            "apiVersion: v1\n"
            "kind: Config\n"
            "clusters:\n"
            "- name: localcluster\n"
            "  cluster:\n"
            f"    server: {self.server}\n"
            f"    {ca}\n"
            "users:\n"
            f"- name: {user}\n"
            "  user:\n"
            f"    {cert}\n"
            f"    {keyl}\n"
            "contexts:\n"
            "- name: localcluster\n"
            "  context:\n"
            "    cluster: localcluster\n"
            f"    user: {user}\n"
            "    namespace: default\n"
            "current-context: localcluster\n"
        )

    def _write_kubeconfigs(self) -> None:
        self._pick_ports()
        run = self.workdir / "run"
        for user in ("controller-manager", "scheduler", "kwok"):
            (run / f"{user}.kubeconfig").write_text(self._kubeconfig_text(user, embed=False))
        tmp = self.kubeconfig.with_suffix(".tmp")
        tmp.write_text(self._kubeconfig_text("admin", embed=True))
        tmp.chmod(0o600)
        tmp.replace(self.kubeconfig)

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        self._spawn("etcd", [
            self._bin("etcd"),
            "--name=localcluster",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=localcluster={peer}",
            "--initial-cluster-state=new",
            "--logger=zap",
            "--log-level=warn",
        ])

        def healthy() -> bool:
            with urllib.request.urlopen(f"{client}/health", timeout=2) as r:
                return json.load(r).get("health") == "true"

        self._wait("etcd to become healthy", healthy, "etcd",
                   time.monotonic() + min(30, self.startup_timeout))

    def _start_apiserver(self) -> None:
        pki = self.pki.dir
        self._spawn("kube-apiserver", [
            self._bin("kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
            f"--bind-address={self.bind_address}",
            f"--secure-port={self.ports['apiserver']}",
            f"--advertise-address={self.advertise_address}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={self.pki.ca_cert}",
            # No aggregated API servers here; set so that the controller-manager
            # and scheduler don't complain about an empty request-header CA.
            f"--requestheader-client-ca-file={self.pki.ca_cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--authorization-mode=Node,RBAC",
            f"--service-account-key-file={self.pki.sa_pub}",
            f"--service-account-signing-key-file={self.pki.sa_key}",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            "--profiling=false",
            f"--cert-dir={self.workdir / 'run' / 'apiserver'}",
            "--endpoint-reconciler-type=lease",
            "--event-ttl=1h",
            # etcd 3.4.23 lacks RequestWatchProgress, so 1.34's streaming watch-lists keep
            # failing and kwok sees pod changes tens of seconds late (platform.md, "Measured").
            "--feature-gates=WatchList=false",
            *([f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
               f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
               f"--kubelet-certificate-authority={self.pki.ca_cert}",
               "--kubelet-preferred-address-types=InternalIP"] if self.node else []),
        ])
        self._client = self.client()
        self._wait("kube-apiserver /readyz", lambda: self._client.healthy("/readyz"),
                   "kube-apiserver", time.monotonic() + self.startup_timeout)

    def _start_rest(self) -> None:
        run = self.workdir / "run"
        pki = self.pki.dir
        kcm_kc = str(run / "controller-manager.kubeconfig")
        self._spawn("kube-controller-manager", [
            self._bin("kube-controller-manager"),
            f"--kubeconfig={kcm_kc}",
            f"--authentication-kubeconfig={kcm_kc}",
            f"--authorization-kubeconfig={kcm_kc}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['controller-manager']}",
            f"--cert-dir={run / 'controller-manager'}",
            "--leader-elect=false",
            f"--service-account-private-key-file={self.pki.sa_key}",
            f"--root-ca-file={self.pki.ca_cert}",
            # The controllers run as the controller-manager itself, not as a ServiceAccount each: making and
            # waiting for some 40 accounts and their tokens took 4 of a start's 10 s. Nothing here tests
            # the controllers' own RBAC.
            "--use-service-account-credentials=false",
            f"--cluster-signing-cert-file={self.pki.ca_cert}",
            f"--cluster-signing-key-file={self.pki.ca_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--cluster-name=localcluster",
            "--profiling=false",
        ])
        sched_kc = str(run / "scheduler.kubeconfig")
        self._spawn("kube-scheduler", [
            self._bin("kube-scheduler"),
            f"--kubeconfig={sched_kc}",
            f"--authentication-kubeconfig={sched_kc}",
            f"--authorization-kubeconfig={sched_kc}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['scheduler']}",
            f"--cert-dir={run / 'scheduler'}",
            "--leader-elect=false",
            "--profiling=false",
        ])
        kwok_home = run / "kwok-home"  # keep ~/.kwok/kwok.yaml out of it
        kwok_home.mkdir(exist_ok=True)
        (run / "kwok-stages.yaml").write_text(stages.kwok_config(*self.langflow_seconds))
        self._spawn("kwok", [
            self._bin("kwok"),
            f"--kubeconfig={run / 'kwok.kubeconfig'}",
            f"--config={run / 'kwok-stages.yaml'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={objects.NODE_ANNOTATION}=fake",
            f"--cidr={objects.POD_CIDR}",
            "--node-lease-duration-seconds=40",
        ], env={"HOME": str(kwok_home)})

    def _bootstrap(self) -> None:
        c = self._client
        for crd in objects.platform_crds() + self.extra_crds:
            c.ensure("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        c.ensure("/apis/storage.k8s.io/v1/storageclasses", objects.storage_class())
        c.ensure("/apis/networking.k8s.io/v1/ingressclasses", objects.ingress_class())
        c.ensure("/api/v1/namespaces", objects.platform_namespace())
        for i in range(self.node_count):
            c.ensure("/api/v1/nodes", objects.fake_node(i, self.kube_version))

    # -- readiness -------------------------------------------------------------
    def _component_healthy(self, port: int) -> bool:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # self-signed serving certs from --cert-dir
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=2,
                                    context=ctx) as r:
            return r.read().strip() == b"ok"

    def _nodes_ready(self) -> bool:
        nodes = self._client.items("/api/v1/nodes")
        ready = 0
        for n in nodes:
            conds = {x["type"]: x["status"] for x in n.get("status", {}).get("conditions", [])}
            taints = {t["key"] for t in n.get("spec", {}).get("taints") or []}
            if conds.get("Ready") == "True" and not taints & {
                    "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}:
                ready += 1
        return ready >= self.node_count

    def _default_sa(self) -> bool:
        return self._client.get_or_none("/api/v1/namespaces/default/serviceaccounts/default") is not None

    def _crds_established(self) -> bool:
        for crd in objects.platform_crds() + self.extra_crds:
            obj = self._client.get(
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}")
            conds = {x["type"]: x["status"] for x in obj.get("status", {}).get("conditions", [])}
            if conds.get("Established") != "True":
                return False
        return True

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        self._wait("kube-controller-manager /healthz",
                   lambda: self._component_healthy(self.ports["controller-manager"]),
                   "kube-controller-manager", deadline)
        self._wait("kube-scheduler /healthz",
                   lambda: self._component_healthy(self.ports["scheduler"]),
                   "kube-scheduler", deadline)
        self._wait("CRDs to be Established", self._crds_established, "kube-apiserver", deadline)
        self._wait(f"{self.node_count} nodes to be Ready (kwok)", self._nodes_ready, "kwok",
                   deadline)
        self._wait("the default ServiceAccount in namespace default", self._default_sa,
                   "kube-controller-manager", deadline)
