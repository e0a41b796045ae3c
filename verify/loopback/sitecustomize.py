"""Loaded by every Langflow process that `make verify` and the tests run (on their PYTHONPATH).

Langflow starts its Prometheus endpoint with prometheus_client's `start_http_server(port)`, which listens
on every address. Here it listens on 127.0.0.1 only, as the API does (LANGFLOW_HOST): with the port,
the one deviation from the pod.
"""

try:
    import prometheus_client
    from prometheus_client import exposition
except ImportError:  # not a Langflow environment: nothing to change
    pass
else:
    _start_http_server = exposition.start_http_server

    def start_http_server(port, addr="127.0.0.1", *args, **kwargs):  # noqa: ARG001 - always loopback
        return _start_http_server(port, "127.0.0.1", *args, **kwargs)

    prometheus_client.start_http_server = exposition.start_http_server = start_http_server
