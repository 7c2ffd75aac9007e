"""`assistant service install|remove`: the systemd user unit for the daemon and the desktop entry, written for
this installation into the test's home; systemctl is a small script on PATH that records what it is asked."""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import config as config_mod, service
from assistant.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    """An empty folder as the whole PATH: no systemctl, no nvidia-smi."""
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", str(d))
    return d


def fake_systemctl(bin_dir: Path, exit_code: int = 0, said: str = "") -> Path:
    log = bin_dir / "systemctl.log"
    script = bin_dir / "systemctl"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {shlex.quote(str(log))}\n"
                      + (f"echo {shlex.quote(said)} >&2\n" if said else "") + f"exit {exit_code}\n")
    script.chmod(0o755)
    return log


def exec_start(unit: Path) -> list[str]:
    line = next(l for l in unit.read_text().splitlines() if l.startswith("ExecStart="))
    return shlex.split(line[len("ExecStart="):])


def test_install_writes_the_unit_for_this_installation_and_says_how_to_enable_it_without_systemd(bin_dir, temp_home):
    r = run("service", "install")
    assert r.exit_code == 0, r.output
    unit, desktop = service.unit_path(), service.desktop_path()
    assert unit == temp_home / ".config" / "systemd" / "user" / "local-assistant.service"
    assert desktop == temp_home / ".local" / "share" / "applications" / "assistant.desktop"
    cmd = exec_start(unit)
    assert cmd[-1] == "daemon" and Path(cmd[0]).is_file() and os.access(cmd[0], os.X_OK)
    assert Path(cmd[0]).parent == Path(sys.executable).parent          # this installation's, not ~/.local/bin
    assert "RestrictAddressFamilies=AF_UNIX\n" in unit.read_text()      # no network without a model server
    assert "Could not enable it here (systemctl is not installed)" in r.output
    assert "systemctl --user daemon-reload && systemctl --user enable --now local-assistant.service" in r.output
    entry = desktop.read_text()
    assert "Terminal=true" in entry and f"Exec={cmd[0]}\n" in entry and "Type=Application" in entry


def test_install_enables_and_starts_the_unit_where_systemd_runs(bin_dir):
    log = fake_systemctl(bin_dir)
    r = run("service", "install")
    assert r.exit_code == 0 and "Enabled and started local-assistant.service" in r.output
    assert log.read_text().splitlines() == ["--user daemon-reload", "--user enable --now local-assistant.service"]


def test_a_systemd_without_a_session_is_said_plainly(bin_dir):
    fake_systemctl(bin_dir, exit_code=1, said="Failed to connect to bus: No medium found")
    r = run("service", "install")
    assert r.exit_code == 0 and service.unit_path().exists()
    assert "Could not enable it here (Failed to connect to bus: No medium found); where systemd runs" in r.output


def test_a_database_given_and_a_model_server_are_in_the_unit(bin_dir, tmp_path, monkeypatch):
    config_mod.set_value("base_url", "http://gpu-box:8080/v1")
    config_mod.set_value("engine", "openai")
    config_mod.set_value("api_key_env", "MY_SERVER_KEY")
    db = tmp_path / "notes.db"
    r = run("--db", str(db), "service", "install")
    assert r.exit_code == 0, r.output
    text = service.unit_path().read_text()
    assert exec_start(service.unit_path())[-3:] == ["--db", str(db), "daemon"]
    assert "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" in text and "PassEnvironment=MY_SERVER_KEY" in text
    assert "systemctl --user import-environment MY_SERVER_KEY" in r.output
    assert "MY_SERVER_KEY=" not in text


def test_install_never_replaces_a_file_it_did_not_write(bin_dir):
    unit = service.unit_path()
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/usr/bin/my-own\n")
    r = run("service", "install")
    assert r.exit_code == 1 and "was not written by the assistant, so it is left as it is" in r.output
    assert unit.read_text() == "[Service]\nExecStart=/usr/bin/my-own\n"


def test_install_twice_rewrites_its_own_files(bin_dir):
    assert run("service", "install").exit_code == 0
    assert run("service", "install").exit_code == 0
    assert service.ours(service.unit_path()) and service.ours(service.desktop_path())


def test_remove_takes_away_only_what_install_wrote(bin_dir, temp_home):
    assert run("service", "install").exit_code == 0
    log = fake_systemctl(bin_dir)
    foreign = service.desktop_path()
    foreign.write_text("[Desktop Entry]\nName=Mine\n")      # the user replaced the entry with their own
    r = run("service", "remove")
    assert r.exit_code == 0
    assert not service.unit_path().exists() and foreign.read_text() == "[Desktop Entry]\nName=Mine\n"
    assert "was not written by the assistant; left as it is" in r.output
    assert "--user disable --now local-assistant.service" in log.read_text()
    assert service.unit_path().parent.exists()               # folders stay
    r = run("service", "remove")
    assert r.exit_code == 0 and "was not there" in r.output


def test_doctor_lists_the_service_and_flags_one_whose_program_is_gone(bin_dir):
    assert run("service", "install").exit_code == 0
    r = run("doctor", "--offline")
    assert f"service     {service.unit_path()}" in r.output and f"desktop     {service.desktop_path()}" in r.output
    assert r.exit_code == 0, r.output
    unit = service.unit_path()
    unit.write_text(unit.read_text().replace(exec_start(unit)[0], "/gone/bin/assistant"))
    r = run("doctor", "--offline")
    assert r.exit_code == 1
    assert "PROBLEM: The service runs /gone/bin/assistant, which is no longer there" in r.output


def test_doctor_says_what_systemd_could_not_tell_instead_of_none(bin_dir):
    """Outside a user session `is-enabled` still answers (it reads files) while `is-active` cannot."""
    assert run("service", "install").exit_code == 0
    script = bin_dir / "systemctl"
    script.write_text("#!/bin/sh\ncase \"$2\" in\n  is-enabled) echo disabled; exit 1;;\n"
                      "  *) echo 'Failed to connect to bus: No medium found' >&2; exit 1;;\nesac\n")
    script.chmod(0o755)
    r = run("doctor", "--offline")
    line = next(l for l in r.output.splitlines() if l.startswith("service "))
    assert "None" not in line, line
    assert line.endswith(f"{service.unit_path()}: disabled (whether it is running, systemd cannot say here); "
                         "enable it with: systemctl --user enable --now local-assistant.service"), line


def test_doctor_words_for_every_mix_of_what_systemd_says():
    from assistant.doctor import systemd_state

    unit = "local-assistant.service"
    assert systemd_state("enabled", "active", unit) == "enabled, active"
    assert systemd_state(None, "inactive", unit) == \
        "inactive (whether it starts with your session, systemd cannot say here)"
    assert systemd_state(None, None, unit) == "systemd's user session cannot be asked here"
    assert "None" not in systemd_state("disabled", None, unit)
