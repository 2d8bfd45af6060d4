"""Signatures and verification over bytes: keys, DSSE envelopes, the trust set, pointer and release rules."""
