"""/v1/embeddings on the default embedding model (the embedded all-MiniLM-L6-v2 unless
--embedding-model says otherwise), through the stock openai client.

Vectors are replayed from tests/integration/recordings/ by default; `--inference-mode=
record` regenerates them with the real model (it loads in under a second). Assertions are
about shape, length and which texts are closer, never exact numbers.
"""

from __future__ import annotations

import math

import openai
import pytest

TEXTS = [
    "The cat sat on the mat.",
    "A kitten is sitting on a rug.",
    "Quarterly revenue rose by eight percent.",
]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_models_list_has_the_embedding_model(
    client: openai.OpenAI, embedding_model_id: str
) -> None:
    assert embedding_model_id in {model.id for model in client.models.list()}
    assert client.models.retrieve(embedding_model_id).id == embedding_model_id


def test_embeddings_are_unit_vectors_and_similar_texts_are_closer(
    client: openai.OpenAI, embedding_model_id: str
) -> None:
    # The openai client asks for base64 by default and decodes it to floats.
    result = client.embeddings.create(model=embedding_model_id, input=TEXTS)
    assert result.model == embedding_model_id
    assert [entry.index for entry in result.data] == [0, 1, 2]
    vectors = [entry.embedding for entry in result.data]
    assert len({len(v) for v in vectors}) == 1
    for vector in vectors:
        assert math.isclose(math.sqrt(_dot(vector, vector)), 1.0, abs_tol=1e-4)
    assert _dot(vectors[0], vectors[1]) > _dot(vectors[0], vectors[2]) + 0.3
    assert result.usage.prompt_tokens == result.usage.total_tokens > 0


def test_float_encoding_and_a_single_string(client: openai.OpenAI, embedding_model_id: str) -> None:
    as_floats = client.embeddings.create(
        model=embedding_model_id, input=TEXTS[0], encoding_format="float"
    )
    as_base64 = client.embeddings.create(model=embedding_model_id, input=[TEXTS[0]])
    assert len(as_floats.data) == 1
    for a, b in zip(as_floats.data[0].embedding, as_base64.data[0].embedding, strict=True):
        assert math.isclose(a, b, abs_tol=1e-6)


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ("", "input"),
        ([], "input"),
        ([[1, 2, 3]], "input"),
    ],
)
def test_bad_input_is_a_400_naming_it(
    client: openai.OpenAI, embedding_model_id: str, value: object, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=embedding_model_id, input=value)  # type: ignore[arg-type]
    assert caught.value.param == param


def test_other_dimensions_are_a_400(client: openai.OpenAI, embedding_model_id: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=embedding_model_id, input="x", dimensions=7)
    assert caught.value.param == "dimensions"


def test_chat_with_the_embedding_model_is_a_400(
    client: openai.OpenAI, embedding_model_id: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=embedding_model_id, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.param == "model"
