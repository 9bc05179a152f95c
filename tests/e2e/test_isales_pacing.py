"""Step 01 against an iSales with its limit in force: paced from the X-RateLimit-* headers, the
whole fetch goes through without a single 429 (the sandbox limits per sliding minute, like Laravel).
"""

from __future__ import annotations

from sandbox import Sandbox
from tests.conftest import sandbox_env

LIMIT = 50  # per minute; the run below needs more calls than that, so it outlives one window


def test_01_paced_by_the_headers_meets_no_429(run, tmp_path):
    """SQLite only: over a minute of real time, and what is under test is the HTTP side."""
    with Sandbox(projetos=24, seed=7, isales_rpm=LIMIT) as sb:
        env = sandbox_env(sb, tmp_path, f"sqlite:///{tmp_path / 'sync.db'}")
        env.pop("ISALES_RATE_PER_MINUTE", None)
        assert run("00", env=env).returncode == 0
        result = run("01", env=env)
        calls = sb.calls("isales")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(calls) > LIMIT  # the limit was in force for the whole run
    assert [call for call in calls if call["status"] == 429] == []
    assert "limite de requisições" not in result.stderr


def test_01_waits_the_retry_after_of_a_429_and_goes_on(run, tmp_path):
    """Without headers to pace from (a 429 fault is all the server says), Retry-After rules."""
    with Sandbox(projetos=6, seed=7) as sb:
        env = sandbox_env(sb, tmp_path, f"sqlite:///{tmp_path / 'sync.db'}")
        assert run("00", env=env).returncode == 0
        sb.add_fault(system="isales", route="GET /clientes", status=429, retry_after=2, times=1)
        result = run("01", env=env)
        calls = sb.calls("isales")
    assert result.returncode == 0, result.stderr[-3000:]
    refused = [call for call in calls if call["status"] == 429]
    assert len(refused) == 1 and "limite de requisições (429); todos aguardam 2.0 s" in result.stderr
    retried = [call["t"] for call in calls if call["path"] == refused[0]["path"] and call["t"] > refused[0]["t"]]
    assert retried and retried[0] - refused[0]["t"] >= 2 * 0.95  # the same request, once the wait was over


def test_isales_rate_per_minute_overrides_the_headers(run, tmp_path):
    """ISALES_RATE_PER_MINUTE=600 spaces the calls by 0.1 s (× margin) although the server's own
    limit (sent in the headers) would allow them all at once."""
    with Sandbox(projetos=6, seed=7, isales_rpm=1_000_000) as sb:
        env = sandbox_env(sb, tmp_path, f"sqlite:///{tmp_path / 'sync.db'}", ISALES_RATE_PER_MINUTE="600")
        assert run("00", env=env).returncode == 0
        result = run("01", env=env)
        moments = sorted(call["t"] for call in sb.calls("isales"))
    assert result.returncode == 0, result.stderr[-3000:]
    # the client's slots are 0.105 s apart; arrivals jitter by milliseconds, so bound the whole span
    # (a lower bound only: a slow machine only widens it)
    assert len(moments) > 6 and moments[-1] - moments[0] >= (len(moments) - 1) * 0.1 * 0.95
