"""Records what a benchmark ran on, in DIR/machine.json: the CPU model and flags (/proc/cpuinfo), the
kernel variants the run measures, and the load average at its start and end (the machine is shared).

  machine.py start FILE VARIANTS   writes FILE
  machine.py end FILE              adds the load average at the end
"""
import json
import sys


def cpuinfo(field):
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith(field)), "")


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("start", "end"):
        raise SystemExit(__doc__)
    path = sys.argv[2]
    if sys.argv[1] == "start":
        record = {"cpu_model": cpuinfo("model name"), "cpu_flags": cpuinfo("flags"),
                  "simd_variants": sys.argv[3] if len(sys.argv) > 3 else "", "loadavg_start": loadavg()}
    else:
        with open(path) as f:
            record = json.load(f)
        record["loadavg_end"] = loadavg()
    with open(path, "w") as f:
        json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
