#!/usr/bin/env python3
"""Turns Google Benchmark JSON (run with --benchmark_repetitions=N) into a Markdown table of
medians, and for bench_gemm adds the ratio matmul / cblas_sgemm per size and thread count.

  build/bench_gemm --benchmark_repetitions=5 --benchmark_format=json > gemm.json
  python3 bench/gbench_table.py gemm.json
"""
import json
import sys


def medians(path):
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") == "median":
            out[b["run_name"]] = b
    return data["context"], out


def main(path):
    context, rows = medians(path)
    print(f"Machine: {context.get('num_cpus')} CPUs at {context.get('mhz_per_cpu')} MHz; "
          f"date {context.get('date')}; medians of {context.get('executable')} repetitions\n")
    print("| benchmark | median time | counters |")
    print("|---|---|---|")
    for name, b in rows.items():
        counters = []
        if "GFLOP/s" in b:
            counters.append(f"{b['GFLOP/s'] / 1e9 if b['GFLOP/s'] > 1e6 else b['GFLOP/s']:.1f} GFLOP/s")
        if "bytes_per_second" in b:
            counters.append(f"{b['bytes_per_second'] / 1e9:.1f} GB/s")
        print(f"| {name} | {b['real_time']:.3f} {b['time_unit']} | {', '.join(counters)} |")
    pairs = [(n, n.replace("BM_matmul", "BM_cblas_sgemm")) for n in rows if n.startswith("BM_matmul")]
    if pairs:
        print("\n| size, threads | matmul / cblas_sgemm time |")
        print("|---|---|")
        for a, b in pairs:
            if b in rows:
                label = a.split("/", 1)[1].replace("/real_time", "")
                print(f"| {label} | {rows[a]['real_time'] / rows[b]['real_time']:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1])
