"""`pip install .` (not editable) into a fresh venv gives a working `supervisorctl`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from harness import require_peer

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result


@pytest.mark.timeout(900)
def test_wheel_installs_into_a_fresh_venv_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", ".",
        cwd=source)
    wheel = next((tmp_path / "dist").glob("printer_supervisor-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "supervisor/py.typed" in names
    assert not [n for n in names if n.startswith("tests/")]
    pages = sorted(n.split("/data/", 1)[1] for n in names if "/data/share/man/" in n)
    assert pages == ["share/man/man1/supervisorctl.1", "share/man/man5/printer-supervisor.conf.5",
                     "share/man/man8/printer-supervisor.8"]

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    run(venv / "bin/python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ctl = venv / "bin/supervisorctl"
    assert "usage: supervisorctl" in run(ctl, "--help", cwd=elsewhere).stdout
    config = elsewhere / "p910nd-like.toml"
    config.write_text('[[printer]]\nname = "lp0"\ndevice = "/dev/usb/lp0"\nport = 9100\n',
                      encoding="utf-8")
    checked = run(ctl, "check-config", config, cwd=elsewhere).stdout
    assert "printer lp0: port 9100" in checked
    imported = run(venv / "bin/python", "-c", "import supervisor; print(supervisor.__file__)",
                   cwd=elsewhere).stdout
    assert imported.startswith(str(venv))
    demo = run(ctl, "demo", cwd=elsewhere).stdout
    assert "all steps worked" in demo
    # The pages are installed with it: `man` finds them in the environment's share/man.
    man = require_peer("man", "man-db")
    page = subprocess.run([man, "-M", str(venv / "share" / "man"), "1", "supervisorctl"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "80"})
    assert page.returncode == 0 and "migrate-p910nd" in page.stdout, page.stderr
