"""Prompt-lookup drafts: what follows the latest earlier occurrence of the last n-gram."""
from assistant.decoding import draft


def test_draft_copies_what_followed_the_latest_match():
    history = [1, 2, 3, 9, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3]
    assert draft(history, n=2) == [7, 8]          # the latest earlier "1 2 3" is followed by 7 8


def test_draft_falls_back_to_a_shorter_ngram_and_may_find_nothing():
    assert draft([4, 5, 6, 7, 0, 5, 6], n=3, ngrams=(3, 2)) == [7, 0, 5]
    assert draft([1, 2, 3, 4], n=3) == []
    assert draft([], n=3) == []


def test_draft_is_cut_at_the_end_of_history():
    assert draft([1, 2, 8, 1, 2], n=5, ngrams=(2,)) == [8, 1, 2]
