"""``e2train meter record | simulate``."""

from __future__ import annotations

import signal
import sys
import threading
import time

from .recorder import CsvRecorder
from .sample import MeterError, MeterUnavailable
from .serial_meter import METERS, open_meter
from .simulators import Faults, make_simulator
from .software import SOFTWARE_COUNTERS


def register(sub) -> None:
    p = sub.add_parser("meter", help="power meters: record to CSV, simulate on a pseudo-terminal")
    msub = p.add_subparsers(dest="meter_command", metavar="ACTION")

    rec = msub.add_parser("record", help="append a meter's samples to a CSV (time_s, watts[, volts, amps])")
    rec.add_argument("--meter", required=True, choices=sorted(METERS) + sorted(SOFTWARE_COUNTERS))
    rec.add_argument("--port", help="serial port (not needed for rapl/nvml)")
    rec.add_argument("--out", required=True, help="CSV file; an existing one is resumed")
    rec.add_argument("--duration", type=float, default=None, help="seconds to record (default: until Ctrl-C)")
    rec.add_argument("--interval", type=float, default=1.0, help="seconds between samples (Watts Up?: whole seconds)")
    rec.add_argument("--baud", type=int, default=None, help="line speed, if not the meter's default "
                     "(Watts Up? 115200, UM 9600, WT310 as set on the instrument, default 9600)")
    rec.add_argument("--fsync", action="store_true", help="fsync every line (survives power loss, not only a kill)")
    rec.set_defaults(func=_record)

    sim = msub.add_parser("simulate", help="a meter on a pseudo-terminal, speaking its protocol; prints its port")
    sim.add_argument("--meter", required=True, choices=sorted(METERS))
    sim.add_argument("--faults", default="", help="e.g. noise=0.2,split=0.1,double=0.1,truncate=0.1,corrupt=0.1,"
                     "stall=20:3,disconnect=40:2,seed=1")
    sim.add_argument("--link", default=None, help="path of the port symlink (default: a temporary one)")
    sim.add_argument("--watts", type=float, default=None, help="mean power to report")
    sim.add_argument("--speed", type=float, default=1.0, help="Watts Up?: logging runs this many times faster")
    sim.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    sim.set_defaults(func=_simulate)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _stop_on_sigterm(stop: threading.Event) -> None:
    def handler(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, handler)


def _record(args) -> int:
    stop = threading.Event()
    _stop_on_sigterm(stop)
    name = args.meter.lower()
    try:
        if name in SOFTWARE_COUNTERS:
            return _record_counter(args, stop)
        if not args.port:
            print(f"e2train meter record: --port is required for {name}", file=sys.stderr)
            return 2
        meter = open_meter(name, args.port, interval_s=args.interval, baudrate=args.baud)
        rec = CsvRecorder(args.out, meter.columns, fsync=args.fsync)
    except OSError as exc:
        print(f"e2train meter record: cannot write {args.out}: {exc}", file=sys.stderr)
        return 2
    except (MeterError, ValueError) as exc:
        print(f"e2train meter record: {exc}", file=sys.stderr)
        return 2
    if rec.resumed_rows:
        print(f"resuming {args.out}: {rec.resumed_rows} rows already there"
              + (f", cut {rec.repaired_bytes} bytes of an unfinished line" if rec.repaired_bytes else ""))
    print(f"recording {name} on {args.port} to {args.out}", flush=True)
    rc = 0
    try:
        for s in meter.samples(duration_s=args.duration, stop=stop):
            rec.write(s)
    except MeterError as exc:
        print(f"e2train meter record: {exc}", file=sys.stderr)
        rc = 1
    except KeyboardInterrupt:
        pass
    finally:
        rec.close()
        meter.close()
    print(f"wrote {rec.written} samples; dropped/events: {meter.drops.summary()}")
    return rc


def _record_counter(args, stop) -> int:
    try:
        counter = SOFTWARE_COUNTERS[args.meter.lower()]()
    except MeterUnavailable as exc:
        print(f"e2train meter record: skipped: {exc}", file=sys.stderr)
        return 3
    from .sample import Sample

    rec = CsvRecorder(args.out, ("watts",), fsync=args.fsync)
    t0, e0 = time.time(), counter.joules()
    t_end = None if args.duration is None else time.monotonic() + args.duration
    try:
        while not stop.is_set() and (t_end is None or time.monotonic() < t_end):
            stop.wait(args.interval)
            t1, e1 = time.time(), counter.joules()
            rec.write(Sample(t1, (e1 - e0) / max(t1 - t0, 1e-9)))  # mean power over the interval
            t0, e0 = t1, e1
    except KeyboardInterrupt:
        pass
    finally:
        rec.close()
    print(f"wrote {rec.written} samples")
    return 0


def _simulate(args) -> int:
    try:
        faults = Faults.parse(args.faults)
    except ValueError as exc:
        print(f"e2train meter simulate: {exc}", file=sys.stderr)
        return 2
    kw = {"link": args.link, "speed": args.speed}
    if args.watts is not None:
        kw["watts"] = args.watts
    sim = make_simulator(args.meter, faults, **kw).start()
    stop = threading.Event()
    _stop_on_sigterm(stop)
    print(sim.port, flush=True)
    try:
        stop.wait(args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    print(f"sent {sim.frames} frames ({len(sim.sent)} intact), {sim.requests} requests; faults: "
          f"{', '.join(sorted(set(sim.log))) or 'none'}", file=sys.stderr)
    return 0
