"""Handing a conversation Tandem could not settle to a person: take it, keep it, deliver it."""
