"""An append-only CSV of samples, flushed per line, that resumes an existing file.

A kill (even SIGKILL) loses nothing that was written: every line is handed to the operating system
as soon as it is complete. Reopening an existing file checks its header against ours (a different
meter's file is refused, never overwritten) and cuts a last line that a crash left unfinished.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable

from .sample import MeterError, Sample

ALL_COLUMNS = ("time_s", "watts", "volts", "amps")


class CsvRecorder:
    def __init__(self, path: str, columns: Iterable[str] = ("watts", "volts", "amps"), fsync: bool = False):
        self.path = path
        self.columns = ("time_s",) + tuple(c for c in columns if c != "time_s")
        unknown = set(self.columns) - set(ALL_COLUMNS)
        if unknown:
            raise ValueError(f"unknown CSV columns {sorted(unknown)}")
        self.fsync = fsync
        self.resumed_rows = 0
        self.repaired_bytes = 0
        self.written = 0
        self._f = self._open()

    def _open(self):
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, "rb+") as f:
                data = f.read()
                end = data.rfind(b"\n") + 1
                if end < len(data):  # an unfinished last line from a crash: it never held a sample
                    self.repaired_bytes = len(data) - end
                    f.truncate(end)
                    data = data[:end]
            lines = data.decode("utf-8", "replace").splitlines()
            header = tuple(lines[0].split(",")) if lines else ()
            if not lines:
                pass
            elif header != self.columns:
                raise MeterError(f"{self.path} has columns {','.join(header)}, this recording writes "
                                 f"{','.join(self.columns)}: choose another file")
            self.resumed_rows = max(len(lines) - 1, 0)
            f = open(self.path, "a", newline="", encoding="utf-8")
            if not lines:
                f.write(",".join(self.columns) + "\n")
                f.flush()
            return f
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        f = open(self.path, "a", newline="", encoding="utf-8")
        f.write(",".join(self.columns) + "\n")
        f.flush()
        return f

    def write(self, s: Sample) -> None:
        row = []
        for c in self.columns:
            v = getattr(s, c)
            row.append("" if v is None else (f"{v:.6f}" if c == "time_s" else f"{v:.6g}"))
        self._f.write(",".join(row) + "\n")  # one write per complete line
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())
        self.written += 1

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_csv(path: str) -> list[Sample]:
    """Samples of a recording (rows with an empty or unparsable watts are skipped)."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(io.StringIO(f.read())):
            try:
                t, w = float(row["time_s"]), float(row["watts"])
            except (KeyError, TypeError, ValueError):
                continue
            v = row.get("volts") or None
            a = row.get("amps") or None
            out.append(Sample(t, w, float(v) if v else None, float(a) if a else None))
    return out
