"""A real S3 endpoint on this machine: moto's standalone server (a dev dependency) in a process of
its own on 127.0.0.1, for the storage tests and ``bench/storage.py``. Not a benchmark itself
(``run_all.py`` skips files whose name starts with an underscore)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server: ``env`` points boto, pyarrow and Ray's storage at it (put it
    in the environment of this process before its first S3 access, or of a subprocess; Ray
    processes started with it inherit it)."""

    url: str
    env: dict[str, str]

    def _client(self) -> Any:  # boto3's S3 client, talking to this server only
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_DEFAULT_REGION"],
        )

    def make_bucket(self, name: str) -> str:
        """Create a bucket and return its ``s3://`` URI."""
        self._client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def get(self, bucket: str, key: str) -> str:
        """An object's text."""
        return self._client().get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    def keys(self, bucket: str) -> list[str]:
        """Every object key in the bucket."""
        pages = self._client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@contextlib.contextmanager
def s3_server(log_dir: Path | None = None) -> Iterator[S3Server]:
    """Start the server on a free port, wait until it answers, stop it at the end."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="s3-server-")))
        log = log_dir / "moto.log"
        with log.open("w") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
            )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(url, timeout=2).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"moto's S3 server did not start: {log.read_text()[-2000:]}") from None
                    time.sleep(0.3)
            env = {
                "AWS_ENDPOINT_URL": url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true",
            }
            yield S3Server(url, env)
        finally:
            server.terminate()
            server.wait(timeout=30)
