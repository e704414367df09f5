"""Interpreter settings for evaluating a large stack (used by __main__.py, and by the benchmark's tuned floor)."""

import gc

# Nearly everything the SDK allocates stays alive until the program ends (resources, Outputs, futures), so
# CPython's full-heap collections find almost nothing yet took ~40% of the evaluation time at 200 counties.
# The cyclic garbage the SDK makes is young: each call of pulumi.runtime.rpc.contains_unknowns leaves a
# recursive closure behind (function, cell, tuples: ~90% of what the collector frees), and the youngest
# generation frees it (2000: every 2000 net allocations). The middle generation found almost nothing (47,000
# objects in 111 collections at 500 counties, against 3.4 million in the youngest) and cost 4.8 of 58.8 CPU
# seconds, mostly rescanning objects the SDK frees soon after; every 1000th young collection instead of every
# 50th keeps that rare (2.1 s). GC callbacks at 50, 200 and 500 counties (bench/README.md); peak memory stays
# the same.
GC_THRESHOLD = (2000, 1000, 10000)


def apply() -> None:
    gc.set_threshold(*GC_THRESHOLD)
