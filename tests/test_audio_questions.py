"""Which messages are "what did I miss" questions, which window they mean and what they are about."""
from datetime import datetime, timedelta, timezone

import pytest

from audio.questions import classify, detect_window, extract_topic, is_missed_question

TZ = timezone(timedelta(hours=1))
NOW = datetime(2025, 3, 4, 14, 0, tzinfo=TZ)


def at(h, m=0):
    return NOW.replace(hour=h, minute=m)


# The user chatted in the morning and until 13:30, then went out; asked at 14:00.
ACTIVITY = [at(9, 50), at(10, 5), at(13, 25), at(13, 30)]
SINCE_LEFT = (at(13, 30), NOW, "away")

QUESTIONS = [  # (message, window start, end, kind) -- None: since the user left
    ("What did I miss?", None),
    ("what did I miss in the last hour?", (at(13), NOW, "explicit")),
    ("What did I miss while I was out?", None),
    ("what did I miss since lunch?", None),
    ("What did I miss this morning?", (at(6), at(12), "explicit")),
    ("I'm back. What did I miss?", None),
    ("im back what did i miss", None),
    ("Anything happen while I was away?", None),
    ("Anything happen while I was at lunch?", None),
    ("did anything happen while I was in the meeting?", None),
    ("Catch me up", None),
    ("can you catch me up?", None),
    ("Did anyone say anything?", None),
    ("What was said while I was gone?", None),
    ("What have I missed?", None),
    ("did I miss anything?", None),
    ("Did I miss anything important?", None),
    ("anything I missed?", None),
    ("fill me in", None),
    ("bring me up to speed", None),
    ("I'm back! Anything new?", None),
    ("what went on while I was away?", None),
    ("what happened while I was at lunch?", None),
    ("Just got back from lunch, what's new?", None),
    ("what's been going on since I left?", None),
    ("what happened in my absence?", None),
    ("Back from the dentist. Did I miss anything?", None),
    ("What did I miss in the meeting?", None),
    ("Who came by?", None),
    ("did anyone come by while I was out?", None),
    ("did anyone ask for me?", None),
    ("Did anyone call?", None),
    ("did anyone call for me while I was out?", None),
    ("did someone leave a message?", None),
    ("who stopped by?", None),
    ("who was talking while I was away?", None),
    ("What did you hear while I was out?", None),
    ("tell me what I missed", None),
    ("give me a recap of what I missed", None),
    ("what did I miss about the budget?", None),
    ("any news from the last two hours?", (at(12), NOW, "explicit")),
    ("What was discussed between 10 and 11?", (at(10), at(11), "explicit")),
    ("fill me in on what happened since 1pm", (at(13), NOW, "explicit")),
    ("did anyone mention the printer today?", (at(0), NOW, "explicit")),
    ("what did people say in the meeting?", None),
    ("what did they say at the standup?", None),
    ("what did I miss at work today?", (at(0), NOW, "explicit")),
    ("what have I missed so far today?", (at(0), NOW, "explicit")),
    ("what was said in the last 20 minutes?", (at(13, 40), NOW, "explicit")),
    ("anything I should know from this morning?", (at(6), at(12), "explicit")),
]

NOT_QUESTIONS = [
    "I miss my dog",
    "I really miss my grandmother's cooking",
    "Did you miss me?",
    "did I miss a step in this recipe?",
    "What am I missing in this proof?",
    "What did I miss in this code?",
    "did I miss anything in the code?",
    "what did I miss on the exam?",
    "what did I miss in the last episode of Severance?",
    "Did I miss the deadline for the tax return?",
    "Have I missed any payments this month?",
    "Sorry I missed your message, what did you want to ask?",
    "I missed the bus this morning, what should I do?",
    "I'm back from vacation and I miss the beach",
    "I'll tell you what I miss about Paris",
    "Did anyone call the plumber about the leak?",
    "did anyone leave the door open?",
    "Has anyone been in space longer than a year?",
    "Who came up with the theory of relativity?",
    "Who called the police in that story?",
    "Did anyone visit Mars?",
    "There's something I miss about my old job",
    "While I was out I bought a phone; how do I set it up?",
    "I'm back",
    "what happened to the Roman empire?",
    "What happened in 1066?",
    "what happened at the Battle of Hastings?",
    "What's new in Python 3.12?",
    "What is the capital of France?",
    "summarize our chat",
    "what did the dentist say about my tooth?",
    "what was said in our last conversation?",
    "can you catch me up on the plot of Dune?",
    "fill me in on how sourdough works",
    "Did anyone say that AI will replace programmers?",
    "Miss Smith said the homework is due Monday",
    "Here are my notes from the trip. " * 8 + "I missed the bus twice. What did I miss?",
]


@pytest.mark.parametrize("text, expected", QUESTIONS)
def test_recognised_with_its_window(text, expected):
    assert is_missed_question(text), text
    w = detect_window(text, NOW, ACTIVITY)
    assert w is not None
    assert (w.start, w.end, w.kind) == (expected or SINCE_LEFT), (text, w)


@pytest.mark.parametrize("text", NOT_QUESTIONS)
def test_ordinary_chat_is_not_taken_for_it(text):
    assert classify(text) is None, text
    assert detect_window(text, NOW, ACTIVITY) is None


@pytest.mark.parametrize("text, kind", [
    ("What did I miss?", "sure"), ("did anyone say anything?", "sure"),
    ("What was said while I was gone?", "sure"), ("I'm back! Anything new?", "sure"),
    # About events at a time or place: may be about something the user told, so only "maybe".
    ("what happened at lunch?", "maybe"), ("What was discussed between 10 and 11?", "maybe"),
    ("what did they say at the standup?", "maybe"),
])
def test_how_sure(text, kind):
    assert classify(text) == kind


@pytest.mark.parametrize("text, topic", [
    ("what did I miss about the budget in the last hour?", "the budget"),
    ("did anyone mention the server migration while I was away?", "the server migration"),
    ("did anyone mention the printer today?", "the printer"),
    ("what did people say about Maria's proposal in the meeting?", "Maria's proposal"),
    ("catch me up on the budget talk from this morning", "the budget talk"),
    ("I'm back. What did I miss?", None),          # "I'm back" is not a topic
    ("Anything happen while I was at lunch?", None),
    ("fill me in on what happened since 1pm", None),
    ("what did I miss in the last hour?", None),
    ("Did anyone say anything?", None),
    ("What was discussed between 10 and 11?", None),
])
def test_topic(text, topic):
    assert extract_topic(text) == topic
