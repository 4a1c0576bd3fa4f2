"""The composition layer: what a call on each line uses, built from profiles and the
configured backend."""
