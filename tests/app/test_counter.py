"""The counter: exact under concurrency, against a running gunicorn behind Nginx."""

from concurrent.futures import ThreadPoolExecutor

import requests

from hits.models import SITE_COUNTER, Counter

CLIENTS = 32
VISITS_PER_CLIENT = 13  # 416 visits in all


def test_first_visit_is_one_then_two(sites, live_db):
    url = f"{sites.base_url}/event1/"
    first = requests.get(url, timeout=10)
    assert first.status_code == 200
    assert first.headers["Content-Type"] == "application/json"
    assert first.json() == {"hits": 1}
    # Each answer is one visit's number: a browser or proxy that kept it would hide visits.
    assert "no-store" in first.headers["Cache-Control"].split(", ")
    assert requests.get(url, timeout=10).json() == {"hits": 2}


def test_concurrent_visits_are_all_counted_once(sites, live_db):
    url = f"{sites.base_url}/event1/"

    def client(_: int) -> list[int]:
        with requests.Session() as session:  # keep-alive, like a browser
            return [session.get(url, timeout=30).json()["hits"] for _ in range(VISITS_PER_CLIENT)]

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        numbers = [n for numbers in pool.map(client, range(CLIENTS)) for n in numbers]

    total = CLIENTS * VISITS_PER_CLIENT
    assert sorted(numbers) == list(range(1, total + 1)), "a number was lost or given twice"
    assert Counter.objects.get(name=SITE_COUNTER).hits == total
