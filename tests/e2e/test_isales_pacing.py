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
