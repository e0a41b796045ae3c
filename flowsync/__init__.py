"""Flow sync: flows applied through Langflow's REST API, with no pod restart (flows.update: sync).

`flowsync/sync.py` is the one module that does it; it uses only the standard library, so the stack's
own Langflow image runs it in the cluster (components/flow_sync) and `make sync-flows` runs it here.
`flowsync/api_key.py`, on the same client, makes the ambassador's API key on Langflow before 1.7.
"""

from pathlib import Path

SCRIPT = Path(__file__).with_name("sync.py")
API_KEY_SCRIPT = Path(__file__).with_name("api_key.py")


def api_key_scripts() -> dict[str, str]:
    """The ambassador's key Job (Langflow before 1.7): `api_key.py` and the client it uses, `sync.py`, side by side."""
    return {path.name: path.read_text() for path in (SCRIPT, API_KEY_SCRIPT)}
