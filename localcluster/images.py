"""The container images the program's pods run, built here and imported into containerd.

No registry is reachable from the test machines, so every image a pod of the program uses on the
local cluster's real node is made on this machine from released artifacts (Debian packages, the
toolchain's Go binaries, the virtualenv `make verify` installs), laid out as the upstream image is,
tagged with the exact reference the program pins, and imported with `ctr images import`.

    ensure_images(["registry.k8s.io/pause:3.10.1", "langflowai/langflow:1.6.4"],
                  socket="/run/lc/containerd.sock", ctr="/usr/bin/ctr", bin_dir=BIN_DIR)

An image is imported once: containerd keeps it (and its snapshots) in its persistent root,
labelled with the hash of the recipe's inputs (`localcluster.invalid/input`); a later call with
the same inputs finds the label and imports nothing. What takes long to make is cached under
`${LANGFLOW_TOOLCHAIN_CACHE:-~/.cache/langflow-pulumi-toolchain}/images/`: the Debian root file
systems (one tar per suite and package list) and the digests of big layers. See docs/images.md for
how each image differs from upstream.

    python -m localcluster.images build REF... --socket SOCK [--ctr CTR] --bin BIN_DIR
    python -m localcluster.images list
    python -m localcluster.images archive REF --bin BIN_DIR > image.tar   # a docker-archive, no containerd
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable, Optional

from .node import mounts_under

# The mtime of every entry whose own time carries no meaning (2024-01-01T00:00:00Z). Python trees keep
# theirs: a .pyc is valid only while its source's mtime is the one it recorded.
FIXED_MTIME = 1704067200
INPUT_LABEL = "localcluster.invalid/input"
NAMESPACE = "k8s.io"  # where the CRI plugin (the kubelet) looks for images
# Bumped whenever a recipe's output changes for the same inputs: every image is then imported again.
RECIPES_VERSION = "1"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

Layer = Callable[[tarfile.TarFile], None]
Log = Callable[[str], None]


class ImageError(Exception):
    """An image could not be built or imported; the message says what and how to fix it (one line)."""


def cache_dir() -> Path:
    root = os.environ.get("LANGFLOW_TOOLCHAIN_CACHE") or str(Path.home() / ".cache" / "langflow-pulumi-toolchain")
    return Path(root) / "images"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _quiet(message: str) -> None:
    pass


# --- references -----------------------------------------------------------------------------------

def normalize_ref(ref: str) -> str:
    """The name containerd gives an image imported with this RepoTag (Docker's normalisation):
    `postgres:17` -> `docker.io/library/postgres:17`, `langflowai/langflow:1.6.4` -> `docker.io/langflowai/...`."""
    name = ref.split("@")[0]
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    elif first == "docker.io" and "/" not in rest:
        name = f"docker.io/library/{rest}"
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else name + ":latest"


def split_ref(ref: str) -> tuple[str, str]:
    """(repository as normalised, tag)."""
    name = normalize_ref(ref)
    repo, _, tag = name.rpartition(":")
    return repo, tag


# --- layers: deterministic tar writers ---------------------------------------------------------------

def _info(name: str, kind: bytes, mode: int, uid: int, gid: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name.strip("/"))
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, int(mtime)
    info.uname = info.gname = ""
    return info


def add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755, uid: int = 0, gid: int = 0,
            mtime: int = FIXED_MTIME) -> None:
    tar.addfile(_info(name, tarfile.DIRTYPE, mode, uid, gid, mtime))


def add_dirs(tar: tarfile.TarFile, path: str, **kwargs) -> None:
    """Each folder of `path` (a/, a/b/, a/b/c/), parents first."""
    parts = path.strip("/").split("/")
    for index in range(1, len(parts) + 1):
        add_dir(tar, "/".join(parts[:index]), **kwargs)


def add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0,
             mtime: int = FIXED_MTIME, xattrs: Optional[dict[str, bytes]] = None) -> None:
    info = _info(name, tarfile.REGTYPE, mode, uid, gid, mtime)
    info.size = len(data)
    if xattrs:
        # PAX SCHILY.xattr records: containerd sets them on the unpacked file (a file capability, say).
        info.pax_headers = {f"SCHILY.xattr.{key}": value.decode("utf-8", "surrogateescape")
                            for key, value in sorted(xattrs.items())}
    tar.addfile(info, io.BytesIO(data))


def add_symlink(tar: tarfile.TarFile, name: str, target: str, uid: int = 0, gid: int = 0,
                mtime: int = FIXED_MTIME) -> None:
    info = _info(name, tarfile.SYMTYPE, 0o777, uid, gid, mtime)
    info.linkname = target
    tar.addfile(info)


# A transform sees (path inside the image, source path, its bytes) of each regular file and returns the
# bytes to write instead, or None to keep them.
Transform = Callable[[str, Path, bytes], Optional[bytes]]


@dataclass
class Tree:
    """A folder of this machine, as it is to appear at `dest` in a layer.

    `skip(rel)` drops an entry (and, for a folder, what it holds); `transform` rewrites a regular file
    (only files `wants(rel)` selects are read into memory for it); `relink(rel, target)` rewrites a
    symlink's target. Owners are forced to uid/gid; modes are kept; mtimes too when keep_mtime (Python
    trees), else FIXED_MTIME. Hard links inside the tree stay hard links."""
    src: Path
    dest: str
    uid: int = 0
    gid: int = 0
    keep_owner: bool = False  # a root file system's owners (package users) stay as they are
    keep_mtime: bool = False
    skip: Callable[[str], bool] = lambda rel: False
    wants: Callable[[str], bool] = lambda rel: False
    transform: Optional[Transform] = None
    relink: Optional[Callable[[str, str], str]] = None

    def write(self, tar: tarfile.TarFile) -> None:
        links: dict[tuple[int, int], str] = {}
        self._entry(tar, self.src, "", links)

    def _entry(self, tar: tarfile.TarFile, path: Path, rel: str, links: dict) -> None:
        st = path.lstat()
        name = f"{self.dest.strip('/')}/{rel}".strip("/") if rel else self.dest.strip("/")
        mtime = int(st.st_mtime) if self.keep_mtime else FIXED_MTIME
        mode = stat.S_IMODE(st.st_mode)
        uid, gid = (st.st_uid, st.st_gid) if self.keep_owner else (self.uid, self.gid)
        if stat.S_ISDIR(st.st_mode):
            if name:
                add_dir(tar, name, mode, uid, gid, mtime)
            for child in sorted(os.listdir(path)):
                child_rel = f"{rel}/{child}" if rel else child
                if not self.skip(child_rel):
                    self._entry(tar, path / child, child_rel, links)
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            if self.relink:
                target = self.relink(rel, target)
            add_symlink(tar, name, target, uid, gid, mtime)
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                info = _info(name, tarfile.LNKTYPE, mode, uid, gid, mtime)
                info.linkname = links[key]
                tar.addfile(info)
                return
            if self.transform and self.wants(rel):
                data = path.read_bytes()
                new = self.transform(name, path, data)
                if new is not None:
                    add_file(tar, name, new, mode, uid, gid, mtime)
                    return  # a rewritten file is nobody's hard link
                add_file(tar, name, data, mode, uid, gid, mtime)
            else:
                info = _info(name, tarfile.REGTYPE, mode, uid, gid, mtime)
                info.size = st.st_size
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            if st.st_nlink > 1:
                links[key] = name
        # sockets, fifos and devices are left out: no image of ours needs one


class _Sink:
    """A write-only file: hashes and counts what passes, and hands it on to `out` if there is one."""

    def __init__(self, out: Optional[IO[bytes]] = None):
        self.sha, self.size, self.out = hashlib.sha256(), 0, out

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        if self.out is not None:
            self.out.write(data)
        return len(data)

    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def write_layer(layer: Layer, out: Optional[IO[bytes]] = None) -> tuple[str, int]:
    """Run `layer` into an uncompressed tar (to `out`, or nowhere): its (diff_id, size)."""
    sink = _Sink(out)
    # 1 MiB chunks: fewer writes (and pipe writes into ctr) for the 9 GiB of a virtualenv.
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT,  # type: ignore[arg-type]
                      bufsize=1 << 20) as tar:
        tar.copybufsize = 1 << 20
        layer(tar)
    return sink.digest(), sink.size


def file_layer(path: Path) -> Layer:
    """A layer that is an existing tar file, as it is (copied byte for byte, see write_archive)."""
    def layer(tar: tarfile.TarFile) -> None:  # only used when no digest is known: rebuild from members
        with tarfile.open(path) as src:
            for member in src:
                tar.addfile(member, src.extractfile(member) if member.isreg() else None)
    layer.tar_file = path  # type: ignore[attr-defined]
    return layer


@dataclass
class ImageConfig:
    """The parts of an OCI/Docker image config the runtime reads."""
    user: str = ""
    env: dict[str, str] = field(default_factory=lambda: {"PATH": DEFAULT_PATH})
    workdir: str = ""
    cmd: Optional[list[str]] = None
    entrypoint: Optional[list[str]] = None
    exposed_ports: list[str] = field(default_factory=list)  # "7860/tcp"
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: Optional[str] = None

    def document(self, diff_ids: list[str]) -> dict:
        config: dict = {"Env": [f"{key}={value}" for key, value in self.env.items()]}
        if self.user:
            config["User"] = self.user
        if self.workdir:
            config["WorkingDir"] = self.workdir
        if self.cmd is not None:
            config["Cmd"] = list(self.cmd)
        if self.entrypoint is not None:
            config["Entrypoint"] = list(self.entrypoint)
        if self.exposed_ports:
            config["ExposedPorts"] = {port: {} for port in sorted(self.exposed_ports)}
        if self.labels:
            config["Labels"] = dict(sorted(self.labels.items()))
        if self.stop_signal:
            config["StopSignal"] = self.stop_signal
        return {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "localcluster.images",
                         "comment": f"layer {index}"} for index in range(len(diff_ids))],
        }


def _outer_header(name: str, size: int) -> bytes:
    info = _info(name, tarfile.REGTYPE, 0o644, 0, 0, FIXED_MTIME)
    info.size = size
    # GNU format: a layer of 8 GiB or more (a virtualenv) overflows ustar's size field; GNU writes it base-256.
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "strict")


def _pad(out: IO[bytes], size: int) -> None:
    if size % tarfile.BLOCKSIZE:
        out.write(b"\0" * (tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE))


def _copy_file(path: Path, out: IO[bytes]) -> tuple[str, int]:
    sink = _Sink(out)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            sink.write(chunk)
    return sink.digest(), sink.size


def layer_digests(layers: list[Layer]) -> list[tuple[str, int]]:
    """(diff_id, size) of each layer, computed by writing it nowhere."""
    out = []
    for layer in layers:
        path = getattr(layer, "tar_file", None)
        out.append(_copy_file(path, None) if path else write_layer(layer))  # type: ignore[arg-type]
    return out


def write_archive(out: IO[bytes], ref: str, layers: list[Layer], config: ImageConfig,
                  digests: Optional[list[tuple[str, int]]] = None) -> str:
    """Stream a docker-archive (`docker save` format) of one image to `out`; returns the config's digest.

    A tar entry's size precedes its data, so each layer's size and digest must be known first: from
    `digests` (cached), else from a first pass that writes the layer nowhere. The layers are then
    written straight into `out` (no copy on disk), each checked against its digest, and the config
    and manifest.json come last (`ctr images import` reads manifest.json wherever it is)."""
    if digests is None:
        digests = layer_digests(layers)
    if len(digests) != len(layers):
        raise ValueError("one (digest, size) per layer")
    for layer, (diff_id, size) in zip(layers, digests):
        name = f"{diff_id.split(':')[1]}/layer.tar"
        out.write(_outer_header(name, size))
        path = getattr(layer, "tar_file", None)
        got = _copy_file(path, out) if path else write_layer(layer, out)
        if got != (diff_id, size):
            raise ImageError(f"{ref}: a layer came out different the second time ({got[0]}, {got[1]} bytes; "
                             f"expected {diff_id}, {size}): its source changed while the image was written, or "
                             f"the layer is not deterministic; run again")
        _pad(out, size)
    body = _json(config.document([d for d, _ in digests]))
    config_name = f"{_digest(body).split(':')[1]}.json"
    manifest = _json([{"Config": config_name, "RepoTags": [ref],
                       "Layers": [f"{d.split(':')[1]}/layer.tar" for d, _ in digests]}])
    for name, data in ((config_name, body), ("manifest.json", manifest)):
        out.write(_outer_header(name, len(data)))
        out.write(data)
        _pad(out, len(data))
    out.write(b"\0" * (2 * tarfile.BLOCKSIZE))
    out.flush()
    return _digest(body)


# --- recipes ----------------------------------------------------------------------------------------

@dataclass
class Built:
    """What a recipe prepared: layers (each with the key of its digest cache) and the config."""
    layers: list[tuple[str, Layer]]
    config: ImageConfig


@dataclass
class Recipe:
    ref: str
    inputs: dict  # everything the image is made from, JSON-able; its hash labels the imported image
    prepare: Callable[[Log], Built]  # builds what takes long (cached) and returns the layers
    size_hint: int = 0  # bytes the layers roughly take, before they are counted (the free-space check)

    def input_hash(self) -> str:
        return hashlib.sha256(_json({"recipes": RECIPES_VERSION, "ref": self.ref, **self.inputs})).hexdigest()[:32]


def _file_id(path: Path) -> dict:
    """A binary's identity for an input hash: its content hash (binaries here are tens of MB at most)."""
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _need_binary(bin_dir: Optional[Path], name: str, ref: str) -> Path:
    if bin_dir is None:
        raise ImageError(f"{ref} is made from the toolchain's `{name}`: pass bin_dir (the last line "
                         f"`bash toolchain/build.sh` prints)")
    path = Path(bin_dir) / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ImageError(f"{ref} is made from {path}, which is missing: build the toolchain "
                         f"(`bash toolchain/build.sh`) or pass the bin dir that holds `{name}`")
    return path.resolve()


# --- Debian root file systems -------------------------------------------------------------------------

ROOTFS_VERSION = "1"
SECURITY_SUITES = {"bookworm": "bookworm-security", "trixie": "trixie-security"}
# policy-rc.d: no service starts inside the chroot while packages install.
_POLICY_RC = b"#!/bin/sh\nexit 101\n"


def debian_mirrors() -> tuple[str, str]:
    """(archive, security) mirrors: this machine's apt sources (the only Debian mirror it may reach),
    or $LOCALCLUSTER_DEBIAN_MIRROR / $LOCALCLUSTER_DEBIAN_SECURITY_MIRROR."""
    archive = security = None
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.is_file() and path.suffix in ("", ".list", ".sources"):
            try:
                texts.append(path.read_text())
            except OSError:
                continue
    for uri in re.findall(r"(?:^URIs:\s*|^deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", "\n".join(texts), re.M):
        uri = uri.rstrip("/")
        if not re.search(r"/debian(-security)?$", uri):
            continue
        if uri.endswith("-security"):
            security = security or uri
        else:
            archive = archive or uri
    archive = os.environ.get("LOCALCLUSTER_DEBIAN_MIRROR") or archive or "http://deb.debian.org/debian"
    security = (os.environ.get("LOCALCLUSTER_DEBIAN_SECURITY_MIRROR") or security
                or archive.rsplit("/", 1)[0] + "/debian-security")
    return archive, security


@dataclass(frozen=True)
class Rootfs:
    """A Debian root file system: `debootstrap --variant=minbase`, then `script` in a chroot (users,
    `apt-get install`), with the suite's security updates, cached as one deterministic tar."""
    suite: str
    include: tuple[str, ...]  # debootstrap --include (on top of minbase)
    script: str  # /bin/sh -e in the chroot, after `apt-get update && apt-get upgrade`
    packages: tuple[str, ...] = ()  # whose versions are recorded (and checked by the recipes)

    def key(self) -> str:
        return hashlib.sha256(_json({"v": ROOTFS_VERSION, "suite": self.suite, "include": sorted(self.include),
                                     "script": self.script})).hexdigest()[:16]

    def inputs(self) -> dict:
        return {"suite": self.suite, "rootfs": self.key()}

    @property
    def tar_path(self) -> Path:
        return cache_dir() / "rootfs" / f"{self.suite}-{self.key()}.tar"

    def meta(self) -> dict:
        return json.loads(self.tar_path.with_suffix(".json").read_text())

    def ensure(self, log: Log = _quiet) -> Path:
        target = self.tar_path
        if target.exists() and target.with_suffix(".json").exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.parent / f".{target.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (target.exists() and target.with_suffix(".json").exists()):
                self._build(target, log)
        return target

    def _build(self, target: Path, log: Log) -> None:
        if os.geteuid() != 0:
            raise ImageError(f"building the Debian {self.suite} root file system needs root (debootstrap, chroot)")
        _check_free(target.parent, 3 << 30, f"the Debian {self.suite} root file system")
        archive, security = debian_mirrors()
        base = _debootstrap(self.suite, self.include, archive, log)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
        root = work / "root"
        started = time.monotonic()
        log(f"Debian {self.suite}: {self.script.splitlines()[-1][:80]} ...")
        try:
            _extract(base, root)
            sources = (f"deb {archive} {self.suite} main\ndeb {archive} {self.suite}-updates main\n"
                       f"deb {security} {SECURITY_SUITES.get(self.suite, self.suite + '-security')} main\n")
            (root / "etc/apt/sources.list").write_text(sources)
            (root / "usr/sbin/policy-rc.d").write_bytes(_POLICY_RC)
            (root / "usr/sbin/policy-rc.d").chmod(0o755)
            script = ("export DEBIAN_FRONTEND=noninteractive\n"
                      "apt-get -q update\n"
                      "apt-get -q -y -o Dpkg::Options::=--force-confold upgrade\n"
                      f"{self.script}\n"
                      "apt-get clean\n")
            _chroot(root, script, work / "chroot.log", f"Debian {self.suite} root file system")
            self._tidy(root)
            versions = _package_versions(root, self.packages or self.include)
            tmp = work / "rootfs.tar"
            with open(tmp, "wb") as out:
                diff_id, size = write_layer(Tree(root, "", keep_owner=True, skip=_rootfs_skip).write, out)
            os.replace(tmp, target)
            target.with_suffix(".json").write_text(json.dumps(
                {"suite": self.suite, "include": list(self.include), "versions": versions, "diff_id": diff_id,
                 "size": size, "mirror": archive, "seconds": round(time.monotonic() - started, 1)}, indent=1))
            log(f"Debian {self.suite} root file system: {size / 2**20:.0f} MiB in {time.monotonic() - started:.0f} s")
        finally:
            _remove_work(work)

    @staticmethod
    def _tidy(root: Path) -> None:
        for pattern in ("var/cache/apt/*", "var/lib/apt/lists/*", "var/log/*.log", "var/log/apt/*",
                        "var/cache/debconf/*-old", "var/lib/dpkg/*-old", "usr/sbin/policy-rc.d",
                        "etc/resolv.conf", "etc/hostname", "root/.bash_history", "tmp/*", "var/tmp/*", "run/adduser"):
            for path in root.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
        (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        (root / "etc/machine-id").write_text("") if (root / "etc/machine-id").exists() else None


def _debootstrap(suite: str, include: tuple[str, ...], archive: str, log: Log) -> Path:
    """`debootstrap --variant=minbase` of `suite` with `include`, cached as a tar (owners kept): the common
    start of every root file system of that suite."""
    # gpgv: minbase has no OpenPGP verifier, and apt in the chroot needs one for the -updates/-security suites.
    include = tuple(sorted({*include, "gpgv"}))
    key = hashlib.sha256(_json({"v": ROOTFS_VERSION, "suite": suite, "include": include})).hexdigest()[:16]
    target = cache_dir() / "rootfs" / f"debootstrap-{suite}-{key}.tar"
    if target.exists():
        return target
    if not shutil.which("debootstrap"):
        raise ImageError("debootstrap is missing: `apt-get install debootstrap`")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        work = Path(tempfile.mkdtemp(prefix=".debootstrap-", dir=target.parent))
        root = work / "root"
        started = time.monotonic()
        log(f"debootstrap {suite} ({', '.join(include) or 'minbase'}) from {archive}")
        try:
            cmd = ["debootstrap", "--variant=minbase", *([f"--include={','.join(include)}"] if include else []),
                   suite, str(root), archive]
            with open(work / "debootstrap.log", "w") as out:
                done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                detail = _last_lines(work / "debootstrap.log", root / "debootstrap" / "debootstrap.log")
                raise ImageError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {detail} -- check that this "
                                 f"machine reaches its Debian mirror (`apt-get update`), or set "
                                 f"LOCALCLUSTER_DEBIAN_MIRROR")
            _umount_under(work)
            for path in (root / "var/cache/apt/archives").glob("*.deb"):
                path.unlink()
            tmp = work / "base.tar"
            with open(tmp, "wb") as out:
                write_layer(Tree(root, "", keep_owner=True, skip=_rootfs_skip).write, out)
            os.replace(tmp, target)
            log(f"debootstrap {suite}: {time.monotonic() - started:.0f} s")
        finally:
            _remove_work(work)
    return target


def _extract(tar_path: Path, root: Path) -> None:
    root.mkdir(parents=True)
    with tarfile.open(tar_path) as tar:
        tar.extractall(root, numeric_owner=True, filter="fully_trusted")


def _rootfs_skip(rel: str) -> bool:
    # Runtime file systems: the container runtime mounts them.
    return rel.startswith(("dev/", "proc/", "sys/"))


def _last_lines(*paths: Path, count: int = 3) -> str:
    for path in paths:
        try:
            lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            continue
        if lines:
            return " | ".join(lines[-count:])
    return "no log"


def _chroot(root: Path, script: str, log_path: Path, what: str) -> None:
    proc_dir, dev_dir = root / "proc", root / "dev"
    proc_dir.mkdir(exist_ok=True)
    dev_dir.mkdir(exist_ok=True)
    # The device nodes a package's scripts use, made here (never a bind mount of the host's /dev, which a
    # failed unmount would leave to the clean-up to delete); the tar leaves them out.
    for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                               ("urandom", 1, 9), ("tty", 5, 0)):
        if not (dev_dir / name).exists():
            os.mknod(dev_dir / name, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            os.chmod(dev_dir / name, 0o666)  # not what the umask left: apt's sandbox user writes to /dev/null
    subprocess.run(["mount", "-t", "proc", "proc", str(proc_dir)], check=True)
    try:
        env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}
        with open(log_path, "w") as out:
            done = subprocess.run(["chroot", str(root), "/bin/sh", "-ec", script], stdout=out,
                                  stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            text = log_path.read_text(errors="replace").splitlines()
            errors = [line.strip() for line in text if re.search(r"error|^E:|: not found|Exiting", line, re.I)]
            raise ImageError(f"building the {what} failed in its chroot (exit {done.returncode}): "
                             f"{' | '.join(errors[:4]) or _last_lines(log_path)} -- check the Debian mirror "
                             f"(`apt-get update`) and the package names")
    finally:
        subprocess.run(["umount", "-l", str(proc_dir)], capture_output=True)


def _umount_under(path: Path) -> None:
    """Unmount whatever an interrupted debootstrap or chroot left mounted below `path`, deepest first."""
    for point in mounts_under([path]):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _remove_work(path: Path) -> None:
    """Remove a build folder, never through a mount point still in it."""
    _umount_under(path)
    left = mounts_under([path])
    if left:
        raise ImageError(f"cannot unmount {', '.join(left)}: unmount it by hand, then remove {path}")
    shutil.rmtree(path, ignore_errors=True)


def _package_versions(root: Path, packages: Iterable[str]) -> dict[str, str]:
    names = sorted(set(packages))
    if not names:
        return {}
    done = subprocess.run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${Package} ${Version}\n",
                           *names], capture_output=True, text=True)
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def upstream_version(debian_version: str) -> str:
    """`5:7.0.15-1~deb12u10` -> `7.0.15`; `17.6-0+deb13u1` -> `17.6`."""
    version = debian_version.split(":", 1)[-1]
    version = version.rsplit("-", 1)[0] if "-" in version else version
    return re.split(r"[+~]", version)[0]


def _rootfs_layer(rootfs: Rootfs) -> tuple[str, Layer]:
    path = rootfs.tar_path
    return f"rootfs:{rootfs.suite}:{rootfs.key()}", file_layer(path)


def _check_version(ref: str, rootfs: Rootfs, package: str) -> str:
    found = rootfs.meta()["versions"].get(package)
    if not found:
        raise ImageError(f"{ref}: package {package} is not in the Debian {rootfs.suite} root file system")
    _, tag = split_ref(ref)
    if upstream_version(found) != tag:
        raise ImageError(f"{ref}: Debian {rootfs.suite} gives {package} {found} (upstream "
                         f"{upstream_version(found)}), not {tag}: pin {split_ref(ref)[0]}:{upstream_version(found)} "
                         f"in the test's config, or add a recipe for {tag}")
    return found


# --- distroless-like base (Go binaries) ---------------------------------------------------------------

NONROOT = 65532


def _static_base(users: Iterable[tuple[str, int, int, str]] = ()) -> Layer:
    """What gcr.io/distroless/static:nonroot holds that a static Go binary may use: /etc/passwd and
    /etc/group (root, nobody, nonroot, and `users`), nsswitch.conf, the CA bundle (this machine's,
    Debian's ca-certificates), /tmp, /home/nonroot."""
    ca = CA_BUNDLE.read_bytes()
    extra = list(users)

    def layer(tar: tarfile.TarFile) -> None:
        passwd = ["root:x:0:0:root:/root:/sbin/nologin", "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin",
                  f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin",
                  *[f"{name}:x:{uid}:{gid}:{name}:{home}:/sbin/nologin" for name, uid, gid, home in extra]]
        group = ["root:x:0:", "nobody:x:65534:", f"nonroot:x:{NONROOT}:",
                 *[f"{name}:x:{gid}:" for name, _, gid, _ in extra]]
        add_dir(tar, "etc")
        add_file(tar, "etc/group", ("\n".join(group) + "\n").encode())
        add_file(tar, "etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n")
        add_file(tar, "etc/passwd", ("\n".join(passwd) + "\n").encode())
        add_dirs(tar, "etc/ssl/certs")
        add_file(tar, "etc/ssl/certs/ca-certificates.crt", ca)
        add_dir(tar, "home")
        add_dir(tar, "home/nonroot", 0o700, NONROOT, NONROOT)
        add_dir(tar, "root", 0o700)
        add_dir(tar, "tmp", 0o1777)
    return layer


def _binary_layer(path: Path, dest: str, xattrs: Optional[dict[str, bytes]] = None,
                  dirs: Iterable[tuple[str, int, int]] = ()) -> Layer:
    def layer(tar: tarfile.TarFile) -> None:
        parent = dest.strip("/").rsplit("/", 1)[0] if "/" in dest.strip("/") else ""
        if parent:
            add_dirs(tar, parent)
        add_file(tar, dest, path.read_bytes(), 0o755, xattrs=xattrs)
        for name, uid, gid in dirs:
            add_dirs(tar, name.rsplit("/", 1)[0]) if "/" in name else None
            add_dir(tar, name, 0o755, uid, gid)
    return layer


def _static_recipe(ref: str, binary: Path, dest: str, config: ImageConfig,
                   users: tuple[tuple[str, int, int, str], ...] = (), xattrs: Optional[dict[str, bytes]] = None,
                   dirs: tuple[tuple[str, int, int], ...] = ()) -> Recipe:
    inputs = {"binary": _file_id(binary), "dest": dest, "config": config.document([]), "users": users,
              "xattrs": {k: v.hex() for k, v in (xattrs or {}).items()}, "dirs": dirs,
              "ca": hashlib.sha256(CA_BUNDLE.read_bytes()).hexdigest()}

    def prepare(log: Log) -> Built:
        return Built([("", _static_base(users)), ("", _binary_layer(binary, dest, xattrs, dirs))], config)
    return Recipe(ref, inputs, prepare, binary.stat().st_size)


def _distroless_env() -> dict[str, str]:
    return {"PATH": DEFAULT_PATH, "SSL_CERT_FILE": str(CA_BUNDLE)}


def pause_recipe(ref: str, bin_dir: Optional[Path]) -> Recipe:
    """registry.k8s.io/pause: FROM scratch, /pause, USER 65535:65535, ENTRYPOINT ["/pause"]."""
    binary = _need_binary(bin_dir, "pause", ref)
    config = ImageConfig(user="65535:65535", env={"PATH": DEFAULT_PATH}, entrypoint=["/pause"])
    inputs = {"binary": _file_id(binary), "config": config.document([])}

    def prepare(log: Log) -> Built:
        return Built([("", _binary_layer(binary, "pause"))], config)
    return Recipe(ref, inputs, prepare, binary.stat().st_size)


def oauth2_proxy_recipe(ref: str, bin_dir: Optional[Path]) -> Recipe:
    """quay.io/oauth2-proxy/oauth2-proxy: distroless static:nonroot + /bin/oauth2-proxy."""
    binary = _need_binary(bin_dir, "oauth2-proxy", ref)
    config = ImageConfig(user=str(NONROOT), env=_distroless_env(), workdir="/home/nonroot",
                         entrypoint=["/bin/oauth2-proxy"])
    return _static_recipe(ref, binary, "bin/oauth2-proxy", config)


def dex_recipe(ref: str, bin_dir: Optional[Path]) -> Recipe:
    """ghcr.io/dexidp/dex: /usr/local/bin/dex as user dex (1001:1001), CMD dex serve CONFIG."""
    binary = _need_binary(bin_dir, "dex", ref)
    config = ImageConfig(user="dex:dex", env=_distroless_env(),
                         cmd=["dex", "serve", "/etc/dex/config.docker.yaml"])
    return _static_recipe(ref, binary, "usr/local/bin/dex", config, users=(("dex", 1001, 1001, "/home/dex"),),
                          dirs=(("etc/dex", 1001, 1001), ("var/dex", 1001, 1001), ("srv/dex", 0, 0)))


# cap_net_bind_service=+ep (`setcap` on upstream's binary): VFS_CAP_REVISION_2 | effective, permitted bit 10.
NET_BIND_SERVICE_CAPABILITY = struct.pack("<5I", 0x02000001, 1 << 10, 0, 0, 0)


def coredns_recipe(ref: str, bin_dir: Optional[Path]) -> Recipe:
    """registry.k8s.io/coredns/coredns: distroless static:nonroot + /coredns (cap_net_bind_service)."""
    binary = _need_binary(bin_dir, "coredns", ref)
    config = ImageConfig(user="nonroot:nonroot", env=_distroless_env(), workdir="/home/nonroot",
                         entrypoint=["/coredns"], exposed_ports=["53/tcp", "53/udp"])
    return _static_recipe(ref, binary, "coredns", config,
                          xattrs={"security.capability": NET_BIND_SERVICE_CAPABILITY})


# --- HAProxy, Redis, PostgreSQL from Debian ---------------------------------------------------------------

HAPROXY_ENTRYPOINT = b"""#!/bin/sh
set -e

# first arg is `-f` or `--some-option`
if [ "${1#-}" != "$1" ]; then
	set -- haproxy "$@"
fi

if [ "$1" = 'haproxy' ]; then
	shift # "haproxy"
	# if the user wants "haproxy", let's add a couple useful flags
	#   -W  -- "master-worker mode" (similar to the old "haproxy-systemd-wrapper"; allows for reload via "SIGUSR2")
	#   -db -- disables background mode
	set -- haproxy -W -db "$@"
fi

exec "$@"
"""


def haproxy_recipe(ref: str, bin_dir: Optional[Path] = None) -> Recipe:
    """docker.io/library/haproxy:2.6.x: Debian bookworm's haproxy, user haproxy 99:99, as upstream runs it."""
    rootfs = Rootfs("bookworm", ("ca-certificates",), "\n".join([
        "apt-get -q -y --no-install-recommends install haproxy",
        # Upstream's uid and gid 99: the package's postinst refuses a user below 100 made before it (adduser
        # takes it for no system user), so its own user is moved to 99 afterwards, with what it owns.
        "old_uid=$(id -u haproxy); old_gid=$(id -g haproxy)",
        "groupmod -g 99 haproxy && usermod -u 99 -g 99 haproxy",
        "find / -xdev -uid \"$old_uid\" -exec chown -h 99 {} +",
        "find / -xdev -gid \"$old_gid\" -exec chgrp -h 99 {} +",
        "mkdir -p /var/lib/haproxy && chown haproxy:haproxy /var/lib/haproxy",
        "test \"$(id -u haproxy):$(id -g haproxy)\" = 99:99",
        "mkdir -p /usr/local/etc/haproxy",
        "cp -R /etc/haproxy/errors /usr/local/etc/haproxy/errors",
        "ln -s ../../sbin/haproxy /usr/local/sbin/haproxy",
        "haproxy -v",
    ]), ("haproxy",))
    config = ImageConfig(user="haproxy", env={"PATH": DEFAULT_PATH}, entrypoint=["docker-entrypoint.sh"],
                         cmd=["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"], stop_signal="SIGUSR1")
    return _debian_recipe(ref, rootfs, "haproxy", config, {"usr/local/bin/docker-entrypoint.sh": HAPROXY_ENTRYPOINT})


REDIS_ENTRYPOINT = b"""#!/bin/sh
set -e

# first arg is `-f` or `--some-option`
# or first arg is `something.conf`
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

# allow the container to be started with `--user` (setpriv, where upstream has gosu)
if [ "$1" = 'redis-server' -a "$(id -u)" = '0' ]; then
	find . \\! -user redis -exec chown redis '{}' +
	exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

# set an appropriate umask (if one isn't set already)
um="$(umask)"
if [ "$um" = '0022' ]; then
	umask 0077
fi

# Upstream's image builds Redis with protected mode off by default; Debian's is on. Off, unless the
# arguments or the config file set it themselves.
if [ "$1" = 'redis-server' ]; then
	set_here=no
	for arg; do
		case "$arg" in
			--protected-mode) set_here=yes ;;
			*.conf) if [ -r "$arg" ] && grep -qi '^[[:space:]]*protected-mode' "$arg"; then set_here=yes; fi ;;
		esac
	done
	if [ "$set_here" = no ]; then
		set -- "$@" --protected-mode no
	fi
fi

exec "$@"
"""


def redis_recipe(ref: str, bin_dir: Optional[Path] = None) -> Recipe:
    """docker.io/library/redis:7.0.x: Debian bookworm's redis-server, user redis 999:999, WORKDIR /data."""
    rootfs = Rootfs("bookworm", ("ca-certificates",), "\n".join([
        "groupadd -r -g 999 redis",
        "useradd -r -g redis -u 999 redis",
        "apt-get -q -y --no-install-recommends install redis-server redis-tools",
        "mkdir /data && chown redis:redis /data",
        "redis-server --version",
    ]), ("redis-server", "redis-tools"))
    config = ImageConfig(env={"PATH": DEFAULT_PATH}, workdir="/data", entrypoint=["docker-entrypoint.sh"],
                         cmd=["redis-server"], exposed_ports=["6379/tcp"])
    return _debian_recipe(ref, rootfs, "redis-server", config, {"usr/local/bin/docker-entrypoint.sh": REDIS_ENTRYPOINT})


# The subset of the official image's docker-entrypoint.sh the program relies on (and a little more):
# POSTGRES_USER, POSTGRES_PASSWORD / POSTGRES_PASSWORD_FILE, POSTGRES_DB, POSTGRES_INITDB_ARGS,
# POSTGRES_HOST_AUTH_METHOD, PGDATA, /docker-entrypoint-initdb.d (*.sh, *.sql, *.sql.gz); a first
# argument starting with `-` is postgres' option; as root it steps down to `postgres`.
POSTGRES_ENTRYPOINT = b"""#!/usr/bin/env bash
set -Eeo pipefail

# usage: file_env VAR [DEFAULT]: VAR from $VAR or from the file $VAR_FILE names
file_env() {
	local var="$1" fileVar="${1}_FILE" def="${2:-}"
	if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
		printf >&2 'error: both %s and %s are set (but are exclusive)\\n' "$var" "$fileVar"
		exit 1
	fi
	local val="$def"
	if [ "${!var:-}" ]; then
		val="${!var}"
	elif [ "${!fileVar:-}" ]; then
		val="$(< "${!fileVar}")"
	fi
	export "$var"="$val"
	unset "$fileVar"
}

docker_create_db_directories() {
	local user; user="$(id -u)"
	mkdir -p "$PGDATA"
	chmod 00700 "$PGDATA" || :
	mkdir -p /var/run/postgresql || :
	chmod 03775 /var/run/postgresql || :
	if [ "$user" = '0' ]; then
		find "$PGDATA" \\! -user postgres -exec chown postgres '{}' +
		find /var/run/postgresql \\! -user postgres -exec chown postgres '{}' +
	fi
}

docker_setup_env() {
	file_env 'POSTGRES_PASSWORD'
	file_env 'POSTGRES_USER' 'postgres'
	file_env 'POSTGRES_DB' "$POSTGRES_USER"
	file_env 'POSTGRES_INITDB_ARGS'
	: "${POSTGRES_HOST_AUTH_METHOD:=}"
	declare -g DATABASE_ALREADY_EXISTS
	if [ -s "$PGDATA/PG_VERSION" ]; then
		DATABASE_ALREADY_EXISTS='true'
	fi
}

docker_verify_minimum_env() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ 'trust' != "$POSTGRES_HOST_AUTH_METHOD" ]; then
		cat >&2 <<-'EOE'
			Error: Database is uninitialized and superuser password is not specified.
			       Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), or POSTGRES_HOST_AUTH_METHOD=trust.
		EOE
		exit 1
	fi
}

docker_init_database_dir() {
	# shellcheck disable=SC2086
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS
}

pg_setup_hba_conf() {
	if [ "$1" = 'postgres' ]; then shift; fi
	local auth="${POSTGRES_HOST_AUTH_METHOD:-}"
	if [ -z "$auth" ]; then
		auth="$(postgres -C password_encryption "$@")"
	fi
	{ printf '\\n'; printf 'host all all all %s\\n' "$auth"; } >> "$PGDATA/pg_hba.conf"
}

docker_temp_server_start() {
	if [ "$1" = 'postgres' ]; then shift; fi
	set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
	PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

docker_temp_server_stop() {
	PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

docker_process_sql() {
	local query_runner=( psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc )
	if [ -n "$POSTGRES_DB" ]; then
		query_runner+=( --dbname "$POSTGRES_DB" )
	fi
	PGHOST= PGHOSTADDR= "${query_runner[@]}" "$@"
}

docker_setup_db() {
	local dbAlreadyExists
	dbAlreadyExists="$(POSTGRES_DB= docker_process_sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<-'EOSQL'
		SELECT 1 FROM pg_database WHERE datname = :'db' ;
	EOSQL
	)"
	if [ -z "$dbAlreadyExists" ]; then
		POSTGRES_DB= docker_process_sql --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
			CREATE DATABASE :"db" ;
		EOSQL
	fi
}

docker_process_init_files() {
	local f
	for f; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then printf '%s: running %s\\n' "$0" "$f"; "$f"
				else printf '%s: sourcing %s\\n' "$0" "$f"; . "$f"; fi ;;
			*.sql)    printf '%s: running %s\\n' "$0" "$f"; docker_process_sql -f "$f" ;;
			*.sql.gz) printf '%s: running %s\\n' "$0" "$f"; gunzip -c "$f" | docker_process_sql ;;
			*)        printf '%s: ignoring %s\\n' "$0" "$f" ;;
		esac
	done
}

_main() {
	if [ "${1:0:1}" = '-' ]; then
		set -- postgres "$@"
	fi
	if [ "$1" = 'postgres' ] && ! printf '%s\\n' "$@" | grep -qE '^(-C|--describe-config|-V|--version|--help|-\\?)$'; then
		docker_setup_env
		docker_create_db_directories
		if [ "$(id -u)" = '0' ]; then
			exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
		fi
		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			docker_verify_minimum_env
			ls /docker-entrypoint-initdb.d/ > /dev/null
			docker_init_database_dir
			pg_setup_hba_conf "$@"
			export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
			docker_temp_server_start "$@"
			docker_setup_db
			docker_process_init_files /docker-entrypoint-initdb.d/*
			docker_temp_server_stop
			unset PGPASSWORD
			printf '\\nPostgreSQL init process complete; ready for start up.\\n\\n'
		else
			printf '\\nPostgreSQL Database directory appears to contain a database; Skipping initialization\\n\\n'
		fi
	fi
	exec "$@"
}

_main "$@"
"""


def postgres_recipe(ref: str, bin_dir: Optional[Path] = None) -> Recipe:
    """postgres:17.x: Debian trixie's postgresql-17 (+ pgvector), user postgres 999:999, the official
    image's paths, locale and initialisation from the environment."""
    _, tag = split_ref(ref)
    major = tag.split(".")[0]
    rootfs = Rootfs("trixie", ("ca-certificates",), "\n".join([
        "groupadd -r postgres --gid=999",
        "useradd -r -g postgres --uid=999 --home-dir=/var/lib/postgresql --shell=/bin/bash postgres",
        "install --directory --owner postgres --group postgres --mode 1777 /var/lib/postgresql",
        "apt-get -q -y --no-install-recommends install locales less libnss-wrapper xz-utils zstd",
        "echo 'en_US.UTF-8 UTF-8' >> /etc/locale.gen && locale-gen && locale -a | grep -q 'en_US.utf8'",
        "apt-get -q -y --no-install-recommends install postgresql-common",
        "sed -ri 's/#(create_main_cluster) .*$/\\1 = false/' /etc/postgresql-common/createcluster.conf",
        f"apt-get -q -y --no-install-recommends install postgresql-{major} postgresql-{major}-pgvector",
        # The sample config as upstream edits it: listen on every address.
        f"dpkg-divert --add --rename --divert /usr/share/postgresql/postgresql.conf.sample.dpkg "
        f"/usr/share/postgresql/{major}/postgresql.conf.sample",
        "cp /usr/share/postgresql/postgresql.conf.sample.dpkg /usr/share/postgresql/postgresql.conf.sample",
        f"ln -s ../postgresql.conf.sample /usr/share/postgresql/{major}/",
        "sed -ri \"s!^#?(listen_addresses)\\s*=\\s*\\S+.*!\\1 = '*'!\" /usr/share/postgresql/postgresql.conf.sample",
        "grep -F \"listen_addresses = '*'\" /usr/share/postgresql/postgresql.conf.sample",
        "mkdir -p /docker-entrypoint-initdb.d",
        "install --directory --owner postgres --group postgres --mode 3777 /var/run/postgresql",
        "install --directory --owner postgres --group postgres --mode 1777 /var/lib/postgresql/data",
        f"/usr/lib/postgresql/{major}/bin/postgres --version",
    ]), (f"postgresql-{major}", f"postgresql-{major}-pgvector", "postgresql-common"))
    config = ImageConfig(
        env={"PATH": f"{DEFAULT_PATH}:/usr/lib/postgresql/{major}/bin", "LANG": "en_US.utf8", "PG_MAJOR": major,
             "PGDATA": "/var/lib/postgresql/data"},
        entrypoint=["docker-entrypoint.sh"], cmd=["postgres"], exposed_ports=["5432/tcp"], stop_signal="SIGINT")
    return _debian_recipe(ref, rootfs, f"postgresql-{major}", config,
                          {"usr/local/bin/docker-entrypoint.sh": POSTGRES_ENTRYPOINT}, pg_version=True)


def _debian_recipe(ref: str, rootfs: Rootfs, package: str, config: ImageConfig, files: dict[str, bytes],
                   pg_version: bool = False) -> Recipe:
    inputs = {**rootfs.inputs(), "config": config.document([]),
              "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}

    def prepare(log: Log) -> Built:
        rootfs.ensure(log)
        found = _check_version(ref, rootfs, package)
        image_config = config
        if pg_version:
            image_config = ImageConfig(**{**config.__dict__, "env": {**config.env, "PG_VERSION": found}})

        def extra(tar: tarfile.TarFile) -> None:
            add_dirs(tar, "usr/local/bin")
            for name, data in sorted(files.items()):
                add_file(tar, name, data, 0o755)
        return Built([_rootfs_layer(rootfs), ("", extra)], image_config)
    return Recipe(ref, inputs, prepare, 200 << 20)


# --- Langflow ---------------------------------------------------------------------------------------------

LANGFLOW_UID = 1000
# Python's own test suites, as the official python image deletes them (and the base interpreter's
# site-packages: the virtualenv does not see it).
_PY_SKIP_DIRS = {"test", "tests", "idle_test"}


def _venv_home(venv: Path) -> Path:
    cfg = venv / "pyvenv.cfg"
    try:
        text = cfg.read_text()
    except OSError:
        raise ImageError(f"{venv} is not a virtualenv (no pyvenv.cfg): install it with "
                         f"`python -m verify.install VERSION`") from None
    match = re.search(r"^home\s*=\s*(.+)$", text, re.M)
    if not match:
        raise ImageError(f"{cfg} names no `home` (the interpreter's bin folder)")
    return Path(match.group(1).strip())


def _elf_runpath_patch(data: bytes, image_dir: str, old_prefix: str, new_prefix: str) -> Optional[bytes]:
    """An ELF file whose DT_RUNPATH/DT_RPATH points into `old_prefix`: the same bytes with the path made
    `$ORIGIN`-relative (as `new_prefix` lays the tree out), or None when there is nothing to change.
    In place: the new string is shorter and padded with NULs, so no offsets move."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:  # 64-bit little-endian only
        return None
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, dynamic = [], None
    for index in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", data,
                                                                              phoff + index * phentsize)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return None
    entries, strtab = [], None
    for offset in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from("<qQ", data, offset)
        if tag == 0:
            break
        if tag == 5:
            strtab = value
        elif tag in (15, 29):
            entries.append(value)
    if strtab is None or not entries:
        return None
    base = next((off + strtab - vaddr for vaddr, off, size in loads if vaddr <= strtab < vaddr + size), None)
    if base is None:
        return None
    out = bytearray(data)
    changed = False
    for value in entries:
        start = base + value
        end = data.index(b"\0", start)
        old = data[start:end].decode()
        parts = []
        for item in old.split(":"):
            if item == old_prefix or item.startswith(old_prefix + "/"):
                target = new_prefix + item[len(old_prefix):]
                item = "$ORIGIN/" + os.path.relpath(target, image_dir)
            parts.append(item)
        new = ":".join(parts).encode()
        if new != old.encode():
            if len(new) > end - start:
                return None
            out[start:end] = new + b"\0" * (end - start - len(new))
            changed = True
    return bytes(out) if changed else None


def _python_layer(prefix: Path, dest: str = "usr/local") -> Layer:
    """The interpreter's installation at /usr/local, as the official python image has it: libpython found
    through a rewritten `$ORIGIN` RUNPATH, scripts' shebangs pointed at /usr/local/bin."""
    old = str(prefix)
    new = "/" + dest
    version_dir = next((p.name for p in (prefix / "lib").glob("python3.*") if p.is_dir()), "python3")

    def skip(rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        if rel.startswith(f"lib/{version_dir}/site-packages/"):
            return True
        if rel.startswith("bin/"):  # Python's own programs; the others are the base site-packages' scripts
            return not re.match(r"(python|pydoc|2to3)", name)
        if rel.startswith(f"lib/{version_dir}/") and name in _PY_SKIP_DIRS and (prefix / rel).is_dir():
            return True
        return name.startswith("libpython") and name.endswith(".a") or name in ("tkinter", "idlelib", "turtledemo") \
            or name.startswith("_tkinter.")

    def wants(rel: str) -> bool:
        return rel.startswith("bin/") or ".so" in rel.rsplit("/", 1)[-1]

    def transform(name: str, path: Path, data: bytes) -> Optional[bytes]:
        if data[:4] == b"\x7fELF":
            return _elf_runpath_patch(data, "/" + name.rsplit("/", 1)[0], old, new)
        first, sep, rest = data.partition(b"\n")
        if first.startswith(b"#!" + old.encode()):
            return b"#!" + new.encode() + first[2 + len(old):] + sep + rest
        return None

    def relink(rel: str, target: str) -> str:
        return new + target[len(old):] if target.startswith(old + "/") else target

    def layer(tar: tarfile.TarFile) -> None:
        add_dirs(tar, dest.rsplit("/", 1)[0]) if "/" in dest else None
        Tree(prefix, dest, keep_mtime=True, skip=skip, wants=wants, transform=transform, relink=relink).write(tar)
    return layer


def _venv_layer(venv: Path, python_home: str, dest: str = "app/.venv", uid: int = LANGFLOW_UID) -> Layer:
    """The virtualenv at /app/.venv, owned by 1000 (COPY --chown=1000): pyvenv.cfg's home, the python
    symlinks and the scripts' `#!<old venv>/bin/python` rewritten on the way; mtimes kept."""
    old = str(venv).encode()
    new = ("/" + dest).encode()
    old_home = str(_venv_home(venv))

    def skip(rel: str) -> bool:
        return rel in (".installed.json", ".lock")

    def wants(rel: str) -> bool:
        return rel == "pyvenv.cfg" or rel.startswith("bin/")

    def transform(name: str, path: Path, data: bytes) -> Optional[bytes]:
        if name.endswith("/pyvenv.cfg"):
            return re.sub(rb"^home\s*=.*$", b"home = " + python_home.encode(), data, flags=re.M)
        if data[:4] == b"\x7fELF" or old not in data:
            return None
        return data.replace(old, new)

    def relink(rel: str, target: str) -> str:
        if rel.startswith("bin/") and target.startswith(old_home + "/"):
            return python_home + target[len(old_home):]
        return target

    def layer(tar: tarfile.TarFile) -> None:
        add_dir(tar, dest.split("/")[0])
        Tree(venv, dest, uid=uid, gid=uid, keep_mtime=True, skip=skip, wants=wants, transform=transform,
             relink=relink).write(tar)
    return layer


def _python_runtime_packages(prefix: Path) -> list[str]:
    """The Debian packages the interpreter's binaries and extension modules link against (this machine's
    `ldd` and `dpkg -S`), as the official image keeps every library its /usr/local needs."""
    files = [p for p in (prefix / "bin").glob("python3.*") if not p.is_symlink()]
    files += [p for p in (prefix / "lib").glob("python3.*/lib-dynload/*.so") if "tkinter" not in p.name]
    libs: set[str] = set()
    done = subprocess.run(["ldd", *map(str, files)], capture_output=True, text=True)
    for line in done.stdout.splitlines():
        match = re.search(r"=>\s+(/\S+)", line)
        if match and not match.group(1).startswith(str(prefix)):
            libs.add(os.path.realpath(match.group(1)))
    packages: set[str] = set()
    missing = sorted(libs)
    # Debian 12 registers most libraries under /lib (merged /usr): ask for both spellings.
    for spell in (lambda lib: lib.replace("/usr/lib/", "/lib/", 1), lambda lib: lib):
        if not missing:
            break
        done = subprocess.run(["dpkg", "-S", *map(spell, missing)], capture_output=True, text=True)
        found = {}
        for line in done.stdout.splitlines():
            owners, _, path = line.partition(": ")
            found[path.strip()] = [o.split(":")[0].strip() for o in owners.split(",")]
        still = []
        for lib in missing:
            if spell(lib) in found:
                packages.update(found[spell(lib)])
            else:
                still.append(lib)
        missing = still
    if missing:
        raise ImageError(f"the interpreter {prefix} links against libraries no Debian package holds "
                         f"({', '.join(missing[:5])}): build Python from Debian's libraries")
    return sorted(packages - {"libc6"})


def langflow_rootfs(prefix: Path) -> Rootfs:
    """Debian bookworm as python:3.x-slim + upstream's `apt-get install git libpq5`, with the user."""
    packages = _python_runtime_packages(prefix)
    return Rootfs("bookworm", ("ca-certificates",), "\n".join([
        # python:3.x-slim's own packages and the libraries its /usr/local links against ...
        "apt-get -q -y --no-install-recommends install ca-certificates netbase tzdata " + " ".join(packages),
        # ... then upstream's `apt-get install -y git libpq5` (recommends and all).
        "apt-get -q -y install git libpq5",
        "useradd user -u 1000 -g 0 --no-create-home --home-dir /app/data",
    ]), ("git", "libpq5", *packages))


def langflow_recipe(ref: str, bin_dir: Optional[Path] = None, venv: Optional[Path] = None) -> Recipe:
    """langflowai/langflow:X.Y.Z: the image `docker/build_and_push.Dockerfile` makes, from the virtualenv
    `make verify` installs for that version (verify/install.py) instead of upstream's `uv sync`."""
    _, version = split_ref(ref)
    if venv is None:
        venv = _langflow_venv(version, ref)
    venv = Path(venv)
    marker = venv / ".installed.json"
    if not marker.exists():
        raise ImageError(f"{ref}: the Langflow {version} virtualenv {venv} is missing or half-built: "
                         f"install it with `python -m verify.install {version}` (or `make verify`)")
    home = _venv_home(venv)
    prefix = home.parent
    if not (prefix / "bin").is_dir():
        raise ImageError(f"{ref}: the virtualenv's interpreter {home} is gone: reinstall it "
                         f"(`python -m verify.install {version}` after removing {venv})")
    python_version = re.search(r"^version_info\s*=\s*(\S+)", (venv / "pyvenv.cfg").read_text(), re.M)
    py = python_version.group(1) if python_version else "3"
    py_short = ".".join(py.split(".")[:2])
    interpreter = prefix / "bin" / f"python{py_short}"
    istat = interpreter.stat()
    record = json.loads(marker.read_text())
    rootfs = langflow_rootfs(prefix)
    inputs = {"venv": str(venv), "installed": record, "python": str(prefix), "python_version": py,
              "interpreter": [istat.st_size, int(istat.st_mtime)], "uid": LANGFLOW_UID, **rootfs.inputs()}

    def prepare(log: Log) -> Built:
        rootfs.ensure(log)
        config = ImageConfig(
            user="user", workdir="/app", cmd=["langflow", "run"],
            env={"PATH": f"/app/.venv/bin:/usr/local/bin:{DEFAULT_PATH}", "LANG": "C.UTF-8",
                 "PYTHON_VERSION": py, "LANGFLOW_HOST": "0.0.0.0", "LANGFLOW_PORT": "7860"},
            labels={"org.opencontainers.image.title": "langflow",
                    "org.opencontainers.image.authors": "['Langflow']",
                    "org.opencontainers.image.licenses": "MIT",
                    "org.opencontainers.image.url": "https://github.com/langflow-ai/langflow",
                    "org.opencontainers.image.source": "https://github.com/langflow-ai/langflow",
                    "org.opencontainers.image.version": version})
        python_key = hashlib.sha256(_json({"python": inputs["python"], "interpreter": inputs["interpreter"],
                                           "v": RECIPES_VERSION})).hexdigest()[:16]
        venv_key = hashlib.sha256(_json({**inputs, "v": RECIPES_VERSION})).hexdigest()[:16]
        return Built([_rootfs_layer(rootfs), (f"python:{python_key}", _python_layer(prefix)),
                      (f"venv:{venv_key}", _venv_layer(venv, "/usr/local/bin"))], config)
    return Recipe(ref, inputs, prepare, int(record.get("bytes") or 0) + (1 << 30))


def _langflow_venv(version: str, ref: str) -> Path:
    # verify/ is this repository's (stdlib only); imported here so that localcluster imports without it.
    repo = Path(__file__).resolve().parent.parent
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    try:
        from verify import install
    except ImportError as error:
        raise ImageError(f"{ref}: cannot find Langflow's virtualenvs (verify/install.py: {error})") from None
    try:  # installed from its lock when missing: `make up` on a fresh machine needs no other step
        return install.ensure_langflow(version, log=lambda line: print(f"images: {line}", file=sys.stderr))
    except install.InstallError as error:
        raise ImageError(f"{ref}: {error}") from None


# --- the recipes, by reference -------------------------------------------------------------------------------

Builder = Callable[[str, Optional[Path]], Recipe]

RECIPES: dict[str, Builder] = {
    "registry.k8s.io/pause:3.10.1": pause_recipe,
    "docker.io/library/haproxy:2.6.12": haproxy_recipe,
    "docker.io/library/redis:7.0.15": redis_recipe,
    "quay.io/oauth2-proxy/oauth2-proxy:v7.15.6": oauth2_proxy_recipe,
    "ghcr.io/dexidp/dex:v2.45.1": dex_recipe,
    "registry.k8s.io/coredns/coredns:v1.12.1": coredns_recipe,
}
# Any version: the check that Debian gives it happens when the root file system is built.
PATTERNS: list[tuple[str, Builder]] = [
    (r"docker\.io/langflowai/langflow:\d+\.\d+\.\d+", langflow_recipe),
    (r"docker\.io/library/postgres:\d+\.\d+", postgres_recipe),
]


def recipe_for(ref: str, bin_dir: Optional[Path] = None) -> Recipe:
    name = normalize_ref(ref)
    builder = RECIPES.get(name)
    if builder is None:
        builder = next((b for pattern, b in PATTERNS if re.fullmatch(pattern, name)), None)
    if builder is None:
        known = ", ".join([*RECIPES, "langflowai/langflow:X.Y.Z", "postgres:MAJOR.MINOR"])
        raise ImageError(f"no recipe for {ref} (known: {known}): add one to localcluster/images.py")
    return builder(ref, Path(bin_dir) if bin_dir else None)


# --- containerd ---------------------------------------------------------------------------------------------

def _ctr(ctr: str, socket: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [ctr, "-a", socket, "-n", NAMESPACE, *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ImageError(f"{ctr} is missing: install containerd (`apt-get install containerd`)") from None
    except subprocess.TimeoutExpired:
        raise ImageError(f"`{' '.join(cmd)}` took over {timeout:.0f} s: is containerd at {socket} running?") from None


def image_labels(ctr: str, socket: str, ref: str) -> Optional[dict[str, str]]:
    """The labels of the image containerd holds under `ref` (normalised), or None when it has none such."""
    name = normalize_ref(ref)
    done = _ctr(ctr, socket, "images", "ls", f"name=={name}")
    if done.returncode != 0:
        raise ImageError(f"`ctr images ls` failed at {socket}: {done.stderr.strip()[-300:]} -- is containerd running?")
    for line in done.stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == name:
            labels = fields[-1]
            return {} if labels == "-" else dict(item.split("=", 1) for item in labels.split(",") if "=" in item)
    return None


def _unpacked(ctr: str, socket: str, name: str) -> bool:
    done = _ctr(ctr, socket, "images", "check", f"name=={name}")
    for line in done.stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == name:
            return "complete" in line and fields[-1].startswith("true")
    return False


def _check_free(path: Path, needed: int, what: str) -> None:
    probe = Path(path)
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise ImageError(f"{what} needs {needed / 2**30:.1f} GiB free on the file system of {probe}, which has "
                         f"{free / 2**30:.1f} GiB: free some space (e.g. old entries of {cache_dir()}, or "
                         f"`ctr -n {NAMESPACE} images rm` of images no longer used)")


def _digest_cache() -> Path:
    return cache_dir() / "layer-digests.json"


def _cached_digests(keys: list[str]) -> dict[str, tuple[str, int]]:
    try:
        known = json.loads(_digest_cache().read_text())
    except (OSError, ValueError):
        return {}
    return {key: tuple(known[key]) for key in keys if key and key in known}  # type: ignore[misc]


def _remember_digests(found: dict[str, tuple[str, int]]) -> None:
    if not found:
        return
    path = _digest_cache()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        known.update({key: list(value) for key, value in found.items()})
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
        os.replace(tmp, path)


def build_image(recipe: Recipe, log: Log = _quiet) -> tuple[Built, list[tuple[str, int]]]:
    """Prepare the recipe and know every layer's (diff_id, size) (cached by layer key)."""
    built = recipe.prepare(log)
    keys = [key for key, _ in built.layers]
    cached = _cached_digests(keys)
    digests, fresh = [], {}
    for key, layer in built.layers:
        if key in cached:
            digests.append(cached[key])
            continue
        path = getattr(layer, "tar_file", None)
        if path is not None:
            meta = path.with_suffix(".json")
            known = json.loads(meta.read_text()) if meta.exists() else {}
            value = (known["diff_id"], known["size"]) if "diff_id" in known else _copy_file(path, None)  # type: ignore
        else:
            started = time.monotonic()
            value = write_layer(layer)
            if time.monotonic() - started > 5:
                log(f"{recipe.ref}: layer {key or len(digests)} counted ({value[1] / 2**30:.2f} GiB) in "
                    f"{time.monotonic() - started:.0f} s")
        digests.append(value)
        if key:
            fresh[key] = value
    _remember_digests(fresh)
    return built, digests


def import_image(ctr: str, socket: str, recipe: Recipe, *, snapshotter: Optional[str] = None,
                 containerd_root: Optional[Path] = None, log: Log = _quiet) -> None:
    """Build `recipe` and stream it into containerd, then label it with the recipe's input hash."""
    built, digests = build_image(recipe, log)
    size = sum(s for _, s in digests)
    # The layer blobs are stored, then unpacked into snapshots: twice the layers' size, and some room.
    _check_free(containerd_root or cache_dir(), 2 * size + (512 << 20), f"importing {recipe.ref}")
    name = normalize_ref(recipe.ref)
    cmd = [ctr, "-a", socket, "-n", NAMESPACE, "images", "import",
           *([f"--snapshotter={snapshotter}"] if snapshotter else []), "-"]
    with tempfile.TemporaryFile() as output:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT)
        except FileNotFoundError:
            raise ImageError(f"{ctr} is missing: install containerd (`apt-get install containerd`)") from None
        try:
            assert proc.stdin is not None
            write_archive(proc.stdin, recipe.ref, [layer for _, layer in built.layers], built.config, digests)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
        output.seek(0)
        text = output.read().decode(errors="replace").strip()
    if code != 0:
        raise ImageError(f"`ctr images import` of {recipe.ref} failed (exit {code}): {text[-500:]}")
    done = _ctr(ctr, socket, "images", "label", name, f"{INPUT_LABEL}={recipe.input_hash()}")
    if done.returncode != 0:
        raise ImageError(f"`ctr images label {name}` failed: {done.stderr.strip()[-300:]}")


def ensure_imported(ctr_bin: str, socket: str, ref: str, recipe: Optional[Recipe] = None, *,
                    bin_dir: Optional[Path] = None, snapshotter: Optional[str] = None,
                    containerd_root: Optional[Path] = None, log: Log = _quiet) -> bool:
    """Import `ref` unless containerd already holds it, unpacked, from the same inputs. True when imported."""
    recipe = recipe or recipe_for(ref, bin_dir)
    wanted = recipe.input_hash()
    # One import of an image into one containerd at a time (test streams run side by side): a second
    # caller waits, then finds it imported.
    locks = cache_dir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(f"{os.path.realpath(socket)} {normalize_ref(ref)}".encode()).hexdigest()[:16]
    with open(locks / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        labels = image_labels(ctr_bin, socket, ref)
        if labels is not None and labels.get(INPUT_LABEL) == wanted and _unpacked(ctr_bin, socket, normalize_ref(ref)):
            return False
        if recipe.size_hint:
            _check_free(containerd_root or cache_dir(), 2 * recipe.size_hint, f"importing {ref}")
        started = time.monotonic()
        import_image(ctr_bin, socket, recipe, snapshotter=snapshotter, containerd_root=containerd_root, log=log)
        log(f"{ref}: imported in {time.monotonic() - started:.0f} s")
        return True


def ensure_images(refs: Iterable[str], *, socket: str, ctr: str = "ctr", bin_dir: Optional[Path] = None,
                  snapshotter: Optional[str] = None, containerd_root: Optional[Path] = None,
                  log: Log = _quiet) -> dict[str, float]:
    """Make sure containerd (`socket`, namespace k8s.io) holds each of `refs`, built here if needed.
    Returns the seconds each took (a warm one: the check alone). Raises ImageError (one line)."""
    seconds: dict[str, float] = {}
    recipes = {ref: recipe_for(ref, bin_dir) for ref in refs}  # every missing input reported before any work
    for ref, recipe in recipes.items():
        started = time.monotonic()
        ensure_imported(ctr, socket, ref, recipe, snapshotter=snapshotter, containerd_root=containerd_root, log=log)
        seconds[ref] = round(time.monotonic() - started, 2)
    return seconds


# --- CLI --------------------------------------------------------------------------------------------------------

def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcluster.images", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (cached) and import into containerd unless already there")
    build.add_argument("refs", nargs="+", metavar="REF")
    build.add_argument("--socket", required=True, help="containerd's socket")
    build.add_argument("--ctr", default=shutil.which("ctr") or "ctr")
    build.add_argument("--bin", type=Path, default=os.environ.get("LANGFLOW_TOOLCHAIN_BIN"),
                       help="the toolchain's bin dir (pause, dex, oauth2-proxy, coredns)")
    build.add_argument("--snapshotter")
    build.add_argument("--root", type=Path, help="containerd's root (for the free-space check)")
    archive = sub.add_parser("archive", help="write a docker-archive of one image to stdout (no containerd)")
    archive.add_argument("ref", metavar="REF")
    archive.add_argument("--bin", type=Path, default=os.environ.get("LANGFLOW_TOOLCHAIN_BIN"))
    sub.add_parser("list", help="the references there are recipes for")
    args = parser.parse_args(argv)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    try:
        if args.command == "list":
            print("\n".join([*RECIPES, *(pattern for pattern, _ in PATTERNS)]))
        elif args.command == "archive":
            recipe = recipe_for(args.ref, args.bin)
            built, digests = build_image(recipe, log)
            write_archive(sys.stdout.buffer, args.ref, [layer for _, layer in built.layers], built.config, digests)
        else:
            for ref, took in ensure_images(args.refs, socket=args.socket, ctr=args.ctr, bin_dir=args.bin,
                                           snapshotter=args.snapshotter, containerd_root=args.root, log=log).items():
                print(f"{ref}\t{took:.1f} s")
    except ImageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
