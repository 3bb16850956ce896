"""The strategy runtime: the user-facing Strategy API and the host that runs it."""
