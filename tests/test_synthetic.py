"""Synthetic SFT tasks: determinism, disjoint splits, answers re-derived from prompts, scoring."""

import pytest

from a2dkit.synthetic import TASKS, exact_match, make_synthetic_dataset


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
    ds = make_synthetic_dataset(400, 100, seed=1)
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
    assert set(make_synthetic_dataset(400, 0)["train"]["task"]) == set(TASKS)


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
