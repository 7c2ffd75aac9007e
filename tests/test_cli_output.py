"""What the commands print reads as text for a person: headers, plurals, no Python reprs; the README agrees
with the commands, the keys of the chat and the install hints."""
import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from assistant import config as cfg_mod
from assistant.cli import common as cli_common
from assistant.cli import cli
from memory.importers import import_file
from memory.store import Store
from tests.fakes import FakeEmbedder

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def one_turn_jsonl(tmp_path, **extra) -> Path:
    p = tmp_path / "one.jsonl"
    p.write_text(json.dumps({"session": "a", "role": "user", "text": "I adopted a grey cat called Miso today.",
                             "time": "2024-05-01T09:00:00Z", **extra}) + "\n")
    return p


def test_sessions_has_column_headers_and_readable_rows(tmp_path):
    db = tmp_path / "m.db"
    store = Store(db)
    sid = store.new_session(title="Weekend plans")
    store.add_turn(sid, "user", "Any ideas for Saturday?")
    store.close()
    lines = invoke("--db", str(db), "sessions").output.splitlines()
    assert lines[0].split() == ["ID", "last", "active", "turns", "source", "title"]
    row = lines[1]
    assert re.match(rf"\s*{sid}\s+\d{{4}}-\d\d-\d\d \d\d:\d\d\s+1\s+chat\s+Weekend plans$", row), row
    assert "turns" not in row   # the count is under its header, not "1 turns"


def test_import_says_one_turn_and_one_session(tmp_path):
    r = invoke("--db", str(tmp_path / "m.db"), "import", "jsonl", str(one_turn_jsonl(tmp_path)),
               "--segmenter", "none")
    assert r.exit_code == 0, r.output
    assert "Imported 1 new turn in 1 new session." in r.output
    r = invoke("--db", str(tmp_path / "m.db"), "import", "jsonl", str(one_turn_jsonl(tmp_path)),
               "--segmenter", "none")
    assert "Imported 0 new turns in 0 new sessions (1 turn was already there)." in r.output


def test_an_imported_session_without_a_title_gets_one_from_its_first_message(store, tmp_path):
    report = import_file(store, "jsonl", one_turn_jsonl(tmp_path))
    assert store.session(report.session_ids[0]).title == "I adopted a grey cat called Miso today."


def test_a_title_on_a_later_line_of_the_session_is_used(store, tmp_path):
    p = tmp_path / "t.jsonl"
    rows = [{"session": 1, "role": "user", "text": "hello", "time": 1},
            {"session": 1, "role": "assistant", "text": "hi", "time": 2, "title": "Greetings"}]
    p.write_text("\n".join(json.dumps(r) for r in rows))
    report = import_file(store, "jsonl", p)
    assert store.session(report.session_ids[0]).title == "Greetings"


def test_a_bad_value_in_a_jsonl_line_is_shown_as_json_not_python(store, tmp_path):
    from memory.errors import ImportFormatError

    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"session": 1, "role": None, "text": "x", "time": 1}))
    with pytest.raises(ImportFormatError, match="not null"):
        import_file(store, "jsonl", p)


def test_memory_stats_has_plurals_and_no_python_dict(tmp_path):
    from assistant.wiring import build_memory_index

    db = tmp_path / "m.db"
    store = Store(db)
    sid = store.new_session()
    store.add_turn(sid, "user", "My cello lesson is on Tuesday.")
    store.add_turn(sid, "assistant", "Noted.")
    build_memory_index(store, FakeEmbedder(), mode="fast")
    store.close()
    out = invoke("--db", str(db), "memory", "stats").output
    assert "{" not in out and "'" not in out
    assert "1 session, 2 turns" in out and "1 session tidied (fast 1)" in out and "0 model calls" in out


def test_memory_segment_uses_the_same_segmenter_as_consolidate(tmp_path, monkeypatch):
    """`memory segment` used the model (llm) by default while consolidation uses fast."""
    used = []

    def no_model(obj):
        used.append("llm")
        raise click.ClickException("the model was loaded")

    monkeypatch.setattr(cli_common, "load_llm", no_model)
    monkeypatch.setattr(cli_common, "embedder", FakeEmbedder)
    db = tmp_path / "m.db"
    store = Store(db)
    store.add_turn(store.new_session(), "user", "Remind me to water the plants.")
    store.close()
    r = invoke("--db", str(db), "memory", "segment")
    assert r.exit_code == 0 and used == [], r.output
    assert "Segmented 1 session into 1 segment" in r.output
    assert cfg_mod.Config().consolidate_segment_mode == "fast"
    cfg_mod.write_values({"consolidate_segment_mode": "llm"})   # the config key decides for both
    store = Store(db)
    store.add_turn(store.new_session(), "user", "And the tomatoes.")
    store.close()
    r = invoke("--db", str(db), "memory", "segment")
    assert used == ["llm"] and "the model was loaded" in r.output


# -- the README agrees with the program ---------------------------------------------------------------
def test_readme_lists_every_command_and_subcommand():
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert f"`assistant {name}" in README or (name == "tui" and "`assistant tui`" in README), name
        if isinstance(command, click.Group):
            row = next(line for line in README.splitlines() if line.startswith(f"| `assistant {name}"))
            for sub in command.list_commands(ctx):
                assert sub in row, f"{name} {sub}"


def test_readme_names_the_key_the_chat_screen_shows_for_past_sessions():
    from ui.screens.chat import ChatScreen

    (binding,) = [b for b in ChatScreen.BINDINGS if b.action == "toggle_sessions"]
    shown = binding.key.split(",")[0]                     # the key the footer shows, e.g. ctrl+s
    name = f"Ctrl+{shown.split('+', 1)[1].upper()}" if shown.startswith("ctrl+") else shown.upper()
    assert f"**{name}**" in README


def test_small_models_install_hint_is_the_same_in_models_and_readme():
    from assistant.models import MODELS

    hint = MODELS["qwen-0.5b"].install_hint
    command = re.match(r"(.*?)( in the project folder)?$", hint).group(1)
    assert f"`{command}`" in README
    assert command == ".venv/bin/pip install -e '.[small-models]'"


def test_memory_search_counts_short_words_as_said(tmp_path, monkeypatch):
    """"dog" is a word of the memory "I walked my dog Rex": search does not say that no memory says it."""
    from memory.bank import segment_pending
    from memory.recall import TurnIndex

    monkeypatch.setattr(cli_common, "embedder", FakeEmbedder)
    db = tmp_path / "m.db"
    store = Store(db)
    sid = store.new_session(title="walk", started_at="2025-03-03T09:00:00+00:00")
    store.add_turn(sid, "user", "I walked my dog Rex by the river.", created_at="2025-03-03T09:00:00+00:00")
    store.add_turn(sid, "assistant", "Sounds lovely.", created_at="2025-03-03T09:00:05+00:00")
    TurnIndex(store, FakeEmbedder()).index_pending()
    segment_pending(store, FakeEmbedder(), mode="fast")
    store.close()
    for query in ("dog", "Rex", "my dog"):
        r = invoke("--db", str(db), "memory", "search", query)
        assert r.exit_code == 0 and "walked my dog" in r.output and "No memory says" not in r.output, r.output
    r = invoke("--db", str(db), "memory", "search", "xylophone")
    assert r.output.splitlines()[0] == 'No memory says "xylophone"; these are the closest in meaning.'


@pytest.mark.parametrize("text, query, said", [
    ("I walked my dog today.", "dog", True), ("My dogs are fine.", "dog", True),
    ("Max's toy is red.", "max", True), ("I went to the gym.", "the gym", True),
    ("A hotdog stand.", "dog", False), ("The category is new.", "cat", False),
    ("I like the river.", "the", False), ("My violinist friend.", "violinist", True),
])
def test_a_memory_says_a_word_when_it_holds_it_as_a_word(text, query, said):
    from memory.detail import says

    assert says(text, query) is said
