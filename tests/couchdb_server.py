"""A real CouchDB-protocol server on 127.0.0.1 for the tests: npm express-pouchdb over in-memory PouchDB
(tests/couchdb/server.js; `.ci/run` installs its pinned packages with `npm ci` into build/couchdb).

What express-pouchdb 4.2.0 answers differently from CouchDB 3.5 (the scripts use only what both serve):
- no `/_up`: server.js adds it; every request needs the admin's basic auth (`require_valid_user`) there too;
- database info has no `doc_del_count` (CouchDB's has it) and an integer `update_seq` (CouchDB's is
  `"<number>-<opaque>"`): the scripts compare the field as a value and read the number in front of the seq;
- one "shard" per database: a lost CouchDB shard is made here by leaving out the documents CouchDB would
  have placed in it (`crc32(id) % q`, q=12 as cht-core's 10-docker-default.ini sets).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from tests import tools

ROOT = Path(__file__).resolve().parent.parent
SERVER_JS = ROOT / "tests" / "couchdb" / "server.js"
MODULES = ROOT / "build" / "couchdb" / "node_modules"
SHARDS = 12  # cht-core couchdb/10-docker-default.ini: [cluster] q=12


def shard_of(doc_id: str) -> int:
    """The shard CouchDB (mem3_hash, crc32 of the id) puts a document in, of SHARDS equal ranges."""
    return (zlib.crc32(doc_id.encode()) * SHARDS) >> 32


class Couch:
    """One running server; `request` speaks CouchDB's HTTP API as its admin."""

    def __init__(self, user: str, password: str):
        node = tools.find("node")
        if node is None:
            tools.unavailable("node is not installed (apt-get install nodejs npm)")
        if not (MODULES / "express-pouchdb").is_dir():
            tools.unavailable(f"{MODULES} lacks express-pouchdb (npm ci in build/couchdb, as .ci/run does)")
        self.user, self.password = user, password
        env = {**os.environ, "NODE_PATH": str(MODULES), "COUCH_USER": user, "COUCH_PASSWORD": password}
        self.process = subprocess.Popen(
            [node, str(SERVER_JS), "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )
        line = self.process.stdout.readline()
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the CouchDB stand-in did not start: {line!r}")
        self.base = f"http://127.0.0.1:{int(line.split()[1])}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def request(self, method: str, path: str, body=None, content_type: str = "application/json"):
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            if error.code >= 400 and method != "GET":
                raise RuntimeError(f"{method} {path}: {error.code} {raw[:200]!r}") from None
            return json.loads(raw)
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    # --- helpers the tests build databases with ---

    def create(self, db: str) -> None:
        self.request("PUT", "/" + urllib.parse.quote(db, safe=""))

    def delete(self, db: str) -> None:
        self.request("DELETE", "/" + urllib.parse.quote(db, safe=""))

    def put(self, db: str, doc: dict) -> dict:
        return self.request("POST", "/" + urllib.parse.quote(db, safe=""), doc)

    def bulk(self, db: str, docs: list[dict], new_edits: bool = True) -> None:
        self.request("POST", f"/{urllib.parse.quote(db, safe='')}/_bulk_docs", {"docs": docs, "new_edits": new_edits})

    def dump(self, db: str) -> list[dict]:
        """Every document at its current rev with its history and attachments inline (what a copy replays)."""
        q = urllib.parse.quote(db, safe="")
        rows = self.request("GET", f"/{q}/_all_docs")["rows"]
        docs = []
        for row in rows:
            doc_id = urllib.parse.quote(row["id"], safe="")
            docs.append(self.request("GET", f"/{q}/{doc_id}?revs=true&attachments=true"))
        return docs

    def wipe(self) -> None:
        for db in self.request("GET", "/_all_dbs"):
            self.delete(db)
