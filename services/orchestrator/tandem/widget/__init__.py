"""The embeddable support chat widget (plain JavaScript, no build step) and its demo page."""
