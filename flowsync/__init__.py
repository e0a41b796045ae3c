"""Flow sync: flows applied through Langflow's REST API, with no pod restart (flows.update: sync).

`flowsync/sync.py` is the one module that does it; it uses only the standard library, so the stack's
own Langflow image runs it in the cluster (components/flow_sync) and `make sync-flows` runs it here.
"""

from pathlib import Path

SCRIPT = Path(__file__).with_name("sync.py")
