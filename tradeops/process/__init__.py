"""The child side of supervision, shared by every role and the supervisor.

A role (sim, gateway, proxy, host) is a program of its own: `python -m tradeops.gateway
--topology FILE --name NAME --run-dir DIR`. What it needs from the desk lives here, not in
`tradeops.supervisor`: where the run keeps its files (`paths`), which processes a topology
makes (`spec`), the start-up every role does and how it talks back (`child`, `entry`), and the
credentials a simulated broker shares with its gateway (`credentials`). The supervisor imports
this package; nothing here imports the supervisor.
"""
