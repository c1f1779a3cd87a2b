"""The adapter lifecycle: registry, versions, swaps, canaries, leases, upkeep."""
