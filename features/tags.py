"""The 50 tags of the Choi 2017 and MSD_musicnn tag heads, in output order; reads, writes nothing.

The Last.fm tags of the Million Song Dataset top-50 set, as published with the weights in
``keunwoochoi/music-auto_tagging-keras`` (README and ``compact_cnn/main.py``). Spelling and case
are kept as published ("Mellow", "Hip-Hop", "House") because they name the head's outputs.
"""

from __future__ import annotations

#: Tag names; index ``i`` names output ``i`` of the sigmoid head.
CHOI2017_TAGS: tuple[str, ...] = (
    "rock",
    "pop",
    "alternative",
    "indie",
    "electronic",
    "female vocalists",
    "dance",
    "00s",
    "alternative rock",
    "jazz",
    "beautiful",
    "metal",
    "chillout",
    "male vocalists",
    "classic rock",
    "soul",
    "indie rock",
    "Mellow",
    "electronica",
    "80s",
    "folk",
    "90s",
    "chill",
    "instrumental",
    "punk",
    "oldies",
    "blues",
    "hard rock",
    "ambient",
    "acoustic",
    "experimental",
    "female vocalist",
    "guitar",
    "Hip-Hop",
    "70s",
    "party",
    "country",
    "easy listening",
    "sexy",
    "catchy",
    "funk",
    "electro",
    "heavy metal",
    "Progressive rock",
    "60s",
    "rnb",
    "indie pop",
    "sad",
    "House",
    "happy",
)

#: The 50 outputs of MSD_musicnn's tag head (``MSD_LABELS`` of ``musicnn/configuration.py`` in
#: the ``musicnn`` 0.1.0 wheel). Both models were trained on the same top-50 Last.fm tags of the
#: Million Song Dataset, and the lists agree name for name and in order.
MUSICNN_MSD_TAGS: tuple[str, ...] = CHOI2017_TAGS
