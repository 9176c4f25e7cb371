"""Helpers for spooky's integration tests: certificates, free ports, managed processes,
HTTP/3 clients (gtlsclient, spooky-testc) and backends (caddy, gtlsserver, spooky-testd).

Only the Python standard library is used (plus pytest in conftest.py)."""
