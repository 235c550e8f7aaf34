"""How a node's interpreter is set up: the GIL's switch interval and the garbage collector's policy.

One place, used by `optinode sequencer` (services/sequencer.py) and by the benches that measure it
(bench/sequencer.py, bench/engine_cpu.py), so that what is measured is what runs
(docs/sequencer.md, "Interpreter settings"; the figures in docs/benchmarks.md, "Worker pool").
"""

from __future__ import annotations

import gc
import sys

__all__ = ["GC_THRESHOLDS", "SWITCH_INTERVAL", "freeze_heap", "tune_interpreter"]

# The engine and the HTTP server run Python almost all the time; the journal's fsync thread needs the
# GIL back after its write, and a thread waiting for the GIL gets it only at the interpreter's switch
# interval (5 ms by default), which alone would spend the 5 ms acknowledgement budget (issue 10;
# docs/benchmarks.md, "Sequencer intake").
SWITCH_INTERVAL = 0.0005

# The collector's generation thresholds: CPython's own (700, 10, 10). Measured on the intake
# (docs/benchmarks.md, "Worker pool"): once the start-up heap is frozen, the young collections cost
# ~1 µs per order, and larger first thresholds save little CPU but make each young collection
# longer (a first threshold of 10,000: 2-15 ms pauses), against the 5 ms acknowledgement budget.
GC_THRESHOLDS = (700, 10, 10)


def tune_interpreter() -> None:
    """The switch interval and the collector's thresholds, before the node starts its services."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_heap() -> None:
    """Take everything alive now (the imported code, the restored state and books) out of the garbage
    collector's passes for good. A full collection walks every tracked object while the engine's
    thread waits: measured 55 ms on the bench's 140k-object start-up heap, 60–180 ms pauses in the
    latency run, against ~8 ms with it frozen (docs/benchmarks.md, "Sequencer intake"). What is
    frozen is still freed by reference counting; only a reference cycle among start-up objects that
    dies later would stay (Instagram's `gc.freeze` at fork, for the same reason)."""
    gc.collect()
    gc.freeze()
