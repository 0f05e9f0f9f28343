"""The tag names in the code are the published ones, in output order."""

from __future__ import annotations

from features.tags import CHOI2017_TAGS

from .conftest import TAGS_TXT


def test_tags_match_the_published_list_in_order() -> None:
    published = TAGS_TXT.read_text(encoding="utf-8").splitlines()
    assert list(CHOI2017_TAGS) == published
    assert len(CHOI2017_TAGS) == 50
    assert len(set(CHOI2017_TAGS)) == 50
    assert CHOI2017_TAGS[0] == "rock"
