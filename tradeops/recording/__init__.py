"""Recorded market data: the Parquet layout the recorder writes and everything that reads it
(`tradeops data`, the sim's replay). Below the roles: it imports no role (docs/data.md).
"""
