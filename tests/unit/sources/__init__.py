"""Unit tests of the sources layer: item mapping, id rules, the host allow-list; no network."""
