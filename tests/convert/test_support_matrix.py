"""The support matrix: rebuilt over every causal-LM model type, compared with the committed one."""

import json

import pytest
from transformers import AutoConfig

from a2dkit import convert
from a2dkit.convert import support_matrix
from a2dkit.models import families

COMMITTED = json.loads(support_matrix.JSON_PATH.read_text())
NAMED = {
    families.ENCODER_ONLY,
    families.ENCODER_DECODER,
    families.RECURRENT,
    families.LINEAR_HYBRID,
    families.OWN_MASK,
    families.COMPOSITE,
    families.NO_CAUSAL_LM,
    families.CONTRACT,
    support_matrix.NO_TINY,
    support_matrix.CRASHED,
}


def _consistent(row: dict) -> None:
    """A row converts iff it has no reason and no failing check: never accepted while failing."""
    if row["verdict"] == support_matrix.CONVERTS:
        assert row["reason"] is None and row["failed"] == [] and row["checks"], row
    else:
        assert row["reason"] in NAMED, row
        assert (row["reason"] == families.CONTRACT) == bool(row["failed"]), row


def test_committed_matrix_is_consistent_and_its_page_current():
    rows = COMMITTED["rows"]
    assert {r["model_type"] for r in rows} <= set(families.causal_lm_model_types())
    for row in rows:
        _consistent(row)
    assert support_matrix.BOOK_PATH.read_text() == support_matrix.to_markdown(rows)
    assert support_matrix.counts(rows)[support_matrix.CONVERTS] >= 80


@pytest.fixture(scope="module")
def fresh_rows():
    """The whole matrix, rebuilt now in fresh worker processes (nothing cached)."""
    return {r["model_type"]: r for r in support_matrix.build()}


def test_no_model_type_regresses(fresh_rows):
    before = {r["model_type"]: r for r in COMMITTED["rows"]}
    assert set(fresh_rows) == set(families.causal_lm_model_types())
    regressed = [
        t
        for t, row in before.items()
        if row["verdict"] == support_matrix.CONVERTS
        and fresh_rows[t]["verdict"] != support_matrix.CONVERTS
    ]
    assert not regressed, {t: fresh_rows[t]["detail"] for t in regressed}
    for row in fresh_rows.values():
        _consistent(row)


def test_detect_agrees_with_the_matrix(fresh_rows):
    """detect refuses exactly the statically refused rows (the rest are left to the contract)."""
    static = {families.ENCODER_ONLY, families.ENCODER_DECODER, families.RECURRENT}
    static |= {families.LINEAR_HYBRID, families.OWN_MASK, families.COMPOSITE}
    for t, row in fresh_rows.items():
        if row["reason"] == families.NO_CAUSAL_LM:
            continue
        verdict = convert.detect(AutoConfig.for_model(t))
        assert verdict.supported == (row["reason"] not in static), (t, verdict)


def test_contract_refusal_is_what_convert_raises(fresh_rows):
    """A model type the matrix refuses by the contract is refused by convert's gate, too."""
    failing = [t for t, r in fresh_rows.items() if r["reason"] == families.CONTRACT]
    assert failing, "no model type fails the contract: the negative control is gone"
    t = failing[0]
    attn = fresh_rows[t]["failed"][0].split(":")[0]
    with pytest.raises(convert.UnsupportedModelError, match="contract failed"):
        convert.contract_gate(AutoConfig.for_model(t), attn)
