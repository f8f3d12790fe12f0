#!/bin/sh
# Bar chart of the uvpool / uv_queue_work ratios from `uvpool_bench --json`.
# Usage: plot.sh JSONFILE OUTPNG
# Green bars: the higher the better (rates); orange: the lower the better
# (times, sizes). A diamond marks the target where it is a ratio; the
# dashed line is 1 (parity with uv_queue_work). Left out: idle_cpu, whose
# ratio divides two numbers near zero (noise), and blocking makespan/ideal,
# whose ratio repeats blocking's.
set -eu

if [ $# -ne 2 ]; then
  echo "usage: $0 JSONFILE OUTPNG" >&2
  exit 2
fi
json=$1
png=$2
command -v gnuplot >/dev/null || { echo "$0: gnuplot not found" >&2; exit 1; }
command -v python3 >/dev/null || { echo "$0: python3 not found" >&2; exit 1; }

data=$(mktemp)
trap 'rm -f "$data"' EXIT

# One row per plotted ratio: index, ratio, colour, target ("NaN" when
# none or when the target is not on the ratio), then the quoted label.
python3 - "$json" >"$data" <<'EOF'
import json, sys

with open(sys.argv[1]) as f:
    doc = json.load(f)
i = 0
for r in doc["results"]:
    if r.get("ratio") is None or r["workload"] == "idle_cpu" or \
            r["metric"] == "makespan/ideal":
        continue
    label = r["workload"]
    if r["metric"] not in ("rate", "cpu", "makespan"):
        label += " " + r["metric"]
    better = "higher" if r["higher_is_better"] else "lower"
    label += "\\n(" + better + " = better)"
    t = r.get("target")
    target = t["value"] if t and t["on"] == "ratio" else "NaN"
    colour = "0x2ca02c" if r["higher_is_better"] else "0xff7f0e"
    print('%d %g %s %s "%s"' % (i, r["ratio"], colour, target, label))
    i += 1
EOF

if [ ! -s "$data" ]; then
  echo "$0: no ratios in $json" >&2
  exit 1
fi
n=$(wc -l <"$data")
# Room above the tallest bar or target for the value labels.
ymax=$(awk '{ for (i = 2; i <= 4; i += 2) if ($i != "NaN" && $i > m) m = $i }
  END { print m * 1.15 + 0.1 }' "$data")
title=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print("uvpool %s / libuv %s uv_queue_work: %d CPUs, %d rounds%s, "
      "other processes %.0f%%" % (d["uvpool_version"], d["libuv_version"],
      d["cpus"], d["rounds"], " (quick)" if d["quick"] else "",
      d["other_cpu_pct"]))' "$json")

gnuplot <<EOF
set terminal pngcairo noenhanced size $((240 + n * 120)),600 font "sans,10"
set output "$png"
set title "$title"
set ylabel "ratio uvpool / uv_queue_work"
set style fill solid 0.85 border -1
set boxwidth 0.6
set xrange [-0.6:$n - 0.4]
set yrange [0:$ymax]
set bmargin 5
set grid ytics
set xtics rotate by 0 font ",8"
set key top right
set arrow from -0.6,1 to $n - 0.4,1 nohead dashtype 2 lc rgb "black"
plot "$data" using 1:2:3:xtic(5) with boxes lc rgb variable notitle, \
     "" using 1:2:(sprintf("%.2f", \$2)) with labels offset 0,0.7 notitle, \
     "" using 1:4 with points pt 13 ps 1.8 lc rgb "black" title "target"
EOF
echo "$png"
