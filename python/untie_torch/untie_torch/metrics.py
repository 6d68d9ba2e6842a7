"""metrics.jsonl as untie writes it: one JSON object per line, each with a
"type" and a "step" (updates completed). A run resumed at step N first drops
the records after N, which it will write again."""
import json
import os


def read_metrics(path):
    """The records of a metrics.jsonl; a torn last line (a crash mid-write) is skipped."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def _dumps(record):
    # Compact, as JSON.stringify writes it; NaN (a cosine of a zero gradient cannot be one) would not be JSON.
    return json.dumps(record, separators=(",", ":"), allow_nan=False)


class MetricsLog:
    def __init__(self, path, resume_step=0):
        self.path = path
        self.previous = [r for r in read_metrics(path) if r.get("step", 0) <= resume_step] if resume_step > 0 else []
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(_dumps(r) + "\n" for r in self.previous)
        os.replace(tmp, path)

    def write(self, record):
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(_dumps(record) + "\n")
