"""deploy/newsdesk.service: the systemd unit README "Run it on your server" installs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNIT = ROOT / "deploy" / "newsdesk.service"
INSTALLED = "/opt/newsdesk/.venv/bin/newsdesk"


def test_unit_runs_the_bot_with_the_token_from_the_environment_only() -> None:
    text = UNIT.read_text(encoding="utf-8")
    assert f"ExecStart={INSTALLED} run\n" in text
    assert "EnvironmentFile=/etc/newsdesk/env\n" in text  # DISCORD_TOKEN, readable by root
    assert "DISCORD_TOKEN=" not in text.replace("DISCORD_TOKEN=…", "")  # never a real token
    assert "After=network-online.target" in text and "Restart=on-failure" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` exits 0 even for unknown keys, with a warning: both count."""
    # verify also checks that ExecStart exists: point it at this environment's entry point
    here = Path(sys.executable).parent / "newsdesk"
    unit = tmp_path / "newsdesk.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(INSTALLED, str(here)), "utf-8")
    if not here.exists():
        pytest.skip(f"{here} is not installed")
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [line for line in done.stderr.splitlines() if "newsdesk.service" in line]
    assert done.returncode == 0 and complaints == [], done.stderr
