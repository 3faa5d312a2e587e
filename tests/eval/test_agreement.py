"""chrF (Popović 2015) against an implementation nobody here wrote (sacreBLEU), and closed forms."""

import random

import pytest
from sacrebleu.metrics import CHRF

from a2dkit.eval.agreement import char_ngrams, chrf, chrf_statistics, sentence_chrf

PAIRS = [
    ("The capital of France is Paris.", "The capital of France is Paris."),
    ("The ocean is a celestial of the planet.", "The ocean covers most of the planet."),
    ("In a week, there are 5 days.", "There are seven days in a week."),
    ("- n the", "Photosynthesis turns light into sugar."),
    ("", "An empty answer scores nothing."),
    ("a", "a"),
]


def _random_text(rng: random.Random) -> str:
    words = ["cat", "dog", "the", "a", "sun", "moon", "Paris", "7", "days", "week", "x"]
    return " ".join(rng.choice(words) for _ in range(rng.randint(0, 8)))


def test_corpus_and_sentence_scores_equal_sacrebleu():
    rng = random.Random(0)
    pairs = PAIRS + [(_random_text(rng), _random_text(rng)) for _ in range(200)]
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    reference = CHRF().corpus_score(hyps, [refs]).score / 100
    assert abs(chrf(hyps, refs, beta=1.0) - reference) > 1e-3  # control: the check can tell
    assert chrf(hyps, refs) == pytest.approx(
        CHRF().corpus_score(hyps, [refs]).score / 100, abs=1e-12
    )
    for h, r in pairs:
        assert sentence_chrf(h, r) == pytest.approx(CHRF().sentence_score(h, [r]).score / 100,
                                                    abs=1e-12)  # fmt: skip


def test_identical_texts_score_one_and_disjoint_texts_zero():
    assert chrf(["same words"], ["same words"]) == 1.0
    assert chrf(["abc"], ["xyz"]) == 0.0
    assert chrf([""], ["anything"]) == 0.0  # no order occurs in both texts


def test_whitespace_is_ignored_and_counts_are_clipped():
    assert char_ngrams("a b  a", 1) == {"a": 2, "b": 1}
    # hypothesis "aaa" against reference "a": 3 unigrams, 1 reference unigram, 1 clipped match;
    # the reference has no bigram, so the hypothesis's 2 bigrams are not counted (sacreBLEU)
    assert chrf_statistics("aaa", "a", order=2) == [[3, 1, 1], [0, 0, 0]]


def test_recall_weighs_four_times_precision_by_hand():
    # unigrams only: hyp "ab" vs ref "abcd": P = 2/2 = 1, R = 2/4 = 0.5
    # F_2 = (1 + 4) P R / (4 P + R) = 2.5 / 4.5
    assert chrf(["ab"], ["abcd"], order=1) == pytest.approx(2.5 / 4.5, abs=1e-15)
    assert chrf(["abcd"], ["ab"], order=1) == pytest.approx(
        2.5 / 2.5 * 0.5 / 0.5 * (5 * 0.5) / (4 * 0.5 + 1), abs=1e-15
    )


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"len\(hypotheses\)=1 != len\(references\)=2"):
        chrf(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        chrf([], [])
    with pytest.raises(TypeError, match="not one string"):
        chrf("a", "a")
    with pytest.raises(ValueError, match="order=0"):
        chrf(["a"], ["a"], order=0)
