"""Median wall time of repeated calls, and the machine a figure was measured on."""

import os
import platform
import statistics
import time


def median_seconds(function, repeats=7, warmup=1):
    """Median wall time in seconds of ``function()`` over ``repeats`` calls after ``warmup``."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine():
    """A one-line description of the CPU this runs on (and the GPU, if torch sees one)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
