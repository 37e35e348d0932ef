"""The official a2a-sdk against the daemon's A2A door: it reads the agent card, verifies its signature
against the installation's public key, and streams a SendStreamingMessage reply from a session served
by the local model. Run by crates/wopr/tests/api_clients.rs with WOPR_API, WOPR_TOKEN, WOPR_SESSION and
WOPR_PUBLIC_KEY (hex) set."""

import asyncio
import base64
import os

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import Message, Part, Role, SendMessageRequest
from a2a.utils.signing import InvalidSignaturesError, create_signature_verifier
from google.protobuf.struct_pb2 import Struct
from jwt.api_jwk import PyJWK

API = os.environ["WOPR_API"]
SESSION = os.environ["WOPR_SESSION"]
KEY_HEX = os.environ["WOPR_PUBLIC_KEY"]


def jwk_of(key_hex: str) -> PyJWK:
    x = base64.urlsafe_b64encode(bytes.fromhex(key_hex)).rstrip(b"=").decode()
    return PyJWK({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": key_hex})


def key_provider(kid, jku):
    assert kid == KEY_HEX, f"the card is signed by {kid}, not this installation ({KEY_HEX})"
    return jwk_of(KEY_HEX)


async def main() -> None:
    headers = {"Authorization": f"Bearer {os.environ['WOPR_TOKEN']}"}
    async with httpx.AsyncClient(headers=headers, timeout=120) as http:
        resolver = A2ACardResolver(http, API)
        verify = create_signature_verifier(key_provider, ["EdDSA"])
        card = await resolver.get_agent_card(signature_verifier=verify)
        assert card.capabilities.streaming
        assert SESSION in [s.id for s in card.skills], list(card.skills)

        # A card altered after signing fails the check.
        card.description += " (altered)"
        try:
            verify(card)
            raise SystemExit("an altered card passed the signature check")
        except InvalidSignaturesError:
            pass

        client = ClientFactory(ClientConfig(httpx_client=http, streaming=True)).create(
            await resolver.get_agent_card()
        )
        metadata = Struct()
        metadata.update({"session": SESSION})
        message = Message(message_id="m1", role=Role.ROLE_USER, parts=[Part(text="Say hello.")], metadata=metadata)
        kinds, pieces, final = [], [], None
        async for event in client.send_message(SendMessageRequest(message=message)):
            kind = event.WhichOneof("payload")
            kinds.append(kind)
            if kind == "artifact_update":
                pieces.extend(p.text for p in event.artifact_update.artifact.parts)
            elif kind == "status_update":
                final = event.status_update.status
        assert kinds[0] == "task", kinds
        assert kinds.count("artifact_update") >= 2, kinds
        assert kinds[-1] == "status_update", kinds
        assert final.state == 3, final  # TASK_STATE_COMPLETED
        streamed = "".join(pieces)
        assert streamed.strip(), "no text was streamed"
        assert final.message.parts[0].text == streamed, (final.message.parts[0].text, streamed)

        client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(
            await resolver.get_agent_card()
        )
        message = Message(message_id="m2", role=Role.ROLE_USER, parts=[Part(text="Say hi.")], metadata=metadata)
        answers = [e async for e in client.send_message(SendMessageRequest(message=message))]
        assert answers[0].message.parts[0].text.strip(), answers
        print(f"streamed {len(pieces)} pieces; card signed by {KEY_HEX[:8]}")


asyncio.run(main())
