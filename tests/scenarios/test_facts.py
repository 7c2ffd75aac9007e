"""Facts across sessions: four chats on four days through the Assistant (the real default model, greedy;
the real embedder and SQLite file) state 13 facts about the user and about their brother Tom, sister Anna
and friend Maya, some of the same kind (two allergies, three jobs). Then `assistant consolidate` runs, a
new session asks 12 questions about them, and `assistant export journal` is read line by line: every line
about a fact names the right person, and nothing in it is the assistant's words or the transcript.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

import memory.store
from assistant.config import Config
from assistant.models import DEFAULT_MODEL
from assistant.wiring import Options, build
from memory.clock import to_iso

DAYS = [datetime(2025, 3, d, 18, 30, tzinfo=timezone.utc) for d in (3, 5, 10, 13)]
CHATS = [  # one list of user messages a day; the assistant answers each
    ["Hi! I'm allergic to penicillin, but my brother Tom is allergic to peanuts.",
     "My sister Anna works as a pilot, and I work as a nurse at the children's hospital.",
     "Can you suggest three names for a goldfish?"],             # its suggestions are not the user's
    ["My dentist appointment is on Thursday 13 March at 9am.",
     "My friend Maya's birthday is on 21 June.",
     "Our cat Pepper is four years old.",
     "What is your favourite colour?"],                           # what it says of itself is not the user's
    ["I decided to sell my car and cycle to work instead.",
     "Tom is moving to Lisbon in May.",
     "I'm planning a trip to Iceland in August with Anna."],
    ["I've started learning the cello.",
     "Maya has a new job as an architect.",
     "My favourite food is mushroom risotto."],
]
QUESTIONS = [  # (question, words one of which a right answer holds)
    ("What am I allergic to?", ["penicillin"]),
    ("What is my brother Tom allergic to?", ["peanut"]),
    ("What does my sister Anna do for work?", ["pilot"]),
    ("What is my job?", ["nurse"]),
    ("When is my dentist appointment?", ["13", "thursday"]),
    ("When is Maya's birthday?", ["21"]),
    ("What is my cat called?", ["pepper"]),
    ("How will I get to work from now on?", ["cycl", "bike", "bicycle"]),
    ("Where is Tom moving?", ["lisbon"]),
    ("Where am I travelling in August?", ["iceland"]),
    ("Which instrument am I learning?", ["cello"]),
    ("What is Maya's new job?", ["architect"]),
]
JOURNAL = [  # (a word of the fact, how every journal line holding it must say whose fact it is)
    ("penicillin", r"\byou('re| are) allergic to penicillin"),
    ("peanuts", r"\byour brother Tom is allergic to peanuts"),
    ("pilot", r"\byour sister Anna works as a pilot"),
    ("nurse", r"\byou work as a nurse"),
    ("dentist", r"^(\[[^\]]+\] )?Your dentist appointment is on Thursday 13 March"),
    ("21 June", r"\byour friend Maya's birthday is on 21 June"),
    ("Pepper", r"^(\[[^\]]+\] )?Your cat Pepper is four years old"),
    ("cycle", r"^(\[[^\]]+\] )?You decided to sell your car and cycle to work"),
    ("Lisbon", r"^(\[[^\]]+\] )?Tom is moving to Lisbon"),
    ("Iceland", r"^(\[[^\]]+\] )?You're planning a trip to Iceland in August with Anna"),
    ("cello", r"^(\[[^\]]+\] )?You've started learning the cello"),
    ("architect", r"^(\[[^\]]+\] )?Maya has a new job as an architect"),
    ("risotto", r"^(\[[^\]]+\] )?Your favourite food is mushroom risotto"),
]
# Words the journal adds around what people said.
FRAME = {"you", "your", "yours", "yourself", "you're", "you've", "you'll", "journal", "short", "week",
         "march", "2025", "monday", "wednesday", "thursday"}


@pytest.fixture
def clock(monkeypatch):
    """The time turns and sessions are stamped with: each chat on its own day, a message a minute."""
    now = [DAYS[0]]

    def utcnow():
        now[0] += timedelta(minutes=1)
        return to_iso(now[0])
    monkeypatch.setattr(memory.store, "utcnow", utcnow)
    return now


def cli(db, *args):
    from assistant.cli import cli as main

    r = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower().replace("’", "'")))


def test_facts_across_sessions(tmp_path, clock, monkeypatch, default_model, real_embedder):
    from assistant.cli import common as cli_common

    db = tmp_path / "memory" / "assistant.db"
    db.parent.mkdir()
    assistant = build(Options(db=db, model=DEFAULT_MODEL, config=Config(max_answer_tokens=48)),
                      embedder=real_embedder, model=default_model)
    t0 = time.perf_counter()
    said: list[str] = []          # every answer the assistant gave in the chats
    for day, messages in zip(DAYS, CHATS):
        clock[0] = day
        sid = None
        for text in messages:
            a = assistant.answer(sid, text)
            sid = a.session_id
            said.append(a.text)
            print(f"[{day:%d %b}] U: {text}\n         A: {a.text}")
    chat_seconds = time.perf_counter() - t0

    # `assistant consolidate`, on the model and embedder already loaded
    clock[0] = DAYS[-1] + timedelta(hours=8)
    monkeypatch.setattr(cli_common, "load_llm", lambda obj, progress=None: default_model)
    monkeypatch.setattr(cli_common, "embedder", lambda: real_embedder)
    t1 = time.perf_counter()
    out = cli(db, "consolidate")
    consolidate_seconds = time.perf_counter() - t1
    print(out)
    assert "Done" in out

    # a new session asks about every fact
    t2 = time.perf_counter()
    passed, sid = 0, None
    for question, right in QUESTIONS:
        a = assistant.answer(sid, question)
        sid = a.session_id
        ok = any(w in a.text.lower() for w in right)
        passed += ok
        print(f"Q: {question}\nA: {a.text}\n-> {'right' if ok else 'WRONG (wanted ' + ' or '.join(right) + ')'}")
    qa_seconds = time.perf_counter() - t2
    assistant.close()

    journal = cli(db, "export", "journal")
    print(journal)
    # every fact line, outside "How things changed" (which quotes two facts of a timeline side by side)
    facts = [line[2:] for part in re.split(r"^### ", journal, flags=re.M)
             if not part.startswith("How things changed") for line in part.splitlines() if line.startswith("- ")]
    problems = []
    print("journal lines checked:")
    for word, whose in JOURNAL:
        about = [line for line in facts if word.lower() in line.lower()]
        problems += [f"no line about {word!r}"] if not about else []
        for line in about:
            right = re.search(whose, line, re.I) is not None
            problems += [] if right else [f"{line!r} does not say whose {word!r} it is"]
            print(f"  {'ok   ' if right else 'WRONG'} {line}")
    # nothing the assistant said: every word of a fact is the user's (or the journal's own framing)
    user_words = words(" ".join(m for chat in CHATS for m in chat)) | FRAME
    for line in facts:
        extra = words(re.sub(r"^\[[^\]]+\] ", "", line)) - user_words
        problems += [f"{line!r} holds words the user never said: {sorted(extra)}"] if extra else []
    assert "Assistant" not in journal and "User:" not in journal
    for answer in said:                       # no answer in its own words pasted in, and no question
        assert not (words(answer) - user_words) or answer.strip() not in journal
    assert "?" not in "\n".join(facts)

    print(f"{passed}/{len(QUESTIONS)} answers right; chats {chat_seconds:.0f} s, consolidation "
          f"{consolidate_seconds:.0f} s, questions {qa_seconds:.0f} s")
    assert not problems, "\n".join(problems)
    assert passed >= 11, f"only {passed}/{len(QUESTIONS)} answers right"
