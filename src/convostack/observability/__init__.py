"""What an operator sees of a running server: Prometheus metrics, OpenTelemetry traces,
access logs with request ids. All off (or, for the access log, one line) unless
configured; when off, nothing here is on a request's path."""
