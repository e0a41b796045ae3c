"""What the Langflow workload manages itself, so that config cannot override it.

Both sides use this module: the validation rules refuse extra env, volumes and
mounts that collide with these, and the workload spec
(`components/langflow_spec.py`) sets exactly these (a test holds it to that).
It is plain data so that config never imports components.
"""

from __future__ import annotations

from typing import Optional

DATA_DIR = "/app/data"  # LANGFLOW_CONFIG_DIR, HOME, the SQLite folder
TMP_DIR = "/tmp"
CONTAINER_NAME = "langflow"

# Every env var the workload may set, in any configuration, and the config key
# an operator changes instead. Langflow reads `LANGFLOW_*` case-insensitively,
# so names are compared upper-cased.
MANAGED_ENV = {
    "HOME": "nothing: Langflow and its libraries write below HOME, so it is the data folder",
    "LANGFLOW_HOST": "nothing: Langflow listens on every pod address",
    "LANGFLOW_PORT": "service.port (the container port is fixed)",
    "LANGFLOW_CONFIG_DIR": "nothing: it is the data volume",
    "LANGFLOW_ALEMBIC_LOG_FILE": "nothing: it is kept on the writable /tmp",
    "LANGFLOW_DATABASE_URL": "database",
    "LANGFLOW_AUTO_LOGIN": "auth.enabled",
    "LANGFLOW_SUPERUSER": "auth.superuser",
    "LANGFLOW_SUPERUSER_PASSWORD": "auth.superuser_password",
    "LANGFLOW_SECRET_KEY": "auth.secret_key",
    "LANGFLOW_NEW_USER_IS_ACTIVE": "auth.new_user_is_active",
    "LANGFLOW_ENABLE_SUPERUSER_CLI": "auth.enable_superuser_cli",
    "LANGFLOW_ACCESS_TOKEN_EXPIRE_SECONDS": "auth.access_token_expire_seconds",
    "LANGFLOW_REFRESH_TOKEN_EXPIRE_SECONDS": "auth.refresh_token_expire_seconds",
    "LANGFLOW_LOAD_FLOWS_PATH": "flows",
    "LANGFLOW_BACKEND_ONLY": "runtime.backend_only",
    "LANGFLOW_WORKERS": "runtime.workers",
    "LANGFLOW_LOG_LEVEL": "runtime.log_level",
    "LANGFLOW_LOG_ENV": "nothing: logs are JSON lines for the cluster's log collector",
    "LANGFLOW_MAX_FILE_SIZE_UPLOAD": "runtime.max_file_size_upload_mb",
    "LANGFLOW_DO_NOT_TRACK": "nothing: telemetry stays off (air-gapped platforms have no egress)",
    "LANGFLOW_EVENT_DELIVERY": "replicas and runtime.workers (several processes need direct delivery)",
}

# Pod volumes the workload defines itself.
MANAGED_VOLUMES = ("data", "tmp", "flows")
# Fixed mount paths (the flows folder is configurable: flows.mount_path).
MANAGED_PATHS = (DATA_DIR, TMP_DIR)


def managed_env_source(name: str) -> Optional[str]:
    """The config key behind a managed variable, matched as Langflow matches it; None if unmanaged."""
    return MANAGED_ENV.get(name.upper())
