"""The recorder role: ticks from each broker's bus to Parquet files (docs/data.md)."""
