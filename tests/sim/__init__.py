"""Tests of the simulated exchange (tradeops/sim)."""
