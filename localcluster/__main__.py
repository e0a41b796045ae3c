"""CLI: python -m localcluster up|down|status --dir DIR [--bin BIN_DIR]"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import daemon, forward


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcluster",
        description="Run a local Kubernetes control plane (kwok nodes) for tests.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{up,down,status,forward}")

    def common(p: argparse.ArgumentParser, needs_bin: bool = False) -> None:
        p.add_argument("--dir", required=True, type=Path,
                       help="working directory (kubeconfig, logs, state)")
        if needs_bin:
            default = os.environ.get("LANGFLOW_TOOLCHAIN_BIN")
            p.add_argument("--bin", type=Path, default=Path(default) if default else None,
                           required=default is None,
                           help="directory with etcd, kube-apiserver, kube-controller-manager, "
                                "kube-scheduler, kwok (default: $LANGFLOW_TOOLCHAIN_BIN)")
            p.add_argument("--timeout", type=float, default=300.0,
                           help="start-up timeout in seconds (default 300)")
            p.add_argument("--node", choices=("auto", "real", "simulated"), default="simulated",
                           help="real: pods run as containers on this machine (root, containerd); "
                                "simulated: kwok nodes; auto: real where it can start (default simulated)")

    common(sub.add_parser("up", help="start a cluster in the background; prints the kubeconfig path"),
           needs_bin=True)
    p_down = sub.add_parser("down", help="stop the cluster and wait for all its processes")
    common(p_down)
    p_down.add_argument("--timeout", type=float, default=60.0)
    common(sub.add_parser("status", help="show state as JSON (exit 0 = running and healthy)"))
    p_forward = sub.add_parser("forward", help="serve a Service of the cluster on 127.0.0.1:PORT (real node)")
    common(p_forward)
    p_forward.add_argument("--service", required=True, help="NAMESPACE/NAME:PORT")
    p_forward.add_argument("--listen", type=int, required=True, help="the port on 127.0.0.1")
    common(sub.add_parser("_supervise"), needs_bin=True)  # internal: the detached supervisor

    args = parser.parse_args(argv)
    if args.command == "up":
        return daemon.up(args.dir, args.bin, args.timeout, args.node)
    if args.command == "down":
        return daemon.down(args.dir, args.timeout)
    if args.command == "status":
        return daemon.status(args.dir)
    if args.command == "_supervise":
        return daemon.supervise(args.dir.absolute(), args.bin.absolute(), args.timeout, args.node)
    if args.command == "forward":
        return forward.request(args.dir.absolute(), args.service, args.listen)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
