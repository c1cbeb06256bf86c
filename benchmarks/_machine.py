"""The machine facts every benchmark prints with each line."""

import os
import platform


def machine() -> dict:
    """CPU model, core count and the 1-minute load average, for every printed line."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "load": round(os.getloadavg()[0], 2)}
