"""The gateway: one per broker; pooled upstream feed, normalised ticks into the bus."""
