"""The Podman runtime: pods run as real Podman pods, driven through the libpod REST API."""
