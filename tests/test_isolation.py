"""The suite never reads or writes the user's real folders, not even from fixtures shared by the whole
run (which are set up before any test's own temporary home)."""
import os
import pwd
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def seen_by_a_run_wide_fixture():
    from assistant.paths import config_dir, data_dir, models_dir

    return Path(os.environ["HOME"]), [config_dir(), data_dir(), models_dir()]


def test_run_wide_fixtures_never_see_the_real_home(seen_by_a_run_wide_fixture):
    home, folders = seen_by_a_run_wide_fixture
    real = Path(pwd.getpwuid(os.getuid()).pw_dir).resolve()
    assert home.resolve() != real
    for folder in folders:
        assert real not in folder.resolve().parents or home.resolve() in folder.resolve().parents


def test_each_test_has_its_own_home_and_shares_the_runs_models(temp_home, session_home):
    from assistant.paths import data_dir, models_dir

    assert temp_home in data_dir().parents
    assert models_dir().resolve() == (session_home / ".local/share/local-assistant/models").resolve()
