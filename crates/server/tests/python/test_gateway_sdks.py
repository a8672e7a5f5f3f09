"""The real Python SDKs against `imagegate serve`, changed in nothing but the base URL and key.

Run by crates/server/tests/python_sdks.rs, which starts the emulator and the gateway in front of
it in process and sets IMAGEGATE_GATEWAY_URL; the SDK versions are pinned in requirements.txt.
The gateway maps gpt-image-1 and gemini-2.5-flash-image to Gemini through the emulator,
google/gemini-2.5-flash-image to OpenRouter through the emulator, and the route `flaky` answers
one 429 asking for 400 ms, then images. The routes `oai`, `oai-limited` and `oai-fallback` reach
the emulator's OpenAI Images paths through imagegate's OpenAI provider (`oai-limited` allows one
image a minute upstream; `oai-fallback` is it, then Gemini). The one real wait is the openai SDK's own retry sleep in
the last test (under half a second).
"""

import base64
import os
import struct
import time
import unittest
import urllib.request
from unittest import mock

import httpx2
import openai
from google import genai
from google.genai import types

URL = os.environ["IMAGEGATE_GATEWAY_URL"]
KEY = "any-key-on-loopback"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    return struct.unpack(">II", data[16:24])


def tiny_png(width: int, height: int) -> bytes:
    """A valid grey PNG, uncompressed, for edits."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class OpenAIImages(unittest.TestCase):
    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0)

    def test_generate_b64_json(self):
        response = self.client().images.generate(model="gpt-image-1", prompt="a red fox", size="1536x1024")
        self.assertEqual(len(response.data), 1)
        self.assertEqual(png_size(base64.b64decode(response.data[0].b64_json)), (1024, 682))
        self.assertEqual(response.output_format, "png")

    def test_generate_url(self):
        response = self.client().images.generate(model="gpt-image-1", prompt="a red fox", response_format="url")
        url = response.data[0].url
        self.assertTrue(url.startswith(URL + "/v1/images/files/"), url)
        with urllib.request.urlopen(url) as image:
            self.assertEqual(image.headers["content-type"], "image/png")
            self.assertEqual(png_size(image.read()), (1024, 1024))

    def test_edit_with_two_images(self):
        images = [("a.png", tiny_png(8, 8), "image/png"), ("b.png", tiny_png(4, 4), "image/png")]
        response = self.client().images.edit(model="gpt-image-1", image=images, prompt="put them side by side")
        self.assertEqual(png_size(base64.b64decode(response.data[0].b64_json)), (1024, 1024))

    def test_the_sdk_retry_waits_exactly_the_gateways_retry_after_ms_then_succeeds(self):
        seen = []
        http_client = httpx2.Client(event_hooks={"response": [lambda r: seen.append((r.status_code, r.headers.get("retry-after-ms")))]})
        client = openai.OpenAI(
            base_url=URL + "/v1",
            api_key=KEY,
            max_retries=2,
            http_client=http_client,
            # Fail at once rather than wait inside the gateway: the 429 is the point.
            default_headers={"x-imagegate-max-wait": "0"},
        )
        real_sleep = time.sleep
        with mock.patch("openai._base_client.time.sleep", side_effect=real_sleep) as sleep:
            response = client.images.generate(model="flaky", prompt="a lighthouse")
        self.assertTrue(response.data[0].b64_json)
        statuses = [status for status, _ in seen]
        self.assertEqual(statuses[0], 429, seen)
        self.assertEqual(statuses[-1], 200, seen)
        hints = [int(ms) / 1000 for status, ms in seen if status == 429]
        self.assertTrue(0 < hints[0] <= 0.4, hints)
        # The SDK slept exactly what each 429 asked for, no more and no less.
        self.assertEqual([c.args[0] for c in sleep.call_args_list], hints)


class OpenAIUpstream(unittest.TestCase):
    """The openai SDK -> the gateway -> imagegate's OpenAI provider -> an OpenAI-shaped upstream."""

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0)

    def test_generate_and_edit_through_the_openai_provider(self):
        response = self.client().images.generate(model="oai", prompt="a heron", size="1024x1536")
        self.assertEqual(png_size(base64.b64decode(response.data[0].b64_json)), (682, 1024))
        images = [("a.png", tiny_png(8, 8), "image/png"), ("b.png", tiny_png(4, 4), "image/png")]
        response = self.client().images.edit(model="oai", image=images, prompt="side by side")
        self.assertEqual(png_size(base64.b64decode(response.data[0].b64_json)), (1024, 1024))

    def test_a_full_upstream_pool_is_a_429_for_the_sdk_and_the_fallback_route_serves(self):
        client = self.client()
        self.assertTrue(client.images.generate(model="oai-limited", prompt="a heron").data[0].b64_json)
        # The upstream's x-ratelimit-* headers said no image is left this minute: the gateway
        # answers the 429 itself, with the wait, rather than wait or ask again.
        with self.assertRaises(openai.RateLimitError) as caught:
            client.images.generate(
                model="oai-limited", prompt="a heron", extra_headers={"x-imagegate-max-wait": "0"}
            )
        wait = int(caught.exception.response.headers["retry-after"])
        self.assertTrue(50 <= wait <= 60, wait)
        response = client.images.generate(model="oai-fallback", prompt="a heron")
        self.assertEqual(png_size(base64.b64decode(response.data[0].b64_json)), (1024, 1024))


class OpenAIChatWithModalities(unittest.TestCase):
    def test_images_come_back_as_data_urls(self):
        client = openai.OpenAI(base_url=URL + "/api/v1", api_key=KEY, max_retries=0)
        response = client.chat.completions.create(
            model="google/gemini-2.5-flash-image",
            messages=[{"role": "user", "content": "a nano banana dish"}],
            extra_body={"modalities": ["image", "text"], "image_config": {"aspect_ratio": "3:2"}},
        )
        images = response.choices[0].message.model_extra["images"]
        url = images[0]["image_url"]["url"]
        prefix = "data:image/png;base64,"
        self.assertTrue(url.startswith(prefix), url[:40])
        self.assertEqual(png_size(base64.b64decode(url[len(prefix):])), (1024, 682))


class GoogleGenai(unittest.TestCase):
    def client(self) -> genai.Client:
        options = types.HttpOptions(base_url=URL, retry_options=types.HttpRetryOptions(attempts=1))
        return genai.Client(api_key=KEY, http_options=options)

    def config(self) -> types.GenerateContentConfig:
        return types.GenerateContentConfig(
            response_modalities=["IMAGE"], image_config=types.ImageConfig(aspect_ratio="16:9")
        )

    def test_generate_content(self):
        client = self.client()
        response = client.models.generate_content(
            model="gemini-2.5-flash-image", contents="A watercolor lighthouse at dawn", config=self.config()
        )
        images = [p.inline_data for p in response.candidates[0].content.parts if p.inline_data]
        self.assertEqual(len(images), 1)
        self.assertEqual(images[0].mime_type, "image/png")
        self.assertEqual(png_size(images[0].data), (1024, 576))

    def test_generate_content_stream(self):
        client = self.client()
        chunks = list(
            client.models.generate_content_stream(
                model="gemini-2.5-flash-image", contents="A watercolor lighthouse at dawn", config=self.config()
            )
        )
        images = [
            p.inline_data
            for chunk in chunks
            for p in (chunk.candidates[0].content.parts or [])
            if p.inline_data
        ]
        self.assertEqual(len(images), 1)
        self.assertEqual(png_size(images[0].data), (1024, 576))
        self.assertEqual(chunks[-1].candidates[0].finish_reason, types.FinishReason.STOP)


if __name__ == "__main__":
    unittest.main()
