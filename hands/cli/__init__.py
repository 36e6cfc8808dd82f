"""The command-line layer: what chains methods together (methods import no other method)."""
