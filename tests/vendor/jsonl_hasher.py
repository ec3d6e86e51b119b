"""Reference client of the external-hasher protocol, playing a closed vendor binary in tests.

    python tests/vendor/jsonl_hasher.py ALGORITHM [--misbehave MODE] [--after N]

Answers each request with the hash of the harness's own in-process ALGORITHM (so a run through
this script must equal a run of the adapter), reading PNG bytes or a path. ALGORITHM
``grey_vector`` answers with a float vector instead: the offline vendor's
(``imagehash_vendor.grey_vector``, the 8 x 8 box-averaged grey levels minus their mean).
The misbehaviour modes play the vendor binaries a harness meets in practice, starting with
request number N: ``crash`` (exit 3), ``hang`` (never answer), ``garbage`` (a non-JSON
line), ``wrong_bits`` (a hash one byte short), ``wrong_id``, ``error`` (a proper error reply),
``spam`` (a huge line).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import time

from imagehash_vendor import grey_vector  # this script's folder: run as a script, never imported
from PIL import Image

from harness.algorithms import make_algorithm
from harness.errors import HashExcluded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("algorithm")
    parser.add_argument("--misbehave", default="")
    parser.add_argument("--after", type=int, default=0)
    args = parser.parse_args()
    algo = None if args.algorithm == "grey_vector" else make_algorithm(args.algorithm)
    for count, line in enumerate(sys.stdin):
        request = json.loads(line)
        if args.misbehave and count >= args.after:
            mode = args.misbehave
            if mode == "crash":
                sys.exit(3)
            if mode == "hang":
                time.sleep(3600)
            if mode == "garbage":
                print("Segmentation fault (core dumped)", flush=True)
                continue
            if mode == "spam":
                print("x" * (2 << 20), flush=True)
                continue
        if "png" in request:
            data = base64.b64decode(request["png"])
        else:
            with open(request["path"], "rb") as fh:
                data = fh.read()
        image = Image.open(io.BytesIO(data)).convert("RGB")
        if algo is None:
            reply: dict = {"id": request["id"], "vector": grey_vector(image)}
        else:
            reply = {"id": request["id"], "n_bits": algo.n_bits}
            try:
                reply["hash"] = algo.hash(image).tobytes().hex()
            except HashExcluded as exc:
                reply = {"id": request["id"], "excluded": str(exc)}
        if args.misbehave == "wrong_bits" and count >= args.after:
            reply["hash"] = reply.get("hash", "00")[:-2]
        if args.misbehave == "wrong_id" and count >= args.after:
            reply["id"] = "not-" + request["id"]
        if args.misbehave == "error" and count >= args.after:
            reply = {"id": request["id"], "error": "unsupported colour profile"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
