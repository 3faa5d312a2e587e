"""Synthetic SFT tasks: determinism, disjoint splits, answers re-derived from prompts, scoring,
and the sampled exact-match evaluation (oracle models, closed-form forward-pass counts)."""

import copy

import pytest
import torch
from conftest import make_tiny_ar

from a2dkit.convert import to_diffusion
from a2dkit.data.preprocess import chat_prompts, tokenize_sft
from a2dkit.data.synthetic import DEFAULT_TASKS, TASKS, make_synthetic_dataset
from a2dkit.eval.exact_match import compare_decoders, decoder_table, exact_match, exact_match_eval
from a2dkit.samplers import BD3LMSampler, MDLMSampler


def _solve(prompt: str) -> tuple[str, str]:
    """Independent oracle: (task, answer) parsed back from the user prompt."""
    head, _, rest = prompt.partition(": ")
    if prompt.startswith("Add "):
        a, _, b = prompt.removeprefix("Add ").removesuffix(".").split()
        return "add", str(int(a) + int(b))
    if head == "Copy":
        return "copy", rest
    if head == "Reverse the words":
        return "reverse", " ".join(rest.split()[::-1])
    if head == "Sort the digits":
        return "sort", " ".join(sorted(rest.split()))
    if head in ("First digit", "Last digit"):
        return head.split()[0].lower(), rest.split()[0 if head == "First digit" else -1]
    raise AssertionError(f"unparseable prompt {prompt!r}")


def _prompts(split) -> list[str]:
    return [m[0]["content"] for m in split["messages"]]


def test_same_seed_same_rows_other_seed_other_rows():
    a, b = make_synthetic_dataset(50, 10, seed=3), make_synthetic_dataset(50, 10, seed=3)
    assert a["train"].to_list() == b["train"].to_list()
    assert a["test"].to_list() == b["test"].to_list()
    assert make_synthetic_dataset(50, 10, seed=4)["train"].to_list() != a["train"].to_list()


def test_train_and_test_prompts_are_disjoint_and_unique():
    ds = make_synthetic_dataset(1500, 300, seed=0)
    train, test = _prompts(ds["train"]), _prompts(ds["test"])
    assert (len(train), len(test)) == (1500, 300)
    assert len(set(train) | set(test)) == 1800


def test_answers_recomputed_from_the_prompt():
    ds = make_synthetic_dataset(400, 100, seed=1, tasks=TASKS)  # every task, incl. first/last
    for split in ("train", "test"):
        for row in ds[split]:
            user, assistant = row["messages"]
            assert (user["role"], assistant["role"]) == ("user", "assistant")
            assert (row["task"], row["answer"]) == _solve(user["content"])
            assert assistant["content"] == row["answer"]
            assert len(row["answer"].split()) <= 5  # short: <= 5 words / digit groups


def test_tasks_subset_and_every_task_appears():
    ds = make_synthetic_dataset(200, 0, tasks=("add", "sort"))
    assert set(ds["train"]["task"]) == {"add", "sort"} and len(ds["test"]) == 0
    assert set(make_synthetic_dataset(400, 0)["train"]["task"]) == set(DEFAULT_TASKS)
    assert set(make_synthetic_dataset(600, 0, tasks=TASKS)["train"]["task"]) == set(TASKS)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match=r"tasks=\['mul'\] must be a non-empty subset"):
        make_synthetic_dataset(tasks=["mul"])
    with pytest.raises(ValueError, match="num_test=-1 must be an integer >= 0"):
        make_synthetic_dataset(10, -1)
    with pytest.raises(ValueError, match="could only draw 8100 distinct prompts"):
        make_synthetic_dataset(8100, 1, tasks=("add",))  # 90 * 90 distinct "Add a and b."


def test_exact_match_closed_form():
    refs = ["81", "red blue", "3 5 9", "x"]
    assert exact_match(refs, refs) == 1.0
    preds = [" 81\n<|im_end|>junk", "red blue<|endoftext|><|endoftext|>", "3 5", "y"]
    assert exact_match(preds, refs) == 2 / 4
    assert exact_match(["<|im_end|>81"], ["81"]) == 0.0  # cut at the first stop string
    assert exact_match([""], [" <|endoftext|>"]) == 1.0
    with pytest.raises(ValueError, match=r"len\(predictions\)=1 != len\(references\)=2"):
        exact_match(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        exact_match([], [])


# ---------------------------------------------------------------- exact-match evaluation
class Oracle(torch.nn.Module):
    """A tiny A2D model (kept for its config and KV cache) whose logits are replaced: at generated
    position j of a row, all mass on token j of ``solve(prompt) + "<|im_end|>\\n"``, then EOS.
    ``solve`` returning None makes the row emit EOS only. The prompt is read back from the input
    ids whenever the model sees it (every MDLM call; the first, cache-filling BD3LM call)."""

    def __init__(self, model, tokenizer, solve):
        super().__init__()
        self.model, self.config, self.tok, self.solve = model, model.config, tokenizer, solve
        self.rows: list[tuple[int, list[int]]] = []  # (prompt length, target ids) per batch row

    @property
    def device(self):
        return self.model.device

    def _parse(self, ids: list[int]) -> tuple[int, list[int]]:
        user = self.tok.decode(ids).split("<|im_start|>user\n")[1].split("<|im_end|>")[0]
        chat = [{"role": "user", "content": user}]
        prompt = self.tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        answer = self.solve(user)
        target = [] if answer is None else self.tok(answer + "<|im_end|>\n")["input_ids"]
        return len(self.tok(prompt)["input_ids"]), target

    def forward(self, input_ids, position_ids=None, past_key_values=None, **kwargs):
        fresh = past_key_values is None or past_key_values.get_seq_length() == 0
        out = self.model(input_ids, position_ids=position_ids, past_key_values=past_key_values,
                         **kwargs)  # fmt: skip
        if fresh:
            self.rows = [self._parse(row) for row in input_ids.tolist()]
        logits = torch.zeros_like(out.logits)  # (B, L, V)
        for b, (n_prompt, target) in enumerate(self.rows):
            for col, pos in enumerate(position_ids[b].tolist()):
                j = pos - n_prompt
                logits[b, col, target[j] if 0 <= j < len(target) else self.tok.eos_token_id] = 30
        out.logits = logits
        return out


@pytest.fixture(scope="module")
def tiny_a2d(small_tokenizer):
    tok = copy.deepcopy(small_tokenizer)
    return to_diffusion(make_tiny_ar("qwen3", tok), tok)[:2]


def _oracle(tiny_a2d, solve):
    model, tok = tiny_a2d
    return Oracle(model, tok, solve), tok


def test_chat_prompts_are_the_unsupervised_prefix_of_sft(small_tokenizer):
    ds = make_synthetic_dataset(0, 6, seed=2)["test"]
    for prompt, row in zip(chat_prompts(ds, small_tokenizer), ds, strict=True):
        sft = tokenize_sft(row, small_tokenizer, max_length=512)
        assert sft["input_ids"][: len(prompt)] == prompt
        assert sft["labels"][: len(prompt)] == [-100] * len(prompt)
        assert sft["labels"][len(prompt)] != -100


def _answer(prompt: str) -> str:
    return _solve(prompt)[1]


@pytest.mark.parametrize("sampler_cls", [MDLMSampler, BD3LMSampler])
def test_oracle_scores_one_and_eos_only_scores_zero(tiny_a2d, sampler_cls):
    ds = make_synthetic_dataset(0, 7, seed=5)["test"]
    kw = dict(max_new_tokens=32, steps=32, block_size=8, batch_size=3)  # 3 batches: 3 + 3 + 1
    perfect = exact_match_eval(*_oracle(tiny_a2d, _answer), ds, sampler_cls, **kw)
    assert perfect["accuracy"] == 1.0 and perfect["references"] == ds["answer"]
    assert all(v == 1.0 for v in perfect["by_task"].values())
    no_column = exact_match_eval(*_oracle(tiny_a2d, _answer), ds.remove_columns("answer"),
                                 sampler_cls, **kw)  # fmt: skip
    assert no_column["references"] == ds["answer"]  # read from the assistant turn instead
    silent = exact_match_eval(*_oracle(tiny_a2d, lambda p: None), ds, sampler_cls, **kw)
    assert silent["accuracy"] == 0.0 and set(silent["by_task"]) == set(ds["task"])


def test_accuracy_per_task_matches_which_tasks_the_model_solves(tiny_a2d):
    ds = make_synthetic_dataset(0, 12, seed=6)["test"]
    add_only = _oracle(tiny_a2d, lambda p: _answer(p) if p.startswith("Add ") else None)
    result = exact_match_eval(*add_only, ds, MDLMSampler, max_new_tokens=16, steps=16)
    assert result["accuracy"] == ds["task"].count("add") / len(ds) > 0
    assert result["by_task"] == {t: float(t == "add") for t in set(ds["task"])}


def test_forward_passes_per_token_closed_form(tiny_a2d):
    ds = make_synthetic_dataset(0, 5, seed=7)["test"]
    # MDLM, one block of 16, 16 steps: 16 passes per batch for 16 positions; a one-hot oracle is
    # sure of every position, so threshold decoding fills the block in a single pass
    mdlm = compare_decoders(*_oracle(tiny_a2d, _answer), ds, MDLMSampler, threshold=0.9,
                            max_new_tokens=16, steps=16, block_size=16, batch_size=2)  # fmt: skip
    assert (mdlm["fixed"]["nfe"], mdlm["fixed"]["tokens"]) == (3 * 16, 3 * 16)
    assert (mdlm["threshold"]["nfe"], mdlm["nfe_ratio"]) == (3, 16.0)
    assert mdlm["fixed"]["accuracy"] == mdlm["threshold"]["accuracy"] == 1.0
    # BD3LM, blocks of 4, 4 steps each, EOS-only model: every row finishes in block 1, so a batch
    # costs 1 prefix pass + 4 steps (fixed) or + 1 step (threshold) for 4 generated positions
    eos = compare_decoders(*_oracle(tiny_a2d, lambda p: None), ds, BD3LMSampler,
                           max_new_tokens=16, steps=16, block_size=4, batch_size=5)  # fmt: skip
    assert (eos["fixed"]["nfe"], eos["fixed"]["tokens"], eos["threshold"]["nfe"]) == (5, 4, 2)
    assert eos["fixed"]["nfe_per_token"] == 5 / 4 and eos["nfe_ratio"] == 5 / 2
    table = decoder_table({"mdlm": mdlm, "bd3lm": eos}).splitlines()
    assert len(table) == 3 and "16.00x" in table[1] and table[2].split()[1:4] == [
        "1.250", "0.500", "2.50x"]  # fmt: skip


def test_exact_match_eval_rejects_bad_arguments(tiny_a2d):
    model, tok = tiny_a2d
    ds = make_synthetic_dataset(0, 2)["test"]
    with pytest.raises(ValueError, match="need 'messages'"):
        exact_match_eval(model, tok, ds.remove_columns("messages"), MDLMSampler)
    with pytest.raises(ValueError, match="dataset is empty"):
        exact_match_eval(model, tok, ds.select([]), MDLMSampler)
    with pytest.raises(TypeError, match="sampler_cls must be MDLMSampler or BD3LMSampler"):
        exact_match_eval(model, tok, ds, "mdlm")
    with pytest.raises(ValueError, match="batch_size=0 must be a positive integer"):
        exact_match_eval(model, tok, ds, MDLMSampler, batch_size=0)
    with pytest.raises(TypeError):  # a misspelled sampler option is not silently ignored
        exact_match_eval(model, tok, ds, MDLMSampler, max_new_token=8)
