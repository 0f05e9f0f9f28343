"""``index-updated.v1``: a new index snapshot is complete in the object store."""

from __future__ import annotations

import faust


class IndexUpdatedV1(
    faust.Record,
    serializer="json",
    namespace="spotrec.index_updated.v1",
    validation=True,
):
    """The broadcast that tells query nodes to load a snapshot."""

    version: str
    model_version: str
    manifest_key: str
    count: int
    built_at: float = 0.0
    #: False while a reindex to this model version is under way (see the manifest's
    #: ``missing``); broadcasts sent before the field existed were all complete.
    complete: bool = True
