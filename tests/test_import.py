"""Importers: LoCoMo, ChatGPT export, JSONL; idempotent re-import; malformed input imports nothing."""
import json

import pytest
from click.testing import CliRunner

from memory.errors import ImportFormatError
from memory.importers import import_file, parse_chatgpt, parse_jsonl, parse_locomo

LOCOMO = [{
    "sample_id": "conv-x",
    "conversation": {
        "speaker_a": "Caroline", "speaker_b": "Melanie",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Caroline", "dia_id": "D1:1", "text": "I went to a support group yesterday."},
            {"speaker": "Melanie", "dia_id": "D1:2", "text": "Look at my painting!",
             "blip_caption": "a photo of a sunset painting"},
        ],
        "session_2_date_time": "10:37 am on 27 June, 2023",
        "session_2": [
            {"speaker": "Melanie", "dia_id": "D2:1", "text": "We went camping."},
            {"speaker": "Caroline", "dia_id": "D2:2", "text": "Sounds fun!"},
        ],
    },
    "qa": [],
}]


def chatgpt_export():
    def node(nid, parent, children, role=None, text=None, t=None, hidden=False):
        msg = None
        if role:
            msg = {"id": nid, "author": {"role": role}, "create_time": t,
                   "content": {"content_type": "text", "parts": [text]},
                   "metadata": {"is_visually_hidden_from_conversation": True} if hidden else {}}
        return {"id": nid, "message": msg, "parent": parent, "children": children}

    return [{
        "id": "c-1", "title": "Trip planning", "create_time": 1700000000.0, "update_time": 1700000500.0,
        "current_node": "a2",
        "mapping": {
            "root": node("root", None, ["sys"]),
            "sys": node("sys", "root", ["u1"], "system", "You are ChatGPT", 1700000000.0, hidden=True),
            "u1": node("u1", "sys", ["a1"], "user", "Plan a trip to Kyoto in April.", 1700000010.0),
            "a1": node("a1", "u1", ["u2", "u2b"], "assistant", "Kyoto in April: cherry blossoms.", 1700000020.0),
            "u2b": node("u2b", "a1", [], "user", "An edited-away branch", 1700000025.0),
            "u2": node("u2", "a1", ["a2"], "user", "What about Nara?", 1700000030.0),
            "a2": node("a2", "u2", [], "assistant", "Nara is a day trip from Kyoto.", 1700000040.0),
        },
    }]


JSONL = [
    {"session": "s1", "role": "user", "text": "I started learning the cello.", "time": "2024-05-01T09:00:00Z",
     "title": "Music"},
    {"session": "s1", "role": "assistant", "text": "How exciting!", "time": "2024-05-01T09:00:05Z"},
    {"session": "s2", "role": "user", "text": "Book a dentist visit.", "time": 1717232400, "speaker": "Sam"},
]


def write_json(tmp_path, name, data):
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def write_jsonl(tmp_path, rows, name="chat.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return p


def test_locomo_import_keeps_dates_speakers_and_captions(store, tmp_path):
    path = write_json(tmp_path, "locomo.json", LOCOMO)
    report = import_file(store, "locomo", path)
    assert (report.sessions_new, report.turns_new) == (2, 4)
    s1 = store.session(store.session_by_external_id("locomo:conv-x:session_1"))
    assert s1.started_at.startswith("2023-05-08T13:56") and s1.source == "import"
    turns = store.turns(s1.id)
    assert [t.speaker for t in turns] == ["Caroline", "Melanie"]
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[1].text == "Look at my painting! [image: a photo of a sunset painting]"
    assert all(t.created_at.startswith("2023-05-08") for t in turns)
    s2 = store.turns(store.session_by_external_id("locomo:conv-x:session_2"))
    assert s2[0].role == "assistant" and s2[0].created_at.startswith("2023-06-27T10:37")


def test_reimport_adds_nothing(store, tmp_path):
    path = write_json(tmp_path, "locomo.json", LOCOMO)
    import_file(store, "locomo", path)
    again = import_file(store, "locomo", path)
    assert (again.sessions_new, again.turns_new, again.turns_skipped) == (0, 0, 4)
    assert store.count("sessions") == 2 and store.count("turns") == 4
    grown = json.loads(json.dumps(LOCOMO))
    grown[0]["conversation"]["session_2"].append({"speaker": "Melanie", "dia_id": "D2:3", "text": "Yes!"})
    more = import_file(store, "locomo", write_json(tmp_path, "grown.json", grown))
    assert more.turns_new == 1 and store.count("turns") == 5


def test_chatgpt_import_follows_the_current_thread(store, tmp_path):
    path = write_json(tmp_path, "conversations.json", chatgpt_export())
    report = import_file(store, "chatgpt", path)
    assert (report.sessions_new, report.turns_new) == (1, 4)
    sid = store.session_by_external_id("chatgpt:c-1")
    s = store.session(sid)
    assert s.title == "Trip planning" and s.started_at.startswith("2023-11-14T22:13:20")
    turns = store.turns(sid)
    assert [t.text for t in turns] == ["Plan a trip to Kyoto in April.", "Kyoto in April: cherry blossoms.",
                                       "What about Nara?", "Nara is a day trip from Kyoto."]
    assert [t.role for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[1].created_at.startswith("2023-11-14T22:13:40")
    assert import_file(store, "chatgpt", path).turns_new == 0


def test_jsonl_import(store, tmp_path):
    path = write_jsonl(tmp_path, JSONL)
    report = import_file(store, "jsonl", path)
    assert (report.sessions_new, report.turns_new) == (2, 3)
    s1 = store.session(store.session_by_external_id("jsonl:s1"))
    assert s1.title == "Music" and s1.started_at.startswith("2024-05-01T09:00:00")
    s2 = store.turns(store.session_by_external_id("jsonl:s2"))
    assert s2[0].speaker == "Sam" and s2[0].created_at.startswith("2024-06-01T09:00")
    assert import_file(store, "jsonl", path).turns_new == 0
    assert store.count("turns") == 3


@pytest.mark.parametrize("bad, where", [
    ('{"session": "s1", "role": "user", "text": "x", "time": "2024-05-01"', "line 3"),
    (json.dumps({"session": "s1", "role": "robot", "text": "x", "time": "2024-05-01T00:00:00"}), "line 3"),
    (json.dumps({"session": "s1", "role": "user", "text": "", "time": "2024-05-01T00:00:00"}), "line 3"),
    (json.dumps({"session": "s1", "role": "user", "text": "x", "time": "yesterday"}), "line 3"),
    (json.dumps({"role": "user", "text": "x", "time": "2024-05-01T00:00:00"}), "line 3"),
])
def test_malformed_jsonl_names_the_line_and_imports_nothing(store, tmp_path, bad, where):
    path = write_jsonl(tmp_path, [JSONL[0], JSONL[1], bad, JSONL[2]])
    with pytest.raises(ImportFormatError) as e:
        import_file(store, "jsonl", path)
    assert where in str(e.value) and "Nothing was imported" in str(e.value)
    assert store.count("sessions") == 0 and store.count("turns") == 0


def test_malformed_locomo_names_the_record_and_imports_nothing(store, tmp_path):
    bad = json.loads(json.dumps(LOCOMO * 2))
    bad[1]["sample_id"] = "conv-y"
    del bad[1]["conversation"]["session_2"][1]["text"]
    with pytest.raises(ImportFormatError) as e:
        import_file(store, "locomo", write_json(tmp_path, "bad.json", bad))
    assert "record 1 (conv-y), session_2, turn 1" in str(e.value)
    assert store.count("turns") == 0
    bad_date = json.loads(json.dumps(LOCOMO))
    bad_date[0]["conversation"]["session_2_date_time"] = "someday"
    with pytest.raises(ImportFormatError, match="record 0"):
        parse_locomo(write_json(tmp_path, "bad2.json", bad_date))


def test_malformed_json_names_line_and_column(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('[\n {"id": "c-1",\n  "mapping": }\n]')
    with pytest.raises(ImportFormatError, match="line 3"):
        parse_chatgpt(p)


def test_malformed_chatgpt_names_the_conversation(store, tmp_path):
    data = chatgpt_export() * 2
    data[1] = dict(data[1], id="c-2", create_time="not a time")
    with pytest.raises(ImportFormatError, match=r"conversation 1 \(c-2\)"):
        import_file(store, "chatgpt", write_json(tmp_path, "c.json", data))
    assert store.count("sessions") == 0


def test_jsonl_turn_ids_are_stable_without_ids(tmp_path):
    rows = [JSONL[0], JSONL[0]]
    a = parse_jsonl(write_jsonl(tmp_path, rows))
    b = parse_jsonl(write_jsonl(tmp_path, rows, "again.jsonl"))
    ids = [t.external_id for t in a[0].turns]
    assert ids == [t.external_id for t in b[0].turns] and len(set(ids)) == 2


def test_cli_import_and_reimport(tmp_path):
    from assistant.cli import cli

    db = tmp_path / "cli.db"
    path = write_jsonl(tmp_path, JSONL)
    runner = CliRunner()
    r = runner.invoke(cli, ["--db", str(db), "import", "jsonl", str(path), "--segmenter", "none"])
    assert r.exit_code == 0, r.output
    assert "Imported 3 new turns in 2 new sessions" in r.output
    r = runner.invoke(cli, ["--db", str(db), "import", "jsonl", str(path), "--segmenter", "none"])
    assert "Imported 0 new turns" in r.output and "3 turns were already there" in r.output


def test_cli_malformed_input_is_one_sentence(tmp_path):
    from assistant.cli import cli

    path = write_jsonl(tmp_path, [JSONL[0], "{oops"])
    r = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "import", "jsonl", str(path)])
    assert r.exit_code == 1 and "line 2" in r.output and "Traceback" not in r.output


@pytest.mark.real
def test_cli_memory_search_prints_date_topic_score_ids(tmp_path, shared_data):
    from assistant.cli import cli

    db = tmp_path / "s.db"
    small = json.loads((shared_data / "locomo" / "locomo_dev.json").read_text())[:1]
    small[0]["conversation"] = {k: v for k, v in small[0]["conversation"].items()
                                if k in ("speaker_a", "speaker_b") or k.startswith(("session_1", "session_2"))}
    path = write_json(tmp_path, "small.json", small)
    runner = CliRunner()
    r = runner.invoke(cli, ["--db", str(db), "import", "locomo", str(path), "--segmenter", "fast"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["--db", str(db), "memory", "search", "LGBTQ support group"])
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0]
    assert "May 2023" in first and "score" in first and "turns" in first
    # session 1 is of 8 May 2023, session 2 of 25 May: a question naming the day ranks that day first
    r = runner.invoke(cli, ["--db", str(db), "memory", "search", "What did Caroline and Melanie say on 25 May 2023?"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == '"25 May 2023": memories dated 24–28 May 2023 rank higher.'
    assert lines[1].strip().startswith("25 May 2023")
    # what no memory says gets the closest in meaning, and says so
    r = runner.invoke(cli, ["--db", str(db), "memory", "search", "xylophone quartet"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == 'No memory says "xylophone quartet"; these are the closest in meaning.'
    assert "score" in lines[1]


def _zip(tmp_path, members: dict[str, bytes]):
    import zipfile

    path = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_cli_imports_the_zip_of_a_chatgpt_export(tmp_path):
    """The ZIP as ChatGPT's data export sends it (conversations.json beside chat.html and the rest): read
    before, it failed with a UTF-8 error."""
    from assistant.cli import cli

    db = tmp_path / "zip.db"
    path = _zip(tmp_path, {"chat.html": b"<html></html>", "user.json": b"{}", "file-abc.png": b"\x89PNG\x00\xff",
                           "conversations.json": json.dumps(chatgpt_export()).encode()})
    r = CliRunner().invoke(cli, ["--db", str(db), "import", "chatgpt", str(path), "--segmenter", "none"])
    assert r.exit_code == 0, r.output
    assert "Imported 4 new turns in 1 new session" in r.output
    from memory.store import Store

    store = Store(db)
    sid = store.session_by_external_id("chatgpt:c-1")
    assert [t.text for t in store.turns(sid)][0] == "Plan a trip to Kyoto in April."
    store.close()
    r = CliRunner().invoke(cli, ["--db", str(db), "import", "chatgpt", str(path), "--segmenter", "none"])
    assert "Imported 0 new turns" in r.output


def test_a_zip_without_conversations_json_is_one_sentence(tmp_path):
    from assistant.cli import cli

    path = _zip(tmp_path, {"chat.html": b"<html></html>"})
    r = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "import", "chatgpt", str(path)])
    assert r.exit_code == 1 and "is a ZIP without conversations.json" in r.output
    assert "Traceback" not in r.output and "UTF-8" not in r.output


def test_conversations_json_in_a_folder_of_the_zip_is_found(tmp_path):
    path = _zip(tmp_path, {"export/conversations.json": json.dumps(chatgpt_export()).encode()})
    assert parse_chatgpt(path)[0].title == "Trip planning"
