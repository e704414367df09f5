"""Interpreter settings for evaluating a large stack (used by __main__.py, and by the benchmark's tuned floor)."""

import gc

# Nearly everything the SDK allocates stays alive until the program ends (resources, Outputs, futures), so
# CPython's full-heap collections find almost nothing yet took ~40% of the evaluation time at 200 counties.
# Young cyclic garbage is still collected; only the full sweeps become rare. Peak memory stays the same.
GC_THRESHOLD = (2000, 50, 10000)


def apply() -> None:
    gc.set_threshold(*GC_THRESHOLD)
