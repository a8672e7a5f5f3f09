"""The real google-genai SDK's Batch API calls against a running `imagegate emulate`.

Run by crates/emulator/tests/python_batch.rs, which starts the emulator in process with one
Gemini pool (`batch_turnaround = "0s"`: a job is done at its first poll) and sets
IMAGEGATE_EMULATOR_URL; the SDK version is pinned in requirements.txt. Nothing here sleeps.
"""

import json
import os
import struct
import tempfile
import unittest
import urllib.request

from google import genai
from google.genai import types

URL = os.environ["IMAGEGATE_EMULATOR_URL"]
KEY = "sdk-batch-key"
MODEL = "gemini-2.5-flash-image"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    return struct.unpack(">II", data[16:24])


def batch_stats() -> dict:
    with urllib.request.urlopen(URL + "/emulator/stats") as response:
        return json.load(response)["batch"]


def image_request(prompt: str) -> dict:
    return {
        "contents": [{"parts": [{"text": prompt}], "role": "user"}],
        "config": {"response_modalities": ["TEXT", "IMAGE"]},
    }


class GoogleGenaiBatches(unittest.TestCase):
    def client(self) -> genai.Client:
        options = types.HttpOptions(base_url=URL, retry_options=types.HttpRetryOptions(attempts=1))
        return genai.Client(api_key=KEY, http_options=options)

    def test_an_inline_job_is_created_polled_and_read(self):
        client = self.client()
        job = client.batches.create(
            model=MODEL,
            src=[image_request("a red fox"), image_request("a blue heron")],
            config={"display_name": "sdk-inline"},
        )
        self.assertTrue(job.name.startswith("batches/"), job.name)
        self.assertEqual(job.state, types.JobState.JOB_STATE_PENDING)
        done = client.batches.get(name=job.name)
        self.assertEqual(done.state, types.JobState.JOB_STATE_SUCCEEDED)
        self.assertTrue(done.done)
        responses = done.dest.inlined_responses
        self.assertEqual(len(responses), 2)
        for item in responses:
            self.assertIsNone(item.error)
            parts = item.response.candidates[0].content.parts
            images = [p.inline_data for p in parts if p.inline_data]
            self.assertEqual(len(images), 1)
            self.assertEqual(png_size(images[0].data), (1024, 1024))
        names = [j.display_name for j in client.batches.list(config={"page_size": 10})]
        self.assertIn("sdk-inline", names)

    def test_a_file_job_is_uploaded_and_its_responses_file_downloaded(self):
        client = self.client()
        lines = [
            {"key": f"k{i}", "request": {"contents": [{"parts": [{"text": f"shoe {i}"}]}],
                                         "generation_config": {"responseModalities": ["TEXT", "IMAGE"]}}}
            for i in range(3)
        ]
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("\n".join(json.dumps(line) for line in lines) + "\n")
            path = f.name
        try:
            uploaded = client.files.upload(
                file=path, config=types.UploadFileConfig(display_name="sdk-input", mime_type="jsonl")
            )
        finally:
            os.unlink(path)
        self.assertTrue(uploaded.name.startswith("files/"), uploaded.name)
        before = batch_stats()["files_uploaded"]
        self.assertGreaterEqual(before, 1)
        job = client.batches.create(model=MODEL, src=uploaded.name, config={"display_name": "sdk-file"})
        done = client.batches.get(name=job.name)
        self.assertEqual(done.state, types.JobState.JOB_STATE_SUCCEEDED)
        self.assertTrue(done.dest.file_name.startswith("files/"), done.dest)
        content = client.files.download(file=done.dest.file_name)
        results = [json.loads(line) for line in content.decode().splitlines() if line.strip()]
        self.assertEqual(sorted(r["key"] for r in results), ["k0", "k1", "k2"])
        self.assertTrue(all("response" in r for r in results))

    def test_cancel_and_delete(self):
        client = self.client()
        job = client.batches.create(model=MODEL, src=[image_request("a cat")], config={"display_name": "sdk-cancel"})
        client.batches.cancel(name=job.name)
        client.batches.delete(name=job.name)
        names = [j.name for j in client.batches.list(config={"page_size": 50})]
        self.assertNotIn(job.name, names)


if __name__ == "__main__":
    unittest.main()
