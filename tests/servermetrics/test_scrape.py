"""The scraper against a real HTTP exporter on loopback: each failure is recorded once and never
raised, an answer is bounded in time and size, every sample is stored raw."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fake_exporter import Exporter, exposition, fake_exporter

from runner.servermetrics.scrape import Scraper


def _scraper(url: str, tmp_path: Path, interval_s: float = 0.2,
             max_bytes: int = 1 << 20, headers: dict[str, str] | None = None) -> Scraper:
    return Scraper(url, headers or {}, interval_s, max_bytes, str(tmp_path / "m.jsonl"))


def _lines(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]


def test_scrapes_every_interval_and_stores_every_sample_raw(tmp_path: Path) -> None:
    exporter = Exporter([exposition(generated=n * 10) for n in range(100)])
    with fake_exporter(exporter) as url:
        scraper = _scraper(url, tmp_path, headers={"Authorization": "Bearer k"})
        assert scraper.begin()
        time.sleep(1.0)
        scraper.finish()
    assert scraper.error is None and scraper.failures == 0
    lines = _lines(tmp_path)
    # about 1 s / 0.2 s scrapes plus the first and the last; generous on a busy machine
    assert 3 <= len(lines) == len(scraper.points) <= 9
    assert 0 <= lines[0]["t_s"] < 0.5  # type: ignore[operator]
    assert [line["t_s"] for line in lines] == sorted(line["t_s"] for line in lines)
    first, last = lines[0]["samples"], lines[-1]["samples"]
    assert isinstance(first, dict) and isinstance(last, dict)
    assert "other_thing_seconds" in first  # an unknown series: kept raw
    assert first['vllm:num_requests_running{model_name="tiny"}'] == 1
    # later lines hold what changed: the counter, never the gauges that stayed put
    assert last['vllm:generation_tokens_total{model_name="tiny"}'] == 10 * (len(lines) - 1)
    assert not any(k.startswith("vllm:num_requests") for line in lines[1:]
                   for k in line["samples"])  # type: ignore[attr-defined]
    assert [v["generation_tokens"] for _, v in scraper.points] == \
        [10.0 * n for n in range(len(lines))]
    assert exporter.hits[0]["Authorization"] == "Bearer k"


HISTOGRAM = """\
# TYPE tgi_request_generated_tokens histogram
tgi_request_generated_tokens_bucket{le="10.0"} 3
tgi_request_generated_tokens_bucket{le="+Inf"} 4
tgi_request_generated_tokens_sum 57
tgi_request_generated_tokens_count 4
# TYPE tgi_queue_size gauge
tgi_queue_size 2
"""


def test_a_histogram_is_stored_bucket_by_bucket_and_its_sum_counts_tokens(
    tmp_path: Path,
) -> None:
    with fake_exporter(Exporter([HISTOGRAM])) as url:
        scraper = _scraper(url, tmp_path)
        assert scraper.begin()
        scraper.finish()
    samples = _lines(tmp_path)[0]["samples"]
    assert samples == {'tgi_request_generated_tokens_bucket{le="10.0"}': 3.0,
                       'tgi_request_generated_tokens_bucket{le="+Inf"}': 4.0,
                       "tgi_request_generated_tokens_sum": 57.0,
                       "tgi_request_generated_tokens_count": 4.0, "tgi_queue_size": 2.0}
    assert scraper.points[0][1] == {"generation_tokens": 57.0, "requests_waiting": 2.0}


@pytest.mark.parametrize(("exporter", "reason"), [
    (Exporter(status=404), "HTTP 404: the server has no metrics there"),
    (Exporter(status=401), "HTTP 401: the endpoint refused runner"),
    (Exporter(["<html><body>Welcome</body></html>\n"]), "the answer is not Prometheus text"),
    (Exporter(['{"detail": "Not Found"}']), "the answer is not Prometheus text"),
    (Exporter(["\n"]), "the answer is no metric samples"),
    (Exporter(["x 1\n" * 40000]), "the answer is larger than 65536 bytes (limits.metrics_bytes"),
    (Exporter([b"\xff\xfe\x00".decode("latin-1")]), "the answer is not Prometheus text"),
])
def test_a_failed_first_scrape_is_recorded_once_and_no_thread_starts(
    tmp_path: Path, exporter: Exporter, reason: str,
) -> None:
    with fake_exporter(exporter) as url:
        scraper = _scraper(url, tmp_path, max_bytes=65536)
        assert not scraper.begin()
        time.sleep(0.5)
        scraper.finish()
    assert scraper.error is not None and scraper.error.startswith(reason), scraper.error
    assert (scraper.failures, len(exporter.hits), scraper.points) == (1, 1, [])


@pytest.mark.parametrize("exporter", [Exporter(stall_s=30),
                                      Exporter(["up 1\n" * 20], trickle_s=0.1)])
def test_a_scrape_takes_at_most_its_share_of_the_interval(
    tmp_path: Path, exporter: Exporter,
) -> None:
    with fake_exporter(exporter) as url:
        scraper = _scraper(url, tmp_path, interval_s=1.0)
        began = time.monotonic()
        assert not scraper.begin()
        took = time.monotonic() - began
        scraper.finish()
    # 0.8 s allowed (one more read timeout at most for a trickle); never the 30 s stall
    assert took < 5, took
    assert scraper.error is not None and "within 0.8 s" in scraper.error, scraper.error


def test_failures_during_the_job_keep_the_first_reason_and_the_scraping_goes_on(
    tmp_path: Path,
) -> None:
    exporter = Exporter([exposition(1), "garbage here\n", exposition(5)])
    with fake_exporter(exporter) as url:
        scraper = _scraper(url, tmp_path)
        assert scraper.begin()
        time.sleep(0.7)
        scraper.finish()
    assert scraper.failures == 1
    assert scraper.error is not None and "not Prometheus text format" in scraper.error
    assert [v["generation_tokens"] for _, v in scraper.points][:2] == [1.0, 5.0]


def test_no_endpoint_at_all_is_recorded_not_raised(tmp_path: Path, dead_url: str) -> None:
    scraper = _scraper(dead_url + "/metrics", tmp_path)
    assert not scraper.begin()
    scraper.finish()
    assert scraper.error is not None and scraper.error.startswith("cannot connect")


def test_an_endpoint_that_echoes_the_key_never_gets_it_stored(tmp_path: Path) -> None:
    key = "sk-live-0123456789abcdef"
    with fake_exporter(Exporter([f"{key} is not a number\n"])) as url:
        scraper = _scraper(url, tmp_path, headers={"Authorization": f"Bearer {key}"})
        assert not scraper.begin()
        scraper.finish()
    assert scraper.error is not None and "not Prometheus text format" in scraper.error
    assert "***" in scraper.error and "0123456789" not in scraper.error, scraper.error


def test_a_key_echoed_in_a_label_value_is_not_stored(tmp_path: Path) -> None:
    key = "sk-live-0123456789abcdef"
    text = (f'up{{auth="Bearer {key}"}} 1\n'
            f'vllm:num_requests_running{{k="{key}"}} 3\n')
    with fake_exporter(Exporter([text])) as url:
        scraper = _scraper(url, tmp_path, headers={"Authorization": f"Bearer {key}"})
        assert scraper.begin()
        scraper.finish()
    stored = (tmp_path / "m.jsonl").read_text()
    assert "0123456789" not in stored and "***" in stored, stored
    assert scraper.points[0][1] == {"requests_running": 3.0}
