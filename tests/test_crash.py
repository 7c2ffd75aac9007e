"""Crash consistency, a few kill points of the harness (the full run, 50+ kill points over every
operation: `python -m tests.crash.run`, see docs/reliability.md). Each command runs in a subprocess and
is killed with SIGKILL at a seeded random moment; then the database must pass `PRAGMA integrity_check`,
hold every turn the user was told was stored, have no derived row doubled or orphaned, and the next run
must finish the work to the end state of an uninterrupted run."""
import pytest

from tests.crash.harness import kill_once, kill_points, reference
from tests.crash.operations import operations

pytestmark = pytest.mark.real


@pytest.mark.parametrize("name, kills", [("import", 2), ("listen", 1), ("forget", 1), ("restore", 1)])
def test_killed_at_random_moments_the_next_run_finishes_the_work(tmp_path, name, kills):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    op = operations(tmp_path, home)[name]
    ref, seconds = reference(op, tmp_path / "reference", home)
    for i, at in enumerate(kill_points(16, kills, seconds)):
        k = kill_once(op, tmp_path / f"kill{i}", home, at, seconds, ref)
        assert not k.problems, (at, k.problems)
        assert not k.missing_acknowledged, (at, k.missing_acknowledged)
        assert not k.after_finish, (at, k.after_finish)
        assert k.same_end_state, at
