from memory.segments import MAX_USER_RUN, exchanges
from memory.store import Turn


def turn(i, role, speaker=None):
    return Turn(id=i, session_id=1, role=role, text=f"t{i}", created_at="2025-01-01T00:00:00+00:00",
                speaker=speaker)


def test_user_turn_and_replies_form_one_exchange():
    ex = exchanges([turn(1, "user"), turn(2, "assistant"), turn(3, "user"), turn(4, "assistant")])
    assert [e.turn_ids for e in ex] == [[1, 2], [3, 4]]


def test_a_room_heard_while_listening_is_not_one_giant_exchange():
    heard = [turn(i, "user", "Room") for i in range(1, 11)]
    ex = exchanges(heard)
    assert len(ex) == 10 // MAX_USER_RUN
    assert all(len(e.turns) <= MAX_USER_RUN for e in ex)


def test_a_change_of_speaker_opens_an_exchange():
    ex = exchanges([turn(1, "user", "Ann"), turn(2, "user", "Bob"), turn(3, "assistant")])
    assert [e.turn_ids for e in ex] == [[1], [2, 3]]
