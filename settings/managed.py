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
TRUSTED_CA_DIR = "/etc/langflow/trusted-ca"  # the platform's CA bundle (trusted_ca)
TRUSTED_CA_VOLUME = "trusted-ca"
CONTAINER_NAME = "langflow"
CONTAINER_PORT = 7860  # where Langflow serves its API and UI
# How long the startup probe lets Langflow start (migrations on a big database take minutes).
STARTUP_BUDGET_SECONDS = 300

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
    "LANGFLOW_CUSTOM_COMPONENT_ADMIN_ONLY": "auth.enabled (with login on, only admins change component code; 1.10+)",
    "LANGFLOW_CORS_ORIGINS": "ingress.hosts (browsers may call Langflow from those origins only)",
    "LANGFLOW_PROMETHEUS_ENABLED": "metrics.enabled",
    "LANGFLOW_PROMETHEUS_PORT": "metrics.langflow_port",
    "LANGFLOW_API_KEY": "ambassador (the key the ambassador adds to every request, from its Secret)",
    "LANGFLOW_API_KEY_SOURCE": "ambassador (Langflow 1.7+ checks the ambassador's key from its environment)",
    "SSL_CERT_FILE": "trusted_ca (the CA bundle Langflow trusts for https)",
    "REQUESTS_CA_BUNDLE": "trusted_ca (the CA bundle Langflow trusts for https)",
    **{f"LANGFLOW_EXTERNAL_AUTH_{name}": "sso.identity (per-user: Langflow verifies the Dex ID token)" for name in (
        "ENABLED", "PROVIDER", "TOKEN_HEADER", "TRUSTED_JWT_DECODE", "JWKS_URL", "ISSUER", "AUDIENCE", "ALGORITHMS",
        "USERNAME_CLAIM", "ACCESS_CEILING_ENABLED", "DISABLE_API_KEYS_FOR_EXTERNAL_USERS", "ACCESS_CLAIM",
        "ACCESS_CLAIM_MAPPING", "DEFAULT_ACCESS_LEVEL")},
}

# Langflow's auth settings (AuthSettings fields of 1.6 and of 1.13): who can log in and how tokens
# are checked. They come only from the `auth.*` keys; an env var must never change them.
LANGFLOW_AUTH_SETTINGS = frozenset({
    "CONFIG_DIR", "SECRET_KEY", "PRIVATE_KEY", "PUBLIC_KEY", "ALGORITHM", "CACHE_SIGNING_KEY",
    "ACCESS_TOKEN_EXPIRE_SECONDS", "REFRESH_TOKEN_EXPIRE_SECONDS", "API_KEY_ALGORITHM", "API_KEY_SOURCE",
    "AUTO_LOGIN", "skip_auth_auto_login", "WEBHOOK_AUTH_ENABLE", "ENABLE_SUPERUSER_CLI", "NEW_USER_IS_ACTIVE",
    "ENABLE_SIGNUP", "SUPERUSER", "SUPERUSER_PASSWORD", "REFRESH_SAME_SITE", "REFRESH_SECURE", "REFRESH_HTTPONLY",
    "ACCESS_SAME_SITE", "ACCESS_SECURE", "ACCESS_HTTPONLY", "COOKIE_DOMAIN", "SSO_ENABLED", "SSO_PROVIDER",
    "SSO_CONFIG_FILE", "SSO_REDIRECT_URL", "EXTERNAL_AUTH_ENABLED", "EXTERNAL_AUTH_PROVIDER",
    "EXTERNAL_AUTH_TOKEN_HEADER", "EXTERNAL_AUTH_TOKEN_COOKIE", "EXTERNAL_AUTH_IDENTITY_RESOLVER",
    "EXTERNAL_AUTH_TRUSTED_JWT_DECODE", "EXTERNAL_AUTH_JWKS_URL", "EXTERNAL_AUTH_ISSUER", "EXTERNAL_AUTH_AUDIENCE",
    "EXTERNAL_AUTH_ALGORITHMS", "EXTERNAL_AUTH_SUBJECT_CLAIM", "EXTERNAL_AUTH_USERNAME_CLAIM",
    "EXTERNAL_AUTH_EMAIL_CLAIM", "EXTERNAL_AUTH_NAME_CLAIM", "EXTERNAL_AUTH_GROUP_RECONCILE_INTERVAL_SECONDS",
    "EXTERNAL_AUTH_ACCESS_CEILING_ENABLED", "EXTERNAL_AUTH_ACCESS_CLAIM", "EXTERNAL_AUTH_ACCESS_CLAIM_MAPPING",
    "EXTERNAL_AUTH_DEFAULT_ACCESS_LEVEL", "EXTERNAL_AUTH_DISABLE_API_KEYS_FOR_EXTERNAL_USERS", "AUTHZ_ENABLED",
    "AUTHZ_SUPERUSER_BYPASS", "AUTHZ_AUDIT_ENABLED", "AUTHZ_AUDIT_DURABLE", "AUTHZ_AUDIT_RETENTION_DAYS",
    "AUTHZ_AUDIT_CLEANUP_INTERVAL",
})
_AUTH_SOURCE = "the auth keys (Langflow's auth settings decide who can log in; no env var may change them)"

# Pod volumes the workload defines itself.
MANAGED_VOLUMES = ("data", "tmp", "flows", TRUSTED_CA_VOLUME)
# Fixed mount paths (the flows folder is configurable: flows.mount_path).
MANAGED_PATHS = (DATA_DIR, TMP_DIR, TRUSTED_CA_DIR)


def settings_read_from(name: str) -> set[str]:
    """The settings (upper-cased, without prefix) Langflow reads from an env var called `name`.

    Two readers: pydantic-settings takes `LANGFLOW_<setting>` in any letter case, and
    `langflow run` copies every variable whose name, with each "LANGFLOW_" removed, is
    an auth setting's exact name into the auth settings (so `AUTO_LOGIN` counts).
    """
    found = set()
    if name.upper().startswith("LANGFLOW_"):
        found.add(name.upper().removeprefix("LANGFLOW_"))
    stripped = name.replace("LANGFLOW_", "")
    if stripped in LANGFLOW_AUTH_SETTINGS:
        found.add(stripped.upper())
    return found


def managed_env_source(name: str) -> Optional[tuple[str, str]]:
    """(the managed name, the config key behind it) if Langflow or the pod would read `name` as a
    variable this program owns; None when it is free to set."""
    if name in MANAGED_ENV:
        return name, MANAGED_ENV[name]
    auth = {s.upper() for s in LANGFLOW_AUTH_SETTINGS}
    for setting in sorted(settings_read_from(name)):
        managed = f"LANGFLOW_{setting}"
        if managed in MANAGED_ENV:
            return managed, MANAGED_ENV[managed]
        if setting in auth:
            return managed, _AUTH_SOURCE
    return None
