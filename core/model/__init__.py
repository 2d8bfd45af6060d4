"""Pure data and strict parsing: digests, release manifests, Merkle trees. Imports nothing but errors."""
