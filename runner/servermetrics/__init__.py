"""The server's own metrics, read from its Prometheus endpoint while a job runs (issue 11)."""
