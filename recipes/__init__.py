"""Ready strategies that topologies reference by import path (`recipes.momentum:Momentum`)."""
