"""A local exchange speaking the Alpaca v2 dialect, with limits and faults on demand."""
