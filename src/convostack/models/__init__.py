"""The Models API: the models the configured providers serve, under their public ids."""
