"""Model aliases and the default model: code written for OpenAI's model names runs
unchanged, and every answer's `model` names the model that really served it."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from convostack.testing.fake_upstream import fake_upstream_server
from convostack.testing.plugin import configured_client
from convostack.testing.upstream import FAKE_MODEL

ALIASES = {"gpt-4.1": FAKE_MODEL, "gpt-ghost": "no-such-model"}


@pytest.fixture(scope="module")
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[openai.OpenAI]:
    db = f"sqlite:///{tmp_path_factory.mktemp('aliases') / 'test.db'}"
    with fake_upstream_server(models=[FAKE_MODEL]) as upstream_url:
        settings = {
            "inference_mode": "live",  # the fake is the model: nothing to record
            "upstream": upstream_url,
            "model_aliases": ALIASES,
            "default_model": "gpt-4.1",
        }
        with configured_client(request.config, settings, db) as client:
            yield client


def test_an_aliased_response_is_served_by_the_target_and_says_so(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4.1", input="hello")
    assert response.model == FAKE_MODEL
    assert response.output_text == "echo: hello [1 messages]"
    assert client.responses.retrieve(response.id).model == FAKE_MODEL


def test_streams_and_chat_name_the_target_too(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt-4.1", input="hi") as stream:
        final = stream.get_final_response()
    assert final.model == FAKE_MODEL
    chat = client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}]
    )
    assert chat.model == FAKE_MODEL


def test_a_request_without_a_model_gets_the_default(client: openai.OpenAI) -> None:
    # The openai client requires a model; its generic post sends the body as it is.
    response = client.post("/responses", body={"input": "no model named"}, cast_to=dict)
    assert response["model"] == FAKE_MODEL


def test_aliases_are_listed_and_retrieved_under_their_own_id(client: openai.OpenAI) -> None:
    listed = [model.id for model in client.models.list()]
    assert FAKE_MODEL in listed
    assert "gpt-4.1" in listed
    assert "gpt-ghost" not in listed  # its target is served by nobody
    assert client.models.retrieve("gpt-4.1").id == "gpt-4.1"


def test_an_alias_of_a_missing_model_is_404_naming_both(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-ghost", input="hello")
    assert caught.value.code == "model_not_found"
    assert "'no-such-model' (that 'gpt-ghost' stands for)" in caught.value.message
