"""The Files API: uploads kept durably, owned by a principal."""
