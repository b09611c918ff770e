"""Side-by-side benchmarks (not timed tests): ``python -m bench`` or ``make bench``."""
