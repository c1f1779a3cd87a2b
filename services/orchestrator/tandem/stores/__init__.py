"""Shared stores: the doc store, the state store and the records replicas share."""
