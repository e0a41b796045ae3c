"""localcluster/images.py: the docker-archive writer (fast, no containerd) and, marked `integration`,
an import and a run of the pause image in a throwaway containerd."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from localcluster import images
from localcluster.images import (FIXED_MTIME, ImageConfig, ImageError, Tree, add_dir, add_file, add_symlink,
                                 normalize_ref, upstream_version, write_archive, write_layer)


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def _layer(tar: tarfile.TarFile) -> None:
    add_dir(tar, "etc")
    add_file(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    add_symlink(tar, "etc/alias", "passwd")
    add_file(tar, "pause", b"\x7fELF-not-really", 0o755, uid=65535, gid=65535)


def _archive(layers=(_layer,), ref="registry.k8s.io/pause:3.10.1", **config) -> bytes:
    out = io.BytesIO()
    write_archive(out, ref, list(layers), ImageConfig(**config))
    return out.getvalue()


# --- layers ---------------------------------------------------------------------------------------

def test_a_layer_is_the_same_bytes_every_time():
    first, second = io.BytesIO(), io.BytesIO()
    assert write_layer(_layer, first) == write_layer(_layer, second)
    assert first.getvalue() == second.getvalue()
    digest, size = write_layer(_layer)
    assert digest == "sha256:" + hashlib.sha256(first.getvalue()).hexdigest() and size == len(first.getvalue())


def test_layer_entries_have_numeric_owners_no_names_and_the_fixed_time():
    out = io.BytesIO()
    write_layer(_layer, out)
    members = {m.name: m for m in _members(out.getvalue())}
    assert list(members) == ["etc", "etc/passwd", "etc/alias", "pause"]
    pause = members["pause"]
    assert (pause.uid, pause.gid, pause.uname, pause.gname, pause.mode) == (65535, 65535, "", "", 0o755)
    assert all(m.mtime == FIXED_MTIME for m in members.values())
    assert members["etc/alias"].issym() and members["etc/alias"].linkname == "passwd"


def test_a_tree_is_sorted_owned_as_told_and_keeps_mtimes_and_hard_links(tmp_path):
    src = tmp_path / "venv"
    (src / "lib").mkdir(parents=True)
    (src / "b.py").write_text("b = 1\n")
    (src / "a.py").write_text("a = 1\n")
    os.link(src / "a.py", src / "lib" / "a-again.py")
    (src / "skipped").write_text("x")
    os.utime(src / "a.py", (1600000000.7, 1600000000.7))
    tree = Tree(src, "app/.venv", uid=1000, gid=1000, keep_mtime=True, skip=lambda rel: rel == "skipped")
    out = io.BytesIO()
    write_layer(tree.write, out)
    members = {m.name: m for m in _members(out.getvalue())}
    assert list(members) == ["app/.venv", "app/.venv/a.py", "app/.venv/b.py", "app/.venv/lib",
                             "app/.venv/lib/a-again.py"]
    assert members["app/.venv/a.py"].mtime == 1600000000  # what a .pyc compares: whole seconds
    assert {(m.uid, m.gid) for m in members.values()} == {(1000, 1000)}
    again = members["app/.venv/lib/a-again.py"]
    assert again.islnk() and again.linkname == "app/.venv/a.py"


def test_the_venv_layer_points_the_venv_at_its_new_place(tmp_path):
    home = tmp_path / "python" / "bin"
    home.mkdir(parents=True)
    venv = tmp_path / "langflow-1.6.4-abc"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = {home}\nversion_info = 3.11.7\n")
    (venv / "bin" / "python").symlink_to(home / "python3.11")
    (venv / "bin" / "python3").symlink_to("python")
    (venv / "bin" / "langflow").write_text(f"#!{venv}/bin/python\nimport sys\n")
    (venv / ".installed.json").write_text("{}")
    out = io.BytesIO()
    write_layer(images._venv_layer(venv, "/usr/local/bin"), out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert "app/.venv/.installed.json" not in members
        assert tar.extractfile("app/.venv/pyvenv.cfg").read().decode().startswith("home = /usr/local/bin\n")
        assert tar.extractfile("app/.venv/bin/langflow").read() == b"#!/app/.venv/bin/python\nimport sys\n"
    assert members["app"].uid == 0 and members["app/.venv/bin/langflow"].uid == 1000
    assert members["app/.venv/bin/python"].linkname == "/usr/local/bin/python3.11"
    assert members["app/.venv/bin/python3"].linkname == "python"


def _elf_with_runpath(runpath: bytes) -> bytes:
    """A minimal 64-bit ELF: one PT_LOAD over the file, a PT_DYNAMIC with DT_STRTAB and DT_RUNPATH."""
    strtab = b"\0libpython3.11.so.1.0\0" + runpath + b"\0"
    header_size, ph_size = 64, 56
    dyn_off = header_size + 2 * ph_size
    str_off = dyn_off + 3 * 16
    dynamic = struct.pack("<qQqQqQ", 5, str_off, 29, strtab.index(runpath), 0, 0)
    size = str_off + len(strtab)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, header_size, 0, 0, header_size, ph_size, 2, 64, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, size, size, 0x1000)
    dyn = struct.pack("<IIQQQQQQ", 2, 6, dyn_off, dyn_off, dyn_off, len(dynamic), len(dynamic), 8)
    return header + load + dyn + dynamic + strtab


def test_the_interpreter_finds_libpython_beside_itself_after_the_move():
    old = "/root/.pyenv/versions/3.11.7"
    data = _elf_with_runpath(f"{old}/lib".encode())
    patched = images._elf_runpath_patch(data, "/usr/local/bin", old, "/usr/local")
    assert len(patched) == len(data)
    assert b"$ORIGIN/../lib\0" in patched and old.encode() not in patched
    assert images._elf_runpath_patch(patched, "/usr/local/bin", old, "/usr/local") is None  # nothing left to do
    assert images._elf_runpath_patch(b"#!/bin/sh\n", "/usr/local/bin", old, "/usr/local") is None


# --- the archive ----------------------------------------------------------------------------------

def test_the_archive_is_a_docker_archive_with_the_manifest_last():
    data = _archive(user="65535:65535", entrypoint=["/pause"])
    names = [m.name for m in _members(data)]
    assert names[-1] == "manifest.json" and names[-2].endswith(".json") and names[0].endswith("/layer.tar")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert len(manifest) == 1 and manifest[0]["RepoTags"] == ["registry.k8s.io/pause:3.10.1"]
        config_bytes = tar.extractfile(manifest[0]["Config"]).read()
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()
    config = json.loads(config_bytes)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    assert manifest[0]["Config"] == hashlib.sha256(config_bytes).hexdigest() + ".json"
    assert manifest[0]["Layers"] == [diff_id.split(":")[1] + "/layer.tar"]
    assert config["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    assert config["config"]["User"] == "65535:65535" and config["config"]["Entrypoint"] == ["/pause"]
    assert len(config["history"]) == 1


def test_the_archive_is_deterministic_and_its_config_says_what_was_asked():
    config = dict(user="user", workdir="/app", cmd=["langflow", "run"], env={"PATH": "/app/.venv/bin:/usr/bin",
                  "LANGFLOW_PORT": "7860"}, exposed_ports=["7860/tcp"], labels={"b": "2", "a": "1"},
                  stop_signal="SIGINT")
    first = _archive([_layer, lambda tar: add_file(tar, "x", b"x")], ref="langflowai/langflow:1.6.4", **config)
    assert first == _archive([_layer, lambda tar: add_file(tar, "x", b"x")], ref="langflowai/langflow:1.6.4",
                             **config)
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        doc = json.load(tar.extractfile(manifest["Config"]))["config"]
    assert len(manifest["Layers"]) == 2
    assert doc == {"User": "user", "WorkingDir": "/app", "Cmd": ["langflow", "run"],
                   "Env": ["PATH=/app/.venv/bin:/usr/bin", "LANGFLOW_PORT=7860"],
                   "ExposedPorts": {"7860/tcp": {}}, "Labels": {"a": "1", "b": "2"}, "StopSignal": "SIGINT"}


def test_known_digests_are_used_and_a_layer_that_changed_is_caught():
    digests = images.layer_digests([_layer])
    out = io.BytesIO()
    write_archive(out, "r/x:1", [_layer], ImageConfig(), digests)
    assert out.getvalue() == _archive([_layer], ref="r/x:1")
    with pytest.raises(ImageError, match="came out different"):
        write_archive(io.BytesIO(), "r/x:1", [_layer], ImageConfig(), [("sha256:" + "0" * 64, digests[0][1])])


def test_a_file_capability_travels_as_a_pax_xattr():
    out = io.BytesIO()
    write_layer(lambda tar: add_file(tar, "coredns", b"bin", 0o755,
                                     xattrs={"security.capability": images.NET_BIND_SERVICE_CAPABILITY}), out)
    member = _members(out.getvalue())[0]
    value = member.pax_headers["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape")
    assert value == images.NET_BIND_SERVICE_CAPABILITY
    assert struct.unpack("<5I", value)[:2] == (0x02000001, 1 << 10)


# --- references, versions, errors ---------------------------------------------------------------------

@pytest.mark.parametrize("ref, name", [
    ("langflowai/langflow:1.6.4", "docker.io/langflowai/langflow:1.6.4"),
    ("postgres:17.12", "docker.io/library/postgres:17.12"),
    ("docker.io/library/haproxy:2.6.12", "docker.io/library/haproxy:2.6.12"),
    ("docker.io/redis:7.0.15", "docker.io/library/redis:7.0.15"),
    ("registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10.1"),
    ("localhost:5000/x/y:1", "localhost:5000/x/y:1"),
    ("busybox", "docker.io/library/busybox:latest"),
])
def test_references_are_normalised_as_containerd_names_them(ref, name):
    assert normalize_ref(ref) == name


@pytest.mark.parametrize("debian, upstream", [
    ("2.6.12-1+deb12u4", "2.6.12"), ("5:7.0.15-1~deb12u10", "7.0.15"), ("17.12-0+deb13u1", "17.12"),
])
def test_debian_versions_map_to_upstream_ones(debian, upstream):
    assert upstream_version(debian) == upstream


def test_every_pinned_default_has_a_recipe():
    from settings.ambassador import HAPROXY_DEFAULT_TAG
    from settings.edge import OAUTH2_PROXY_DEFAULT_TAG, REDIS_DEFAULT_TAG
    for ref in (f"docker.io/library/haproxy:{HAPROXY_DEFAULT_TAG}", f"docker.io/library/redis:{REDIS_DEFAULT_TAG}",
                f"quay.io/oauth2-proxy/oauth2-proxy:{OAUTH2_PROXY_DEFAULT_TAG}"):
        assert ref in images.RECIPES


def test_errors_say_what_is_missing_and_how_to_fix_it(tmp_path, monkeypatch):
    with pytest.raises(ImageError, match=r"pause, which is missing: build the toolchain"):
        images.recipe_for("registry.k8s.io/pause:3.10.1", tmp_path)
    with pytest.raises(ImageError, match=r"no recipe for nginx:1.25"):
        images.recipe_for("nginx:1.25", tmp_path)
    with pytest.raises(ImageError, match=r"virtualenv .* is missing or half-built: install it with"):
        images.langflow_recipe("langflowai/langflow:9.9.9", venv=tmp_path / "nothing")
    with pytest.raises(ImageError, match=r"no lock for Langflow 9\.9\.9"):
        images.recipe_for("langflowai/langflow:9.9.9")
    monkeypatch.setattr(images.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10, 9, 1 << 30))
    with pytest.raises(ImageError, match=r"needs 4\.0 GiB free .* has 1\.0 GiB: free some space"):
        images._check_free(tmp_path, 4 << 30, "importing x")


def test_a_recipe_input_hash_follows_its_binary(tmp_path):
    binary = tmp_path / "pause"
    binary.write_bytes(b"one")
    binary.chmod(0o755)
    first = images.recipe_for("registry.k8s.io/pause:3.10.1", tmp_path).input_hash()
    assert first == images.recipe_for("registry.k8s.io/pause:3.10.1", tmp_path).input_hash()
    binary.write_bytes(b"two")
    assert images.recipe_for("registry.k8s.io/pause:3.10.1", tmp_path).input_hash() != first


def test_the_debian_mirror_can_be_overridden(monkeypatch):
    monkeypatch.setenv("LOCALCLUSTER_DEBIAN_MIRROR", "http://mirror.invalid/debian")
    monkeypatch.setenv("LOCALCLUSTER_DEBIAN_SECURITY_MIRROR", "http://mirror.invalid/debian-security")
    assert images.debian_mirrors() == ("http://mirror.invalid/debian", "http://mirror.invalid/debian-security")


# --- integration: a throwaway containerd ----------------------------------------------------------------

PAUSE_C = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void down(int signo) { exit(0); }
static void reap(int signo) { while (waitpid(-1, NULL, WNOHANG) > 0); }
int main(void) {
  struct sigaction d = {.sa_handler = down}, r = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  sigaction(SIGINT, &d, NULL); sigaction(SIGTERM, &d, NULL); sigaction(SIGCHLD, &r, NULL);
  for (;;) pause();
}
"""


def _unavailable(reason: str):
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"containerd test unavailable: {reason}", pytrace=False)
    pytest.skip(f"containerd test unavailable: {reason}")


@pytest.fixture
def containerd():
    """A containerd of its own (root, state and socket in a temp dir, no CRI plugin), stopped afterwards."""
    tools = {name: shutil.which(name) for name in ("containerd", "ctr", "runc")}
    missing = [name for name, path in tools.items() if not path]
    if missing:
        _unavailable(f"{', '.join(missing)} not installed (apt-get install containerd runc)")
    if os.geteuid() != 0:
        _unavailable("needs root")
    work = Path(tempfile.mkdtemp(prefix="lc-ctd-", dir="/tmp"))  # a short socket path
    socket = work / "containerd.sock"
    (work / "config.toml").write_text(
        f'version = 2\nroot = "{work}/root"\nstate = "{work}/state"\n'
        f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "{socket}"\n')
    log = open(work / "containerd.log", "w")
    proc = subprocess.Popen([tools["containerd"], "--config", str(work / "config.toml")], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while subprocess.run([tools["ctr"], "-a", str(socket), "version"], capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                _unavailable(f"containerd did not start: {(work / 'containerd.log').read_text()[-500:]}")
            time.sleep(0.2)
        yield {"socket": str(socket), "ctr": tools["ctr"], "work": work}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        images._remove_work(work)


@pytest.fixture
def pause_bin(tmp_path) -> Path:
    """The toolchain's pause ($LANGFLOW_TOOLCHAIN_BIN/pause), else one compiled here (static)."""
    override = os.environ.get("LANGFLOW_TOOLCHAIN_BIN")
    if override and os.access(Path(override) / "pause", os.X_OK):
        return Path(override)
    gcc = shutil.which("gcc")
    if not gcc:
        _unavailable("no pause binary ($LANGFLOW_TOOLCHAIN_BIN/pause) and no gcc to build one")
    (tmp_path / "pause.c").write_text(PAUSE_C)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    done = subprocess.run([gcc, "-Os", "-static", "-o", str(bin_dir / "pause"), str(tmp_path / "pause.c")],
                          capture_output=True, text=True)
    if done.returncode != 0:
        _unavailable(f"gcc -static failed (apt-get install libc6-dev): {done.stderr[-300:]}")
    return bin_dir


@pytest.mark.integration
def test_pause_is_imported_once_and_runs_until_sigterm(containerd, pause_bin):
    ref = "registry.k8s.io/pause:3.10.1"
    socket, ctr = containerd["socket"], containerd["ctr"]
    cold = images.ensure_images([ref], socket=socket, ctr=ctr, bin_dir=pause_bin)
    assert list(cold) == [ref]
    labels = images.image_labels(ctr, socket, ref)
    assert labels[images.INPUT_LABEL] == images.recipe_for(ref, pause_bin).input_hash()
    assert images.ensure_imported(ctr, socket, ref, bin_dir=pause_bin) is False  # warm: nothing imported

    base = [ctr, "-a", socket, "-n", images.NAMESPACE]
    run = subprocess.Popen([*base, "run", "--rm", ref, "pause-test"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while "RUNNING" not in subprocess.run([*base, "task", "ls"], capture_output=True, text=True).stdout:
            assert run.poll() is None, run.stdout.read()
            assert time.monotonic() < deadline, "pause did not start"
            time.sleep(0.2)
        info = json.loads(subprocess.run([*base, "container", "info", "pause-test"], capture_output=True,
                                         text=True, check=True).stdout)
        assert info["Spec"]["process"]["user"]["uid"] == 65535
        assert info["Spec"]["process"]["args"] == ["/pause"]
        subprocess.run([*base, "task", "kill", "-s", "SIGTERM", "pause-test"], check=True)
        assert run.wait(20) == 0
    finally:
        if run.poll() is None:
            subprocess.run([*base, "task", "kill", "-s", "SIGKILL", "pause-test"], capture_output=True)
            run.wait(20)


@pytest.mark.integration
def test_a_changed_input_is_imported_again(containerd, pause_bin, tmp_path):
    ref = "registry.k8s.io/pause:3.10.1"
    socket, ctr = containerd["socket"], containerd["ctr"]
    assert images.ensure_imported(ctr, socket, ref, bin_dir=pause_bin) is True
    other = tmp_path / "other-bin"
    other.mkdir()
    shutil.copy2(pause_bin / "pause", other / "pause")
    with open(other / "pause", "ab") as handle:  # still the same program, another input
        handle.write(b"\0")
    assert images.ensure_imported(ctr, socket, ref, bin_dir=other) is True
    assert images.ensure_imported(ctr, socket, ref, bin_dir=other) is False
    assert images.image_labels(ctr, socket, ref)[images.INPUT_LABEL] == images.recipe_for(ref, other).input_hash()
