"""The request record's error kinds are the result schema's, in the records and in the counts."""

from __future__ import annotations

import re

from runner.load.records import ERROR_KINDS
from runner.schema import load_schema


def test_every_error_kind_is_in_the_result_schema() -> None:
    defs = load_schema("result")["$defs"]
    assert defs["request"]["properties"]["error_kind"]["enum"] == [*ERROR_KINDS, None]
    pattern = defs["metrics"]["properties"]["errors"]["propertyNames"]["pattern"]
    assert all(re.fullmatch(pattern, kind) for kind in ERROR_KINDS)
    assert {"aborted", "content_filter", "truncated"} <= set(ERROR_KINDS)
