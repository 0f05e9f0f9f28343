"""The commonest GET /recommend form read from the raw query agrees with the general parser.

Reads nothing but generated query strings; writes nothing.
"""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from api.recommend_params import RecommendParams, from_query
from api.recommend_views import _simple_get, parse

#: Names and characters that the general parser decodes, rejects or reads differently.
NAMES = st.sampled_from(["track_id", "k", "tag", "negative", "x", "", "track_id ", "K"])
VALUES = st.text(alphabet="aZ09:_-%2B+ ;=.~\t\u0663\u00e9", max_size=12)


def _general(raw: str) -> object:
    request = make_mocked_request("GET", "/recommend?" + raw)
    data = from_query(request.query, RecommendParams.model_fields)
    if not request.query.get("k", ""):
        data.pop("k", None)
    return parse(RecommendParams, data).query()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(NAMES, st.booleans(), VALUES), max_size=4))
def test_the_raw_reading_is_the_general_one_or_declines(parts: list[tuple[str, bool, str]]) -> None:
    raw = "&".join(name + ("=" + value if eq else "") for name, eq, value in parts)
    found = _simple_get(make_mocked_request("GET", "/recommend?" + raw))
    if found is not None:
        assert found == _general(raw), raw


def test_the_common_forms_are_read() -> None:
    for raw, k in (("track_id=abc", 10), ("track_id=abc&k=3", 3), ("k=100&track_id=abc", 100)):
        found = _simple_get(make_mocked_request("GET", "/recommend?" + raw))
        assert found is not None
        assert found == _general(raw)
        assert found.seeds == (("abc", 1.0),) and found.k == k
    for raw in (
        "track_id=a%20b",
        "track_id=a+b",
        "track_id=a&k=0",
        "track_id=a&k=+3",
        "track_id=a&track_id=b",
        "track_id=a&k=3&k=4",
        "track_id=a&tag=x",
        "k=3",
    ):
        assert _simple_get(make_mocked_request("GET", "/recommend?" + raw)) is None, raw
