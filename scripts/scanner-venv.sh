#!/usr/bin/env bash
# The Kubernetes scanner's virtualenv (checkov, scanner/requirements.txt): its own, apart from the project's, so
# that checkov's many dependencies never meet the project's lock; built and cached as scripts/venv.sh builds
# every virtualenv. Prints the virtualenv's folder (the last and only line on stdout); progress goes to stderr.
# Usage: scripts/scanner-venv.sh [python]   (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/venv.sh "${1:-python3}" - scanner/requirements.txt checkov
