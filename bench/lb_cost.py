"""What HAProxy in front of the daphne processes costs: the same measurements, on the
same deployment, with the clients on the processes' own addresses and then on the
balancer's (deploy/haproxy.cfg, as the operators' guide runs it).

latency: bench/messaging.py's send → receive at 100 msg/s; throughput: its four
pipelining senders. Each is measured direct, then through HAProxy, then direct and
through HAProxy again, and the better of each pair kept, so a passing hiccup of
the machine does not decide the comparison.
"""

import asyncio

from bench import messaging
from bench.stack import Stack, through_balancer


def run_lb_cost(stack: Stack, count: int = 500, total: int = 2000) -> dict:
    balanced = through_balancer(stack)
    direct_latency, lb_latency, direct_tp, lb_tp = [], [], [], []
    for _ in range(2):
        for target, latencies in ((stack, direct_latency), (balanced, lb_latency)):
            latencies.append(
                asyncio.run(messaging.run_latency(target.urls, count, var_dir=stack.var_dir))
            )
        for target, rates in ((stack, direct_tp), (balanced, lb_tp)):
            rates.append(
                asyncio.run(messaging.run_throughput(target.urls, total, var_dir=stack.var_dir))
            )
    best = {
        "direct": min(direct_latency, key=lambda r: r["p50_ms"]),
        "haproxy": min(lb_latency, key=lambda r: r["p50_ms"]),
    }
    rate = {
        "direct": max(r["msg_per_s"] for r in direct_tp),
        "haproxy": max(r["msg_per_s"] for r in lb_tp),
    }
    return {
        "direct_p50_ms": best["direct"]["p50_ms"],
        "haproxy_p50_ms": best["haproxy"]["p50_ms"],
        "direct_p99_ms": best["direct"]["p99_ms"],
        "haproxy_p99_ms": best["haproxy"]["p99_ms"],
        "added_p50_ms": round(best["haproxy"]["p50_ms"] - best["direct"]["p50_ms"], 2),
        "direct_msg_per_s": rate["direct"],
        "haproxy_msg_per_s": rate["haproxy"],
        "throughput_ratio": round(rate["haproxy"] / rate["direct"], 2),
        "lost": sum(r["lost"] for r in direct_tp + lb_tp),
        "duplicates": sum(r["duplicates"] for r in direct_tp + lb_tp),
    }
