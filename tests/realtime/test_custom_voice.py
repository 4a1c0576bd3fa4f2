"""Custom voice (hybrid): the model answers in text, callbridge speaks it sentence by
sentence, and a barge-in replaces the model's text item with the words actually spoken."""

from __future__ import annotations

from callbridge.agent.base import AgentTranscript
from callbridge.testing.fake_realtime import Say, Script
from tests.waiting import until

from .conftest import FakeFactory, on_both
from .helpers import FakeSpeaker, quick_options, start_call

ANSWER = (
    "We open at nine. On Saturdays we open a little later, at ten in the morning, "
    "and close at four. Sundays we are closed."
)


@on_both
async def test_text_replies_spoken_by_our_voice_and_cut_by_text(make_fake: FakeFactory) -> None:
    fake = await make_fake(Script([Say(ANSWER)]))
    speaker = FakeSpeaker()
    options = quick_options(custom_voice=True)
    call = await start_call(fake, options=options, speaker=speaker, greeting="Hello, Contoso!")
    try:
        session = fake.sessions[0]
        update = session.client_events("session.update")[0]["session"]
        if fake.dialect == "voicelive":
            assert update["modalities"] == ["text"] and "voice" not in update
        else:
            assert update["output_modalities"] == ["text"]
            assert "voice" not in update["audio"]["output"]
        # The greeting is ours: spoken at once, and the model is told it was said.
        await until(lambda: speaker.said == ["Hello, Contoso!"], what="greeting")
        greeting_item = session.client_events("conversation.item.create")[0]["item"]
        text_type = "text" if fake.dialect == "voicelive" else "output_text"
        assert greeting_item == {
            "type": "message",
            "role": "assistant",
            "content": [{"type": text_type, "text": "Hello, Contoso!"}],
        }
        assert not session.client_events("response.create")
        await until(lambda: not call.bridge.speaking, 5, "greeting played")

        await call.caller.say(400)
        first = "We open at nine."
        await until(lambda: len(speaker.said) >= 3, 5, "two sentences under way")
        assert speaker.said[1] == first
        start = call.bridge.played_ms()
        await until(lambda: call.bridge.played_ms() - start > 1000, 5, "into sentence two")
        await call.caller.say(400)
        await until(lambda: session.client_events("conversation.item.delete"), 5, "replace")
        answer_item = next(
            e["item"]["id"]
            for e in session.server_events("response.output_item.added")
            if e["item"]["type"] == "message"
        )
        (delete,) = session.client_events("conversation.item.delete")
        assert delete["item_id"] == answer_item
        replacement = session.client_events("conversation.item.create")[1]
        text = replacement["item"]["content"][0]["text"]
        assert text.startswith(first + " On Saturdays") and text.endswith("…"), text
        assert "Sundays" not in text
        # Our voice marks where each sentence starts, so the bridge's heard words (what a
        # call session works out) are the words the item was replaced with.
        assert call.bridge.heard[-1].text == text
        user_item = session.server_events("input_audio_buffer.committed")[0]["item_id"]
        assert replacement["previous_item_id"] == user_item
        await until(lambda: session.server_events("conversation.item.deleted"), 3, "deleted")
        texts = [
            part.get("text")
            for item in session.conversation
            if item.get("role") == "assistant"
            for part in item["content"]
        ]
        assert texts == ["Hello, Contoso!", text]  # the model's context: what was heard
        assert not session.server_events("error")
        # Transcripts are the sentences as they were made into speech.
        said = [e.text for e in call.bridge.of(AgentTranscript)]
        assert said[:2] == ["Hello, Contoso!", first]
    finally:
        await call.close()
