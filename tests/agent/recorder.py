"""A "container" for the tests: writes the exact argv and environment it got
(bytes, hex-encoded) as JSON to the file named by its first argument."""

import json
import sys

with open("/proc/self/cmdline", "rb") as f:
    argv = f.read().split(b"\0")[:-1]
with open("/proc/self/environ", "rb") as f:
    env = [e.partition(b"=") for e in f.read().split(b"\0")[:-1]]
# argv: [python, recorder.py, OUT, args...]
out = {"argv": [a.hex() for a in argv[3:]], "env": {k.hex(): v.hex() for k, _, v in env}}
with open(sys.argv[1], "w") as f:
    json.dump(out, f)
