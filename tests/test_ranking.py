"""Sentence splitting, LexRank and sentence selection (summarizer.models.ranking)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from summarizer.models.ranking import (
    DEFAULT_CONFIG,
    MAX_PIECE_CHARS,
    is_dangling,
    is_noise,
    is_run_in_heading,
    lexrank,
    rank_sentences,
    split_paragraphs,
    split_sentences,
    stem,
    summarize_text,
    tokenize,
)

from .conftest import corpus_file

STORY = """The Lost Harbor

By JANE Q. WRITER

[Transcriber's Note: This etext was produced from Planet Stories 1950. Extensive research did not
uncover any evidence that the U.S. copyright on this publication was renewed.]

Captain Mara Vell brought the freighter Osprey down on the flooded moon of Tethys at dawn.
The harbor city below her had been silent for nine years, and nobody at the Guild knew why.
Mara had volunteered for the landing because her brother had been the harbor master there.

"Yeah."

"Sure."

The first thing Mara found in the harbor was the empty control tower, its doors sealed from inside.
Inside the tower the harbor logs described a tide machine that the colonists had built beneath the city.
The logs said the tide machine had drowned the lower city when the colonists tried to stop it.
Mara decided to find the tide machine and shut it down before the Osprey was drowned as well.

CHAPTER TWO

She climbed down into the flooded lower city with a lamp and a pressure suit.
Deep below the streets she found the tide machine still running, and her brother asleep beside it.
Her brother had kept the machine running alone for nine years to hold back a much larger flood.
Mara and her brother shut the tide machine down slowly, and the harbor city rose from the water.
The Guild later named the harbor after her brother, and Mara flew the Osprey home.
"""


def _words(sentences: list[str]) -> int:
    return sum(len(s.split()) for s in sentences)


# -- splitting ---------------------------------------------------------------------------


def test_paragraphs_join_wrapped_lines_and_hyphenation() -> None:
    text = (
        "The quick brown fox\njumps over the lazy\ndog. It was exhaus-\nted.\n\n  \nSecond para-\ngraph here."
    )
    assert split_paragraphs(text) == [
        "The quick brown fox jumps over the lazy dog. It was exhausted.",
        "Second paragraph here.",
    ]


def test_paragraphs_keep_markdown_structure() -> None:
    text = "# Title\nIntro line one\ncontinues here.\n- item one\n- item two\n\nBody."
    assert split_paragraphs(text) == [
        "# Title",
        "Intro line one continues here.",
        "- item one",
        "- item two",
        "Body.",
    ]


def test_paragraphs_separate_pdf_headings_and_running_heads() -> None:
    text = (
        "Journal of Bridges 12 (2020)\n"
        "INTRODUCTION\n"
        "The committee met on Tuesday and approved the new budget for the\n"
        "coming year after a long debate about the state of the old bridge\n"
        "and its piers.\n"
    )
    assert split_paragraphs(text) == [
        "Journal of Bridges 12 (2020)",
        "INTRODUCTION",
        "The committee met on Tuesday and approved the new budget for the coming year after "
        "a long debate about the state of the old bridge and its piers.",
    ]


def test_paragraphs_accept_crlf_and_form_feed() -> None:
    assert split_paragraphs("One line\r\nstill one.\fPage two.") == ["One line still one.", "Page two."]


def test_sentences_respect_abbreviations_and_quotes() -> None:
    text = (
        "Mr. Smith met Dr. Jones at 5 p.m. on Main St. in Springfield. They talked.\n\n"
        '"Where are you going?" she asked. "Home," he said. The U.S. Army came later.'
    )
    assert [s.text for s in split_sentences(text)] == [
        "Mr. Smith met Dr. Jones at 5 p.m. on Main St. in Springfield.",
        "They talked.",
        '"Where are you going?" she asked.',
        '"Home," he said.',
        "The U.S. Army came later.",
    ]


def test_quoted_speech_stays_whole() -> None:
    text = (
        '"Not at all. I was referring to the local ones only." Her eyes twinkled. '
        '"What do they turn into?" Retief asked. "Nothing," she said, "nothing at all."'
    )
    assert [s.text for s in split_sentences(text)] == [
        '"Not at all. I was referring to the local ones only."',
        "Her eyes twinkled.",
        '"What do they turn into?"',
        "Retief asked.",
        '"Nothing," she said, "nothing at all."',
    ]


def test_sentences_of_pdf_text_wrapped_mid_sentence() -> None:
    text = "The committee met on\nTuesday and approved\nthe budget. Work starts\nin May.\n"
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == [
        "The committee met on Tuesday and approved the budget.",
        "Work starts in May.",
    ]
    assert [s.index for s in sentences] == [0, 1]
    assert {s.paragraph for s in sentences} == {0}


def test_sentences_record_paragraphs() -> None:
    sentences = split_sentences("A first one. A second one.\n\nA third one.")
    assert [(s.index, s.paragraph) for s in sentences] == [(0, 0), (1, 0), (2, 1)]


def test_long_unpunctuated_line_is_cut() -> None:
    text = " ".join(f"word{i}" for i in range(40_000))  # about 300,000 characters, one line
    sentences = split_sentences(text)
    assert all(len(s.text) <= MAX_PIECE_CHARS for s in sentences)
    assert " ".join(s.text for s in sentences) == text


def test_blank_text_has_no_sentences() -> None:
    assert split_sentences("  \n\n \t ") == []
    assert summarize_text(" \n ", 50) == []


# -- tokens and LexRank ---------------------------------------------------------------------


def test_stem_and_tokenize() -> None:
    assert stem("running") == "run"
    assert stem("ponies") == "pony"
    assert stem("classes") == "class"
    assert stem("quickly") == "quick"
    assert stem("bus") == "bus"
    assert tokenize("The Harbors were flooding, and the harbor flooded!") == (
        "harbor",
        "flood",
        "harbor",
        "flood",
    )


def test_lexrank_prefers_the_hub_of_a_star() -> None:
    n = 6
    similarity = np.eye(n)
    similarity[0, 1:] = similarity[1:, 0] = 0.5  # sentence 0 is similar to all others
    scores = lexrank(similarity)
    assert scores.sum() == pytest.approx(1.0)
    assert int(np.argmax(scores)) == 0
    assert scores[0] > 2 * scores[1]
    assert np.allclose(scores[1:], scores[1])


def test_lexrank_threshold_and_isolated_nodes() -> None:
    similarity = np.array([[1.0, 0.05, 0.0], [0.05, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # below the threshold nothing is linked: every sentence is equally central
    assert np.allclose(lexrank(similarity, threshold=0.1), 1 / 3)
    linked = lexrank(similarity, threshold=0.01)
    assert linked[0] == pytest.approx(linked[1])
    assert linked[2] < linked[0]


def test_lexrank_rejects_non_square() -> None:
    with pytest.raises(ValueError, match="square"):
        lexrank(np.zeros((2, 3)))
    assert lexrank(np.zeros((0, 0))).shape == (0,)


# -- summaries -----------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [15, 40, 80, 1000])
def test_summary_respects_budget_and_document_order(budget: int) -> None:
    summary = summarize_text(STORY, budget)
    assert summary
    assert _words(summary) <= budget
    positions = [STORY.replace("\n", " ").find(s[:30]) for s in summary]
    assert all(p >= 0 for p in positions)
    assert positions == sorted(positions)


def test_summary_skips_filler() -> None:
    summary = " ".join(summarize_text(STORY, 1000))
    for filler in ("Transcriber", "JANE", "Yeah", "Sure", "CHAPTER TWO", "The Lost Harbor"):
        assert filler not in summary
    assert "tide machine" in summary


def test_filters_keep_ordinary_sentences() -> None:
    text = (
        "By Monday, the council had voted to rebuild the old bridge over the river. "
        "The court held that copyright protects the bridge design drawings as well. "
        "Nobody objected to the bridge plan at the council meeting that evening."
    )
    assert summarize_text(text, 100) == [s.text for s in split_sentences(text)]


def test_summary_picks_central_sentences() -> None:
    summary = " ".join(summarize_text(STORY, 45))
    assert "tide machine" in summary


def test_duplicates_are_not_repeated() -> None:
    text = "The reactor failed at noon and the crew evacuated the station. " * 2 + (
        "Engineers later found a cracked coolant pipe in the reactor. "
        "The station reopened a month after the reactor was repaired."
    )
    summary = summarize_text(text, 200)
    assert len(summary) == len(set(summary))
    assert summary.count("The reactor failed at noon and the crew evacuated the station.") == 1


def test_fallbacks_never_return_empty() -> None:
    assert summarize_text("Hello", 5) == ["Hello"]
    assert summarize_text("42", 5) == ["42"]
    long_sentence = " ".join(["alpha"] * 30) + "."
    (truncated,) = summarize_text(long_sentence, 10)
    assert len(truncated.split()) == 10
    assert truncated.endswith("\u2026")


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_words"):
        summarize_text(STORY, 0)


def _squality() -> list[dict[str, object]]:
    path = corpus_file("reference", "squality-dev.jsonl")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_chunks_and_a_large_text_fill_their_budget() -> None:
    # Speed is measured by the benchmarks (bench/), not here.
    stories = _squality()
    documents = [str(s["document"]) for s in stories]
    for chunk in [d[o : o + 4000] for d in documents[:10] for o in (0, 8000)]:
        assert 40 <= _words(summarize_text(chunk, 80)) <= 80
    large = "\n\n".join(documents)[:300_000]
    assert 200 <= _words(summarize_text(large, 250)) <= 250


@pytest.mark.slow
def test_beats_lead_k_on_squality_and_qmsum() -> None:
    """End to end (ingestion and map-reduce), on the first 8 documents of each set."""
    from rouge_score import rouge_scorer

    from bench.quality import DEFAULT_SETS, _load, _score, lead, ours

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    for path in DEFAULT_SETS.values():
        if not path.exists():
            pytest.skip(f"{path} not available")
        docs = _load(path, 8)
        totals = {"ours": np.zeros(3), "lead": np.zeros(3)}
        for doc in docs:
            budget = max(len(r.split()) for r in doc.references)
            for name, summary in (("ours", ours(doc.document, budget)), ("lead", lead(doc.document, budget))):
                scores = _score(scorer, summary, doc.references)
                totals[name] += [scores[m][0] for m in ("rouge1", "rouge2", "rougeLsum")]
        assert (totals["ours"] > totals["lead"]).all(), (path.name, totals)


def test_footnotes_and_citations_are_not_picked() -> None:
    body = (
        "Free culture is a tradition that copyright law now threatens. "
        "The law once regulated only commercial copies of creative work. "
        "Today the law regulates almost every copy, and most copies are now digital. "
    )
    notes = (
        "See Recording Industry Association of America, 2002 Yearend Statistics, available at link #15. "
        "Slide,\u201d New York Times, 23 December 2002. "
        "(New York: New York University Press, 1980). "
    )
    chosen = " ".join(summarize_text(body + notes, 200))
    assert "link #15" not in chosen and "New York Times" not in chosen and "Press, 1980" not in chosen
    assert "copyright law" in chosen


@pytest.mark.parametrize(
    ("sentence", "dangling"),
    [
        ("But unlike Code, the argument here is not much about the Internet itself.", True),
        ("However, the law changed in 1976.", True),
        ("Indeed, no work would pass into the public domain.", True),
        ("In fact the court agreed.", True),
        ("He waited for the tide to turn.", True),
        ("These estimates should be considered very rough.", True),
        ("This paper describes a tracing JIT compiler.", False),
        ("Professor E: But we talked about that already.", True),
        ("Captain Mara Vell brought the freighter down at dawn.", False),
        ("Butter was scarce in the city.", False),
    ],
)
def test_dangling_sentences(sentence: str, dangling: bool) -> None:
    assert is_dangling(sentence) is dangling


@pytest.mark.parametrize(
    "sentence",
    [
        "Figure 3. Trace tree of the inner loop.",
        "Dynamo: A transparent dynamic optimization system. In Proceedings of PLDI, pages 1\u201312, 2000.",
        "radio, 3\u20136, 128, 196, 256 and more.",
        "This PDF version of Free Culture is licensed under a Creative Commons license.",
    ],
)
def test_noise_sentences(sentence: str) -> None:
    assert is_noise(sentence)


def test_a_dangling_sentence_comes_with_its_predecessor_or_not_at_all() -> None:
    text = (
        "The harbor city of Tethys had been silent for nine years after the great flood. "
        "But the harbor logs of Tethys described the tide machine beneath the city of Tethys. "
        "Mara found the tide machine of Tethys and shut the tide machine down at last. "
        "The Guild later named the harbor of Tethys after her brother and his tide machine. "
    ) * 1
    for budget in (15, 30, 60):
        chosen = summarize_text(text, budget)
        for k, sentence in enumerate(chosen):
            if sentence.startswith("But"):
                assert k > 0 and chosen[k - 1].startswith("The harbor city"), chosen


def test_title_words_raise_a_sentence_score() -> None:
    text = (
        "The weather in the valley was mild all through the spring and the summer. "
        "Farmers in the valley planted wheat, barley and oats in the spring. "
        "The siege of Vicksburg lasted forty-seven days in the summer of 1863. "
        "Prices of wheat and barley rose in the valley markets during the summer. "
    )
    sentences = split_sentences(text)
    plain = dict(zip(*rank_sentences(sentences), strict=True))
    titled = dict(zip(*rank_sentences(sentences, title="The Siege of Vicksburg"), strict=True))
    assert titled[2] - plain[2] == pytest.approx(DEFAULT_CONFIG.w_title)
    assert all(titled[i] == pytest.approx(plain[i]) for i in (0, 1, 3))


def test_entities_and_numbers_are_covered() -> None:
    text = (
        "The general marched the army toward the river in the early spring of the war. "
        "The army crossed the river at night and camped in the hills above the town. "
        "Grant reached Vicksburg on 18 May 1863 with 45,000 men, and Grant began the siege. "
        "The army waited in the hills above the river while the spring rain fell. "
        "Vicksburg held out until July 1863, when Pemberton surrendered to Grant. "
    )
    with_entities = " ".join(summarize_text(text, 30))
    without = " ".join(summarize_text(text, 30, replace(DEFAULT_CONFIG, w_entity=0.0)))
    assert all(name in with_entities for name in ("Vicksburg", "Grant", "1863")), with_entities
    # the entity term, not the rest of the score, makes the choice
    assert not any(name in without for name in ("Vicksburg", "Grant", "1863")), without


def test_transcript_markup_and_fillers_are_not_summaries() -> None:
    text = "\n".join(
        [
            "Project Manager: Uh - huh . {vocalsound} Yeah .",
            "Marketing: Um , yeah , okay , right .",
            "Industrial Designer: The remote control needs a rubber case and a kinetic battery .",
            "User Interface: I think , uh , yeah .",
            "Project Manager: The budget for the remote control is twelve euros fifty per unit .",
        ]
        * 2
    )
    chosen = summarize_text(text, 40)
    assert chosen and all("{" not in s for s in chosen)
    assert all("remote control" in s for s in chosen), chosen


def test_a_line_ending_in_a_function_word_is_wrapped_not_a_heading() -> None:
    """freeculture.pdf p. 235: a short line ending in "for" before a capital is not a line of its own."""
    text = (
        "In this context, copyright is not an engine of free expression. Copyright is a brake.\n"
        "You may well ask, \u201cBut if digital technologies lower the costs for\n"
        "Brewster Kahle, then they will lower the costs for Random House, too.\n"
        "So won\u2019t Random House do as well as Brewster Kahle in spreading\n"
        "culture widely?\u201d\n"
    )
    sentences = [s.text for s in split_sentences(text)]
    assert not any(s.startswith(("Brewster", "So won")) for s in sentences)
    assert sentences[-1].startswith("You may well ask") and sentences[-1].endswith("widely?\u201d")
    heading = "Introduction\nThe first line of text that is long enough to set the width."
    assert split_paragraphs(heading)[0] == "Introduction"


def test_recurring_names_raise_a_prose_sentence() -> None:
    text = (
        "The old freighter left the station at dawn with a cargo of mail for the colonies. "
        "On the third day, Strike met Cob on the bridge and Strike told Cob about Gorman. "
        "The engines of the old freighter failed again on the long run to the colonies. "
        "Later that week, Cob said that Gorman had sent Strike away to punish him. "
        "The crew of the freighter waited for the engines to be repaired at the station. "
        "Strike and Cob agreed that Gorman would never forgive them. "
    )
    gains = _gains(text, w_names=0.0)
    assert gains[1] > 0.5 * DEFAULT_CONFIG.w_names  # a third of its words are recurring names
    assert gains[0] == pytest.approx(0.0) and gains[2] == pytest.approx(0.0)  # none at all
    assert gains[5] == pytest.approx(DEFAULT_CONFIG.w_names)  # the densest gets the full weight


TRANSCRIPT = "\n".join(
    [
        "Project Manager: I think we should maybe talk about what you want for the next meeting .",
        "Marketing: The survey shows that most customers want a remote control with a large screen .",
        "Industrial Designer: I mean , we can build our case from rubber if you want a soft case .",
        "Project Manager: The team chose a rubber case and a kinetic battery for the remote control .",
        "User Interface: I am not sure we have the time for a kinetic battery in our schedule .",
        "Marketing: The remote control should cost less than twelve euros fifty per unit .",
    ]
)


def test_transcripts_can_be_told_in_the_third_person() -> None:
    from summarizer.models.ranking import TRANSCRIPT_CONFIG, is_transcript

    sentences = split_sentences(TRANSCRIPT)
    assert is_transcript(sentences)
    assert not is_transcript(split_sentences(STORY))
    third = replace(TRANSCRIPT_CONFIG, person_penalty=1.25)
    penalised = dict(zip(*rank_sentences(sentences, third), strict=True))
    plain = dict(zip(*rank_sentences(sentences, TRANSCRIPT_CONFIG), strict=True))
    assert all(penalised[i] < plain[i] for i in (0, 2, 4))  # "I think we should ...", "if you want"
    assert all(penalised[i] == pytest.approx(plain[i]) for i in (1, 3, 5))
    chosen = summarize_text(TRANSCRIPT, 30, third)
    assert not any(" I " in f" {s} " or " we " in f" {s} " for s in chosen), chosen
    assert TRANSCRIPT_CONFIG.w_names == 0 < DEFAULT_CONFIG.w_names  # speakers are not characters


def test_the_configuration_follows_the_kind_of_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from summarizer.models import ranking

    used: list[ranking.RankingConfig] = []
    real = ranking._rank

    def spy(sentences, config, title):  # type: ignore[no-untyped-def]
        used.append(config)
        return real(sentences, config, title)

    monkeypatch.setattr(ranking, "_rank", spy)
    summarize_text(TRANSCRIPT, 30)
    summarize_text(STORY, 30)
    custom = replace(DEFAULT_CONFIG, w_title=0.0)
    summarize_text(TRANSCRIPT, 30, custom)  # an explicit configuration is kept
    assert used == [ranking.TRANSCRIPT_CONFIG, DEFAULT_CONFIG, custom]


def test_two_quoted_lines_are_two_sentences() -> None:
    text = (
        'Cob waved an expressive arm in the air. "But dammit, man, I thought...." '
        '"Never thought of that," mused Cob. "Hello there." "Go away!" he said.'
    )
    assert [s.text for s in split_sentences(text)] == [
        "Cob waved an expressive arm in the air.",
        '"But dammit, man, I thought...."',
        '"Never thought of that," mused Cob.',
        '"Hello there."',
        '"Go away!" he said.',
    ]
    # not inside a quotation, nor after a closing quote without sentence punctuation
    assert len(split_sentences('She said "it is over." "No," he said.')) == 2
    assert len(split_sentences('The word "alpha" "Beta" and more.')) == 1


def test_a_papers_keyword_lines_are_not_candidates() -> None:
    text = (
        "We present a compilation technique for dynamic languages that records hot loop traces. "
        "Keywords JavaScript, just-in-time compilation, trace trees. "
        "General Terms Design, Experimentation, Measurement, Performance. "
        "The compiler generates machine code for the hot loop traces it records at run time. "
        "Our compiler for dynamic languages is faster than the interpreter on loop traces. "
    )
    sentences = split_sentences(text)
    candidates, _ = rank_sentences(sentences)
    assert candidates == [0, 3, 4], [sentences[i].text for i in candidates]


def test_a_run_in_heading_is_no_candidate() -> None:
    """tracemonkey.pdf: "8. Related Work / Trace optimization for dynamic languages. The closest..."."""
    text = (
        "We are able to outperform the fastest available compiler on 9 of 26 benchmarks.\n"
        "8. Related Work\n"
        "Trace optimization for dynamic languages. The closest area of related work is on applying "
        "trace optimization to type-specialize dynamic languages. Existing work shares the idea.\n\n"
        "Speaker A: Okay then. We should cut the travel budget this year."
    )
    sentences = split_sentences(text)
    flags = {s.text: is_run_in_heading(sentences, s.index) for s in sentences}
    assert flags["Trace optimization for dynamic languages."]
    assert [text for text, flag in flags.items() if flag] == ["Trace optimization for dynamic languages."]
    candidates, _ = rank_sentences(sentences)
    assert all(not flags[sentences[i].text] for i in candidates)


def test_a_number_ending_a_sentence_ends_it_in_a_batch() -> None:
    """pysbd, given both paragraphs at once, read "line 4." and "5." as a numbered list (tracemonkey.pdf)."""
    text = (
        "The loop becomes hot, so TraceMonkey starts recording on line 4. Recording goes on.\n\n"
        "The first trace covers lines 4 and 5. After compiling it, TraceMonkey loops back to line 1."
    )
    assert [s.text for s in split_sentences(text)] == [
        "The loop becomes hot, so TraceMonkey starts recording on line 4.",
        "Recording goes on.",
        "The first trace covers lines 4 and 5.",
        "After compiling it, TraceMonkey loops back to line 1.",
    ]


def _gains(text: str, **off: float) -> dict[int, float]:
    """Per candidate, its score under DEFAULT_CONFIG minus its score with the ``off`` weights changed."""
    sentences = split_sentences(text)
    on = dict(zip(*rank_sentences(sentences), strict=True))
    base = dict(zip(*rank_sentences(sentences, replace(DEFAULT_CONFIG, **off)), strict=True))
    return {i: on[i] - base[i] for i in on}


def test_spoken_first_and_second_person_is_penalised_not_an_authors_we() -> None:
    text = (
        "Strike walked to the bridge of the old freighter and looked at the stars. "
        '"I told you that we would never reach the colonies," Cob said to the captain. '
        "We present a new engine for the old freighter that reaches the colonies in a week. "
        "The captain and the engineer repaired the engine of the freighter at the station. "
        'In our tests we call the new engine of the freighter "the fast engine" throughout. '
    )
    gains = _gains(text, quoted_person_penalty=0.0)
    assert gains[1] < 0  # "I", "you", "we" inside the quotation
    assert gains[0] == pytest.approx(0.0) and gains[3] == pytest.approx(0.0)
    assert gains[2] == pytest.approx(0.0)  # a paper's "We present", outside quotation marks
    assert gains[4] == pytest.approx(0.0)  # "our", "we" outside the quotation it holds
    share = 3 / len(split_sentences(text)[1].text.replace(",", " ").split())
    assert gains[1] == pytest.approx(-DEFAULT_CONFIG.quoted_person_penalty * share, rel=0.2)


def test_frequent_words_and_full_clauses_raise_a_sentence() -> None:
    text = (
        "The freighter carried the mail from the station to the colonies every month. "
        "Radio, spectrum, antennas, licences, frequencies, transmitters and receivers. "
        "The freighter left the station with the mail for the colonies again in the spring. "
        "Engineers replaced corroded valves, gaskets, pumps, filters and compressors. "
    )
    frequency = _gains(text, w_frequency=0.0)
    # sentences 0 and 2 are made of the text's recurring words (freighter, mail, station, colonies)
    assert min(frequency[0], frequency[2]) > max(frequency[1], frequency[3])
    assert max(frequency.values()) == pytest.approx(DEFAULT_CONFIG.w_frequency)
    function = _gains(text, w_function=0.0)
    assert min(function[0], function[2]) > max(function[1], function[3])  # clauses, not lists of nouns
    assert all(0.0 <= g <= DEFAULT_CONFIG.w_function for g in function.values())
