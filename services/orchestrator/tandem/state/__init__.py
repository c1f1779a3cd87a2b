"""Shared state: typed records that every orchestrator replica reads and writes."""
