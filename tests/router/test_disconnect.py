"""A client that hangs up mid-stream: the work done is still recorded (status 499), over real HTTP."""

from __future__ import annotations

import time

from tests.conftest import LiveServer, echo_settings


def test_a_client_that_hangs_up_mid_stream_still_gets_its_ledger_row(tmp_path) -> None:
    import httpx

    from router.app import create_app

    small = {"backend": "echo", "options": {"prefix": "small: ", "word_delay": 0.3, "name": "echo-small"}}
    settings = echo_settings(tmp_path, small=small)
    app = create_app(settings)
    with LiveServer(app) as server:
        body = {"model": "frugal-small", "stream": True,
                "messages": [{"role": "user", "content": "one two three four five six seven eight nine ten"}]}
        with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=30) as response:
            assert response.status_code == 200
            request_id = response.headers["x-frugal-request-id"]
            next(response.iter_lines())  # the first chunk arrived; now hang up
        deadline = time.monotonic() + 15
        rows: list = []
        while time.monotonic() < deadline and not rows:
            rows = [r for r in app.state.services.ledger.rows() if r.request_id == request_id]
            time.sleep(0.1)
    assert [(r.status, r.error_code) for r in rows] == [(499, "client_closed")]
