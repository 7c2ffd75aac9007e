from assistant.text import counts, plural


def test_plural_says_one_of_a_thing_and_many_of_them():
    assert plural(1, "turn") == "1 turn"
    assert plural(0, "turn") == "0 turns"
    assert plural(2, "new session") == "2 new sessions"
    assert plural(1, "memory") == "1 memory" and plural(3, "memory") == "3 memories"
    assert plural(2, "child", "children") == "2 children"
    assert plural(5000, "session") == "5,000 sessions"
    assert plural(1.0, "minute") == "1 minute" and plural(2.5, "minute") == "2.5 minutes"


def test_counts_reads_like_text_not_a_python_dict():
    assert counts({"fast": 15, "llm": 1}) == "fast 15, llm 1"
    assert counts({}) == ""
