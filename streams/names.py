"""The pipeline's topic names, importable without building the Faust app (the API needs them)."""

PLAYLISTS = "playlists.v1"
TRACK_DISCOVERED = "track-discovered.v1"
AUDIO_STORED = "audio-stored.v1"
FEATURES_EXTRACTED = "features-extracted.v1"
INDEX_UPDATED = "index-updated.v1"
DEAD_LETTERS = "dead-letters.v1"
DEAD_LETTERS_REDRIVEN = "dead-letters-redriven.v1"
