"""Which models fit a benchmark's endpoints, by mode (issue 12), with embeddings and responses."""

from __future__ import annotations

import pytest

from runner.plan.modes import UNKNOWN, fits, misfits, wanted_modes

MODES = {"c": "chat", "e": "embedding", "r": "responses", "t": "completion", "u": None}


@pytest.mark.parametrize(("endpoints", "skipped"), [
    (["chat"], [("e", "embedding"), ("r", "responses"), ("t", "completion")]),
    (["completions"], [("e", "embedding"), ("r", "responses")]),
    (["responses"], [("e", "embedding"), ("t", "completion")]),
    (["embeddings"], [("c", "chat"), ("r", "responses"), ("t", "completion"), ("u", UNKNOWN)]),
    (["chat", "embeddings"], [("c", "chat"), ("e", "embedding"), ("r", "responses"),
                              ("t", "completion"), ("u", UNKNOWN)]),
])
def test_misfits_by_endpoint(endpoints: list[str], skipped: list[tuple[str, str]]) -> None:
    assert list(misfits(sorted(MODES), MODES, endpoints)) == skipped


def test_an_embeddings_benchmark_takes_an_unknown_mode_named_exactly() -> None:
    assert misfits(["u", "e"], MODES, ["embeddings"], named=["u"]) == ()
    # without an inventory's facts (a model it does not list) nothing is skipped
    assert misfits(["x"], MODES, ["embeddings"]) == ()


def test_fits_and_the_modes_asked_for() -> None:
    assert fits(None, ["chat"]) and not fits("embedding", ["responses"])
    assert fits("embedding", ["embeddings"]) and fits("chat", ["responses", "completions"])
    assert wanted_modes(["embeddings"]) == "select embedding models"
    assert wanted_modes(["chat", "completions"]) == "select chat models"
    assert wanted_modes(["responses"]) == "select chat or responses models"
    assert wanted_modes(["embeddings", "chat"]) == (
        "no mode fits all of its endpoints (chat, embeddings): give each a benchmark")
