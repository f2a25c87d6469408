"""Toy text tasks (layout, answers, disjoint splits), mask pictures, and the masks gallery example."""

import os

import numpy as np
import pytest
from PIL import Image

from kgen.datasets.text import CLS_ID, PAD_ID, SEP_ID, exact_match, toy_seq2seq
from kgen.text.plot import ALLOWED_COLOUR, BLOCKED_COLOUR, mask_gallery, mask_image
from repo_scripts import load_script


@pytest.mark.parametrize("task", ["reverse", "sort"])
def test_toy_tasks_follow_the_unilm_layout_and_answer_the_task(task):
    data = toy_seq2seq(task, 200, seed=0)
    for tokens, segments, source, target in zip(data["token_ids"], data["segment_ids"], data["source_ids"],
                                                data["target_ids"]):
        n, m = np.sum(source != PAD_ID), np.sum(target != PAD_ID)
        assert source[0] == CLS_ID and source[n - 1] == SEP_ID and target[m - 1] == SEP_ID
        np.testing.assert_array_equal(tokens[: n + m], np.concatenate([source[:n], target[:m]]))
        np.testing.assert_array_equal(segments[: n + m], [0] * n + [1] * m)
        assert np.all(tokens[n + m:] == PAD_ID) and np.all(segments[n + m:] == 0)
        symbols = source[1: n - 1]
        expected = symbols[::-1] if task == "reverse" else np.sort(symbols)
        np.testing.assert_array_equal(target[: m - 1], expected)


def test_train_and_test_sources_are_disjoint():
    train = {tuple(s) for s in toy_seq2seq("reverse", 3000, min_length=3, max_length=3, seed=0)["source_ids"]}
    test = {tuple(s) for s in toy_seq2seq("reverse", 300, split="test", min_length=3, max_length=3, seed=1)["source_ids"]}
    assert train and test and not (train & test)
    assert len(train) > 800  # most of the 900 training sequences of length 3 were drawn: overlap was possible


def test_exact_match_counts_whole_rows():
    target = np.array([[5, 4, 2, 0], [6, 2, 0, 0]])
    assert exact_match(np.array([[5, 4, 2], [6, 2, 0]]), target) == 1.0
    assert exact_match(np.array([[5, 4, 2], [6, 3, 0]]), target) == 0.5
    with pytest.raises(ValueError, match="generated"):
        exact_match(np.zeros((3, 2)), target)


def test_mask_image_paints_allowed_cells_and_leaves_blocked_cells_white():
    mask = np.tril(np.ones((3, 4), bool))
    picture = mask_image(mask, cell=5)
    assert picture.shape == (16, 21, 3) and picture.dtype == np.uint8
    for i in range(3):
        for j in range(4):
            centre = picture[i * 5 + 3, j * 5 + 3]
            assert tuple(centre) == (ALLOWED_COLOUR if mask[i, j] else BLOCKED_COLOUR)
    assert mask_gallery([mask, mask.T], cell=5, gap=4).shape == (21, 21 + 4 + 16, 3)
    with pytest.raises(ValueError, match="mask"):
        mask_image(np.ones((2, 2, 2)))


@pytest.mark.jax
def test_masks_gallery_example_writes_its_pictures(tmp_path):
    module = load_script("examples/masks_gallery.py")
    assert module.main(["--backend", "jax", "--out", str(tmp_path), "--cell", "4"]) == 0
    unilm = np.asarray(Image.open(tmp_path / "unilm.png"))
    assert unilm.shape == (41, 41, 3)
    assert tuple(unilm[4 * 6 + 2, 4 * 7 + 2]) == BLOCKED_COLOUR  # row 白 (6) does not see 切 (7)
    assert tuple(unilm[4 * 7 + 2, 4 * 6 + 2]) == ALLOWED_COLOUR  # row 切 sees 白
    assert os.path.getsize(tmp_path / "gallery.png") > 0
