"""The built-in embedder's query adapter (memory/adapter.py, memory/query_adapter.npy)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from memory.adapter import training_pairs
from memory.embed import ADAPTER_PATH, apply_adapter

BENCH = Path(__file__).resolve().parents[2] / "memory" / "bench"

# fresh memories and paraphrased questions (in none of the training or bench files)
MEMS = ["나 갑각류 알레르기 있어서 게 먹으면 입술 부어", "여자친구랑 다음 달 3일에 오사카 가기로 했어",
        "우리 집 햄스터 이름은 호떡이야", "회사가 을지로에 있어서 점심은 맨날 노포에서 먹어",
        "I teach piano to kids on weekends", "엄마가 허리가 안 좋으셔서 한의원 다니셔",
        "나 매운 거 전혀 못 먹어", "I'm saving for a used motorbike",
        "요즘 퇴근하고 중국어 학원 다녀", "막내 삼촌이 제주도에서 귤 농사 지으셔"]
QUERIES = [("대게 먹으러 가자는데 괜찮을까?", 0), ("꽃게탕 시켜도 돼?", 0), ("일본 여행 언제 간다고 했지?", 1),
           ("그날 누구랑 간다 그랬지", 1), ("우리 집 애완동물 이름 뭐였더라", 2), ("호떡이 간식 뭐 사줄까", 2),
           ("직장 근처 맛집 추천해줘", 3), ("회사 어느 동네야?", 3), ("주말에 뭐 가르친다고 했지", 4),
           ("토요일에 시간 돼?", 4), ("어머니 어디 편찮으시다 했지?", 5), ("엄마 치료 받는 데", 5),
           ("불닭볶음면 먹을래?", 6), ("마라탕 몇 단계로 시킬까", 6), ("돈 모으는 이유가 뭐였지", 7),
           ("what am i saving money for", 7), ("저녁에 뭐 배운다 했지?", 8), ("퇴근 후에 시간 있어?", 8),
           ("귤 보내주시는 친척 누구였지", 9), ("제주에 사는 가족", 9)]


def test_the_training_pairs_are_new_sentences():
    memories, queries, positives = training_pairs([BENCH / "train_pairs.jsonl"])
    assert len(queries) >= 300 and len(positives) == len(queries) and len(memories) >= 100
    reported = set()
    for name in ("test.json", "holdout.json"):
        data = json.loads((BENCH / name).read_text(encoding="utf-8"))
        reported |= {m["text"].strip() for m in data["memories"]} | {q["text"].strip() for q in data["queries"]}
    assert not reported & (set(memories) | set(queries))


def test_a_zero_adapter_is_the_identity():
    v = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    np.testing.assert_allclose(apply_adapter(v, np.zeros((8, 8), np.float32)), v, atol=1e-6)


@pytest.mark.slow
def test_it_changes_queries_only_and_ranks_paraphrases_better(embedder):
    from memory.embed import FusedEmbedder

    assert ADAPTER_PATH.stat().st_size < 2_000_000
    assert embedder.adapter is not None and embedder.adapter.shape == (embedder.dim, embedder.dim)
    plain = FusedEmbedder(*embedder.parts, adapter=None)
    # memories: the same vectors as without it (stored vectors and the store's model name stay valid)
    np.testing.assert_array_equal(embedder.encode(MEMS), plain.encode(MEMS))
    texts = [q for q, _ in QUERIES]
    assert float(np.min(np.sum(embedder.encode(texts, kind="query") * plain.encode(texts, kind="query"), axis=1))) < 0.9

    def mrr(emb) -> float:
        cos = emb.encode(texts, kind="query") @ emb.encode(MEMS).T
        return float(np.mean([1 / (1 + (cos[i] > cos[i, m]).sum()) for i, (_, m) in enumerate(QUERIES)]))

    assert mrr(plain) < 0.8 < 0.9 < mrr(embedder)  # measured: .75 without, .93 with
    # the threshold moved with the cosines: every relevant memory here is above it
    cos = embedder.encode(texts, kind="query") @ embedder.encode(MEMS).T
    assert min(cos[i, m] for i, (_, m) in enumerate(QUERIES)) > embedder.min_cosine == -0.05 and plain.min_cosine == 0.55
