"""The project's Pulumi policy pack (run by the CLI as `python policy/`; see __main__.py and rules.py)."""
