"""Reading plan locks: JSON that is not a lock, or that holds NaN, is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import InputError
from runner.plan.lock import read_lock


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_lock_holding_nan_or_infinity_is_refused(tmp_path: Path, constant: str) -> None:
    lock = tmp_path / "l.json"
    lock.write_text(f'{{"lock_version": 1, "plan": {{"path": "p.yaml"}}, "rate": {constant}}}')
    with pytest.raises(InputError) as caught:
        read_lock(str(lock))
    assert caught.value.lines() == [
        f"{lock}: not a readable plan lock ({constant} is not a JSON number)"]
