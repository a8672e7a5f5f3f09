"""The real Python SDKs against a running `imagegate emulate`.

Run by crates/emulator/tests/python_sdks.rs, which starts the emulator in process with the pools
below and sets IMAGEGATE_EMULATOR_URL; the SDK versions are pinned in requirements.txt. Each test
uses its own pool, so the order they run in does not matter. Nothing here sleeps: google-genai
gets one attempt, and the openai SDK's retry sleep is replaced by a recorder.

Pools (gemini project "sdk-project", key "sdk-gemini-key"; openrouter account "sdk-account"):
  gemini-2.5-flash-image          rpm 1
  gemini-3-pro-image-preview      unlimited (streaming)
  gemini-3.1-flash-image-preview  rpd 0 (no entitlement)
  google/gemini-2.5-flash-image   rpm 1 (openrouter)
  google/gemini-3-pro-image-preview  rpm 1 (openrouter, retries)
  google/gemini-3.1-flash-image-preview  rpm 0 (openrouter, no credits)
  google/gemini-2.5-flash-image-preview     unlimited (openrouter, streaming)
OpenAI Images (organization "sdk-org", key "sdk-openai-key"):
  gpt-image-1       ipm 1
  gpt-image-1-mini  unlimited (edits, links)
  dall-e-3          rpd 0 (no entitlement)
"""

import base64
import json
import os
import struct
import unittest
import urllib.request
from unittest import mock

import openai
from google import genai
from google.genai import errors, types

URL = os.environ["IMAGEGATE_EMULATOR_URL"]
GEMINI_KEY = "sdk-gemini-key"
OPENROUTER_KEY = "sdk-openrouter-key"
OPENAI_KEY = "sdk-openai-key"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    return struct.unpack(">II", data[16:24])


def pool_stats(model: str) -> dict:
    with urllib.request.urlopen(URL + "/emulator/stats") as response:
        stats = json.load(response)
    return next(p for p in stats["pools"] if model in p["models"])


def detail(error: errors.APIError, suffix: str) -> dict:
    return next(d for d in error.details["error"]["details"] if d["@type"].endswith(suffix))


class GoogleGenai(unittest.TestCase):
    def client(self, key: str = GEMINI_KEY) -> genai.Client:
        # One attempt: no retries, so a 429 comes straight back (and nothing sleeps).
        options = types.HttpOptions(base_url=URL, retry_options=types.HttpRetryOptions(attempts=1))
        return genai.Client(api_key=key, http_options=options)

    def test_an_image_then_a_429_carrying_quota_failure_and_retry_info(self):
        model = "gemini-2.5-flash-image"
        client = self.client()
        response = client.models.generate_content(
            model=model,
            contents="A watercolor lighthouse at dawn",
            config=types.GenerateContentConfig(
                response_modalities=["IMAGE"],
                image_config=types.ImageConfig(aspect_ratio="16:9"),
            ),
        )
        images = [p.inline_data for p in response.candidates[0].content.parts if p.inline_data]
        self.assertEqual(len(images), 1)
        self.assertEqual(images[0].mime_type, "image/png")
        self.assertEqual(png_size(images[0].data), (1024, 576))
        self.assertGreater(response.usage_metadata.total_token_count, 1290)

        with self.assertRaises(errors.ClientError) as caught:
            client.models.generate_content(model=model, contents="another one")
        error = caught.exception
        self.assertEqual(error.code, 429)
        self.assertEqual(error.status, "RESOURCE_EXHAUSTED")
        violation = detail(error, "google.rpc.QuotaFailure")["violations"][0]
        self.assertEqual(violation["quotaId"], "GenerateRequestsPerMinutePerProjectPerModel")
        self.assertEqual(violation["quotaValue"], "1")
        self.assertEqual(detail(error, "google.rpc.RetryInfo")["retryDelay"], "60s")
        self.assertIn("Please retry in 60.000s.", error.message)

        counters = pool_stats(model)["counters"]
        self.assertEqual((counters["admitted"], counters["rate_limited"]), (1, 1))

    def test_streaming_and_the_model_list(self):
        client = self.client()
        chunks = list(
            client.models.generate_content_stream(
                model="gemini-3-pro-image-preview",
                contents="a lighthouse",
                config=types.GenerateContentConfig(
                    response_modalities=["TEXT", "IMAGE"],
                    image_config=types.ImageConfig(aspect_ratio="1:1", image_size="0.5K"),
                ),
            )
        )
        parts = [p for c in chunks for p in (c.candidates[0].content.parts or [])]
        images = [p.inline_data.data for p in parts if p.inline_data]
        self.assertEqual([png_size(i) for i in images], [(512, 512)])
        self.assertEqual(chunks[-1].candidates[0].finish_reason, types.FinishReason.STOP)

        names = [m.name for m in client.models.list()]
        self.assertIn("models/gemini-2.5-flash-image", names)

    def test_limit_zero_and_a_bad_key(self):
        # Keep each client referenced: google-genai closes its HTTP client when it is collected.
        client = self.client()
        with self.assertRaises(errors.ClientError) as caught:
            client.models.generate_content(model="gemini-3.1-flash-image-preview", contents="x")
        self.assertEqual(caught.exception.code, 429)
        self.assertIn("limit: 0", caught.exception.message)

        stranger = self.client("not-a-configured-key")
        with self.assertRaises(errors.ClientError) as caught:
            stranger.models.generate_content(model="gemini-2.5-flash-image", contents="x")
        self.assertEqual(caught.exception.code, 400)
        self.assertEqual(detail(caught.exception, "google.rpc.ErrorInfo")["reason"], "API_KEY_INVALID")


class OpenAIOnOpenRouterPaths(unittest.TestCase):
    def client(self, max_retries: int = 0, key: str = OPENROUTER_KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=URL + "/api/v1", api_key=key, max_retries=max_retries)

    def create(self, client: openai.OpenAI, model: str):
        return client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "a nano banana dish"}],
            extra_body={"modalities": ["image", "text"], "image_config": {"aspect_ratio": "3:2", "image_size": "0.5K"}},
        )

    def test_an_image_as_a_data_url_then_a_429_with_retry_after(self):
        model = "google/gemini-2.5-flash-image"
        client = self.client()
        response = self.create(client, model)
        images = response.choices[0].message.model_extra["images"]
        url = images[0]["image_url"]["url"]
        prefix = "data:image/png;base64,"
        self.assertTrue(url.startswith(prefix), url[:40])
        self.assertEqual(png_size(base64.b64decode(url[len(prefix):])), (512, 341))

        with self.assertRaises(openai.RateLimitError) as caught:
            self.create(client, model)
        error = caught.exception
        self.assertEqual(error.status_code, 429)
        headers = error.response.headers
        self.assertEqual(headers["retry-after"], "60")
        self.assertEqual(headers["x-ratelimit-limit"], "1")
        self.assertEqual(headers["x-ratelimit-remaining"], "0")
        self.assertTrue(error.body["message"].startswith("Rate limit exceeded: "), error.body)
        self.assertEqual(error.body["metadata"]["headers"]["X-RateLimit-Reset"], headers["x-ratelimit-reset"])

    def test_streaming_delivers_the_image_in_a_delta(self):
        client = self.client()
        stream = client.chat.completions.create(
            model="google/gemini-2.5-flash-image-preview",
            messages=[{"role": "user", "content": "a nano banana dish"}],
            stream=True,
            extra_body={"modalities": ["image", "text"], "image_config": {"image_size": "0.5K"}},
        )
        chunks = list(stream)
        images = [i for c in chunks for i in (c.choices[0].delta.model_extra or {}).get("images") or []]
        self.assertEqual(len(images), 1)
        data = images[0]["image_url"]["url"].split(",", 1)[1]
        self.assertEqual(png_size(base64.b64decode(data)), (512, 512))
        self.assertEqual(chunks[-1].choices[0].finish_reason, "stop")

    def test_sdk_retries_wait_exactly_the_retry_after(self):
        model = "google/gemini-3-pro-image-preview"
        client = self.client(max_retries=2)
        self.create(client, model)
        # The SDK would sleep Retry-After seconds between attempts; record instead of sleeping.
        with mock.patch("openai._base_client.time.sleep") as sleep:
            with self.assertRaises(openai.RateLimitError):
                self.create(client, model)
        self.assertEqual([c.args[0] for c in sleep.call_args_list], [60.0, 60.0])
        counters = pool_stats(model)["counters"]
        self.assertEqual((counters["admitted"], counters["rate_limited"]), (1, 3))

    def test_no_credits_is_402_and_a_bad_key_is_401(self):
        with self.assertRaises(openai.APIStatusError) as caught:
            self.create(self.client(), "google/gemini-3.1-flash-image-preview")
        self.assertEqual(caught.exception.status_code, 402)
        self.assertNotIn("retry-after", caught.exception.response.headers)

        with self.assertRaises(openai.AuthenticationError):
            self.create(self.client(key="not-a-configured-key"), "google/gemini-2.5-flash-image")


def tiny_png(width: int, height: int) -> bytes:
    """A valid grey PNG, uncompressed, for edits."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class OpenAIImages(unittest.TestCase):
    def client(self, key: str = OPENAI_KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=URL + "/v1", api_key=key, max_retries=0)

    def test_an_image_with_rate_limit_headers_then_the_images_per_minute_429(self):
        client = self.client()
        raw = client.images.with_raw_response.generate(model="gpt-image-1", prompt="a red fox", size="1536x1024")
        self.assertEqual(raw.headers["x-ratelimit-limit-images"], "1")
        self.assertEqual(raw.headers["x-ratelimit-remaining-images"], "0")
        self.assertEqual(raw.headers["x-ratelimit-reset-images"], "1m0s")
        response = raw.parse()
        self.assertEqual(png_size(base64.b64decode(response.data[0].b64_json)), (1024, 682))
        self.assertEqual(response.usage.output_tokens, 1290)

        with self.assertRaises(openai.RateLimitError) as caught:
            client.images.generate(model="gpt-image-1", prompt="a red fox")
        error = caught.exception
        self.assertEqual(error.code, "rate_limit_exceeded")
        self.assertEqual(error.type, "requests")
        self.assertIn("Limit: 1/1min. Current: 2/1min. Please try again in 1m0s.", error.message)
        self.assertEqual(error.response.headers["x-ratelimit-remaining-images"], "0")
        counters = pool_stats("gpt-image-1")["counters"]
        self.assertEqual((counters["admitted"], counters["rate_limited"]), (1, 1))

    def test_an_edit_with_two_images_and_an_answer_as_a_link(self):
        client = self.client()
        images = [("a.png", tiny_png(8, 8), "image/png"), ("b.png", tiny_png(4, 4), "image/png")]
        response = client.images.edit(model="gpt-image-1-mini", image=images, prompt="side by side", size="1024x1024")
        self.assertEqual(png_size(base64.b64decode(response.data[0].b64_json)), (1024, 1024))

        response = client.images.generate(model="gpt-image-1-mini", prompt="a red fox", response_format="url")
        url = response.data[0].url
        self.assertTrue(url.startswith(URL + "/emulator/openai/images/"), url)
        with urllib.request.urlopen(url) as image:
            self.assertEqual(png_size(image.read()), (1024, 1024))

    def test_no_entitlement_is_insufficient_quota_and_a_bad_key_is_401(self):
        with self.assertRaises(openai.RateLimitError) as caught:
            self.client().images.generate(model="dall-e-3", prompt="a red fox")
        self.assertEqual(caught.exception.code, "insufficient_quota")

        with self.assertRaises(openai.AuthenticationError) as caught:
            self.client(key="not-a-configured-key").images.generate(model="gpt-image-1-mini", prompt="x")
        self.assertEqual(caught.exception.code, "invalid_api_key")


if __name__ == "__main__":
    unittest.main()
