"""Two writer processes at once: no lost history line, pointers.json always whole."""

import json
import multiprocessing

from registry_helpers import MODEL, hammer

from paddle_canary.process import wait_until

ROUNDS = 40


def test_two_writers_lose_nothing_and_readers_never_see_half_a_file(registry, root):
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(3)
    workers = [ctx.Process(target=hammer, args=(str(root), w, ROUNDS, start)) for w in (0, 1)]
    for w in workers:
        w.start()
    try:
        start.wait(60)
        pointer_file = root / MODEL / "pointers.json"
        reads, seen = 0, set()

        def read_until_done():
            nonlocal reads
            seen.add(json.loads(pointer_file.read_text())["stable"])  # raises on a torn read
            reads += 1
            return not any(w.is_alive() for w in workers)

        wait_until(read_until_done, timeout=120, interval=0.001, what="both writers finished")
    finally:
        for w in workers:
            w.join(10)
            if w.is_alive():
                w.kill()
    assert [w.exitcode for w in workers] == [0, 0]
    assert reads > 10 and seen <= {"v1", "v2"}

    history = registry.history(MODEL)
    lines = (root / MODEL / "history.jsonl").read_text().splitlines()
    assert len(lines) == len(history)  # every line whole and parseable
    for writer in (0, 1):
        ticks = [e["i"] for e in history if e["event"] == "tick" and e["writer"] == writer]
        assert ticks == list(range(ROUNDS))
    promoted = [e for e in history[3:] if e["event"] == "promoted"]
    # every recorded promotion names the stable version that the one before it set
    for before, after in zip(promoted, promoted[1:]):
        assert after["previous"] == before["version"]
    assert registry.pointers(MODEL).stable == (promoted[-1]["version"] if promoted else "v1")
    assert json.loads((root / MODEL / "pointers.json").read_text())["candidate"] is None
