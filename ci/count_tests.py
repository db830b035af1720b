"""Count passed/failed tests in a meson testlog.json (one JSON object a line).

A Criterion program reports its own cases in a "Synthesis" line; any other
test (examples, scripts) counts as one case by meson's verdict.
"""
import json
import re
import sys

SYN = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")
passed = failed = 0
with open(sys.argv[1]) as log:
    for line in log:
        t = json.loads(line)
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        m = SYN.findall(re.sub(r"\x1b\[[0-9;]*m", "", out))
        ok = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
        if m:
            _, p, f, c = map(int, m[-1])
            passed += p
            failed += f + c
            if not ok and f + c == 0:
                failed += 1  # the program failed outside its cases
        elif ok:
            passed += 1
        else:
            failed += 1
print(passed, failed)
