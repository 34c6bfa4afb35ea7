"""`conv3n serve` hands its start-up heap out of the cyclic collector's reach before serving."""

import subprocess
import sys


def test_settle_heap_freezes_what_start_up_made_and_requests_still_get_collected() -> None:
    probe = """
import gc
from conv3n.cli.serve import settle_heap

settle_heap()
frozen = gc.get_freeze_count()
gc.disable()  # count the cycles below in one collection

class Node:
    pass

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a

for _ in range(1000):
    cycle()
print(frozen, gc.collect())
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    frozen, collected = (int(part) for part in done.stdout.split())
    assert frozen > 10_000  # the modules imported so far
    assert collected >= 2_000  # cycles made after the freeze are still found and freed
