"""What a server runs, for its operator: version, routes, providers (issue 18)."""
