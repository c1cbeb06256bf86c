"""The machine facts every benchmark prints with each line."""

import os
import platform
import resource


def peak_rss_mb() -> float:
    """The largest resident set of this process so far, in MiB (`getrusage`'s `ru_maxrss`,
    KiB on Linux): the peak memory of everything measured up to now."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def machine() -> dict:
    """CPU model, core count, the 1-minute load average and the process's peak resident
    memory so far (MiB), for every printed line."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "load": round(os.getloadavg()[0], 2),
        "peak_rss_mb": peak_rss_mb(),
    }
