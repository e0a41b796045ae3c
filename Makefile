# Langflow on Kubernetes. `make help` lists the targets.
STACK ?= dev
PYTHON ?= python3
VENV := .venv
STATE_DIR ?= $(HOME)/.local/state/langflow-pulumi
export LANGFLOW_STATE_DIR := $(STATE_DIR)

.PHONY: help venv toolchain test unit up preview destroy recover releases rollback restore docs lock cluster-up \
	cluster-down benchmark verify langflow-lock sync-flows scanner-lock

help:
	@echo "make up|preview|destroy [STACK=dev]   deploy / preview / remove a stack (default dev)"
	@echo "make up ATOMIC=1 [MESSAGE=...]       a release that returns to the live one if it fails"
	@echo "make releases [STACK=dev]            the stack's releases, from its history; the live one marked"
	@echo "make rollback [TO=n] [FLOWS=keep]    back to the previous release (or release n), files included;"
	@echo "                                     across a schema change only with CONFIRM=restore (restores the database)"
	@echo "make restore FROM=<backup|latest> CONFIRM=restore   the database as a backup holds it"
	@echo "make recover [STACK=dev]             settle what an interrupted update left (up, rollback and"
	@echo "                                     destroy do this first by themselves); README, runbook"
	@echo "make test                            every test: unit, mock and integration (builds the toolchain)"
	@echo "make unit                            unit and mock tests only (no toolchain needed)"
	@echo "make verify [STACK=dev] [LANGFLOW=v]  run the stack's Langflow container for real and check it"
	@echo "make sync-flows STACK=s URL=u        apply the stack's flows to the Langflow at URL through its API"
	@echo "                                     (credentials: LANGFLOW_API_KEY, or LANGFLOW_SUPERUSER[_PASSWORD])"
	@echo "make langflow-lock VERSION=x.y.z     pin a Langflow release for make verify (verify/locks/)"
	@echo "make toolchain                       build pulumi, plugins and the local control plane; prints the bin dir"
	@echo "make cluster-up|cluster-down         start / stop the local cluster (a real node where it can run)"
	@echo "make benchmark                       this program and Helm side by side; writes the README's tables (~20 min)"
	@echo "make docs                            regenerate Pulumi.yaml and the README config reference"
	@echo "make lock                            re-resolve requirements.txt from requirements.in"
	@echo "make scanner-lock                    re-resolve scanner/requirements.txt (checkov) from its .in"

# Kept outside the repo, keyed by the lock (scripts/venv.sh): a fresh clone links to it at once.
$(VENV)/.installed: requirements.txt
	bash scripts/venv.sh $(PYTHON) $(VENV)
	touch $@

venv: $(VENV)/.installed

toolchain:
	@bash toolchain/build.sh

unit: venv
	$(VENV)/bin/python -m pytest -m "not integration and not langflow and not scanner"

# The stack's Langflow container, run for real (a release from PyPI, in a sandbox like the pod).
verify: venv
	$(VENV)/bin/python -m verify --stack $(STACK) $(if $(LANGFLOW),--langflow-version $(LANGFLOW))

# The flow sync of `pulumi up` (flows.update: sync), by hand against any Langflow (flowsync/).
sync-flows: venv
	$(VENV)/bin/python -m flowsync --stack $(STACK) --url "$(URL)"

langflow-lock: venv
	$(VENV)/bin/python -m verify.install --lock $(VERSION)

# Every test. Integration tests need the toolchain; with CI=true a missing tool fails them.
test: venv
	@bash scripts/test.sh

# Releases run on Pulumi's Automation API (releases/), in the stack's environment. API_OUTAGE: seconds
# without an answer from the Kubernetes API server after which an update is stopped (default 60).
RELEASES = bash scripts/stack-env.sh $(STACK) $(VENV)/bin/python -m releases $(if $(API_OUTAGE),--api-outage-seconds $(API_OUTAGE))

# CONFIRM=restore: allow overwriting the database with a backup (a rollback across a schema change, a restore).
CONFIRMED = $(if $(filter restore,$(CONFIRM)),--confirm-restore)

up: venv
	$(RELEASES) up --stack $(STACK) --message "$${MESSAGE:-make up}" $(if $(filter 1 true yes,$(ATOMIC)),--atomic) $(CONFIRMED)

releases: venv
	@$(RELEASES) list --stack $(STACK)

rollback: venv
	$(RELEASES) rollback --stack $(STACK) $(if $(TO),--to $(TO)) $(if $(filter keep,$(FLOWS)),--keep-flows) $(CONFIRMED)

restore: venv
	$(RELEASES) restore --stack $(STACK) --from "$(FROM)" $(CONFIRMED)

# With the policy pack (policy/): a mandatory policy broken fails the preview; advisory ones warn.
preview: venv
	bash scripts/pulumi.sh $(STACK) preview --diff --policy-pack policy

destroy: venv
	# Protected resources (the data volume, its namespace, generated secrets) stay; see README, day-2 operations.
	$(RELEASES) destroy --stack $(STACK)

recover: venv
	$(RELEASES) recover --stack $(STACK)

cluster-up: venv
	@bin=$$(bash toolchain/build.sh | tail -n 1) && \
	  $(VENV)/bin/python -m localcluster up --dir $(STATE_DIR)/local-cluster --bin $$bin --node $${LANGFLOW_LOCAL_NODE:-auto}

cluster-down: venv
	$(VENV)/bin/python -m localcluster down --dir $(STATE_DIR)/local-cluster

docs: venv
	$(VENV)/bin/python -m settings.reference

lock:
	$(PYTHON) -m piptools compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	  --no-emit-index-url -o requirements.txt requirements.in

# checkov's own lock (docs/security-scan.md): its dependencies stay out of requirements.txt.
scanner-lock:
	cd scanner && $(PYTHON) -m piptools compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	  --no-emit-index-url -o requirements.txt requirements.in

benchmark: venv
	@bin=$$(bash toolchain/build.sh | tail -n 1) && \
	  LANGFLOW_TOOLCHAIN_BIN=$$bin $(VENV)/bin/python scripts/benchmark.py --write-readme
