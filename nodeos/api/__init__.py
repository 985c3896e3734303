"""The API server: object model, HTTP, admission and the store."""
