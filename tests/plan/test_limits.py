"""A job's lengths against what the inventory says its model takes (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from runner.inventory.listing import Model, with_metadata
from runner.plan.expand import Job
from runner.plan.limits import limit_warning, model_limits

M = Model("m", max_input_tokens=4096, max_output_tokens=1024)


@pytest.mark.parametrize(("params", "model", "detail"), [
    ({"input_tokens": 4000, "max_tokens": 200}, M,
     "input_tokens 4000 + max_tokens 200 = 4200 > max_input_tokens 4096"),
    ({"input_tokens": 3896, "max_tokens": 200}, M, None),  # exactly the context: fits
    ({"input_tokens": 10, "max_tokens": 2000}, M, "max_tokens 2000 > max_output_tokens 1024"),
    ({"input_tokens": 4000, "max_tokens": 2000}, M,
     "input_tokens 4000 + max_tokens 2000 = 6000 > max_input_tokens 4096; "
     "max_tokens 2000 > max_output_tokens 1024"),
    ({"dataset": "d.jsonl", "max_tokens": 5000}, Model("m", max_input_tokens=4096),
     "max_tokens 5000 > max_input_tokens 4096"),  # a dataset's prompt length is unknown
    ({"template": "t", "max_tokens": 4000}, Model("m", max_input_tokens=4096), None),
    ({"input_tokens": 10**6, "max_tokens": 10**6}, Model("m"), None),  # no limits known
    ({"input_tokens": 10**6, "max_tokens": 10**6}, None, None),  # model not in the inventory
])
def test_model_limits(params: dict[str, Any], model: Model | None, detail: str | None) -> None:
    limits = model_limits(params, model)
    assert limits == {"max_input_tokens": model.max_input_tokens if model else None,
                      "max_output_tokens": model.max_output_tokens if model else None,
                      "exceeded": detail is not None, "detail": detail}


def test_the_warning_is_one_line_naming_job_model_figures_and_what_to_do() -> None:
    params = {"input_tokens": 4000, "max_tokens": 200}
    job = Job("b/m/max_tokens=200", "b_m", "b", "m", {}, params)
    line = limit_warning(job, model_limits(params, M))
    assert line == ("job b/m/max_tokens=200: model m takes less than asked (input_tokens 4000 "
                    "+ max_tokens 200 = 4200 > max_input_tokens 4096, as the inventory says): "
                    "the server will cut answers short or refuse them; lower input_tokens or "
                    "max_tokens, or leave the model out with !m")
    assert limit_warning(job, model_limits({"input_tokens": 1, "max_tokens": 1}, M)) is None
    assert limit_warning(job, None) is None


def test_vllm_max_model_len_is_the_context_when_nothing_else_says() -> None:
    model = with_metadata(Model("m"), {"max_model_len": 4096})
    assert (model.max_input_tokens, model.max_model_len) == (None, 4096)
    limits = model_limits({"input_tokens": 4000, "max_tokens": 200}, model)
    assert limits["exceeded"] and limits["max_input_tokens"] == 4096
    assert limits["detail"] == "input_tokens 4000 + max_tokens 200 = 4200 > max_model_len 4096"
    given = with_metadata(Model("m"), {"max_model_len": 4096, "max_input_tokens": 8192})
    assert not model_limits({"input_tokens": 4000, "max_tokens": 200}, given)["exceeded"]
