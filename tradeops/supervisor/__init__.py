"""The supervisor: starts a desk's processes in order, watches them, restarts them."""
