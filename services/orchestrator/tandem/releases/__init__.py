"""Release pairs: a docs collection and an adapter version planned, gated, promoted as one."""
