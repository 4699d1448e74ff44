"""Exports of engine shards to formats other tools read (one module per format)."""
