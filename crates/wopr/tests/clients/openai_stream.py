"""The official OpenAI SDK against the daemon's OpenAI-compatible door, on a session served by the
local model. Run by crates/wopr/tests/api_clients.rs with WOPR_API (the API's base URL), WOPR_TOKEN and
WOPR_SESSION set."""

import os

from openai import AuthenticationError, NotFoundError, OpenAI

base = os.environ["WOPR_API"] + "/v1"
session = os.environ["WOPR_SESSION"]
client = OpenAI(base_url=base, api_key=os.environ["WOPR_TOKEN"], max_retries=0)

models = [m.id for m in client.models.list()]
assert session in models, models

pieces, finish = [], None
stream = client.chat.completions.create(
    model=session, messages=[{"role": "user", "content": "Say hello."}], stream=True
)
for chunk in stream:
    choice = chunk.choices[0]
    if choice.delta.content:
        pieces.append(choice.delta.content)
    if choice.finish_reason:
        finish = choice.finish_reason
assert "".join(pieces).strip(), "no text was streamed"
assert len(pieces) >= 2, f"the answer came in {len(pieces)} piece(s), not streamed"
assert finish == "stop", finish

answer = client.chat.completions.create(model=session, messages=[{"role": "user", "content": "Say hi."}])
assert answer.choices[0].message.content.strip(), answer

try:
    OpenAI(base_url=base, api_key="wrong", max_retries=0).models.list()
    raise SystemExit("a wrong key was accepted")
except AuthenticationError:
    pass

try:
    client.chat.completions.create(model="no-such-session", messages=[{"role": "user", "content": "hi"}])
    raise SystemExit("an unknown session answered")
except NotFoundError:
    pass

print(f"streamed {len(pieces)} pieces")
