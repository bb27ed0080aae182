"""`serve` freezes start-up's heap once the stack is up, so full collections walk only
what serving made since (bench/RESULTS.md, issue 20: 40-65 ms stalls before, 0.4-7 after)."""

from __future__ import annotations

import gc

from convostack.server import settle_heap


def test_settle_heap_moves_what_exists_out_of_the_collectors_reach() -> None:
    kept = [{"n": [n]} for n in range(1000)]
    try:
        settle_heap()
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
