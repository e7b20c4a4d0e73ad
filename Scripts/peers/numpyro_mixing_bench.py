#!/usr/bin/env python3
"""NumPyro's NUTS with window adaptation on the density ProbeFarm's mixing benchmark samples.

Reads the problem ProbeFarm wrote (mixing-problem-D.json: w, b, t, f, a of
G(x) = (w.x + b - t)^2 + sum_i f_i (x_i - a_i)^2, log p = -G), runs NumPyro NUTS (diagonal
mass matrix, Stan-style windowed warm-up, the same chains, warm-up and draws) in float64 on
one core, and prints ESS per gradient evaluation and ESS/s, every ESS from ArviZ. With
--probefarm it also reads ProbeFarm's draws and row (probefarm-bench mixing --json) and
prints the two side by side, ESS computed by ArviZ on both.

Peer only: never part of ProbeFarm's runtime. Run under `taskset -c 0` (Scripts/bench.sh mixing).
"""
import argparse
import json
import os
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC, NUTS

jax.config.update("jax_enable_x64", True)


def min_ess(draws):
    """min over coordinates of bulk and tail ESS; draws (chains, draws, d)."""
    ds = az.convert_to_dataset(np.asarray(draws))
    bulk = float(az.ess(ds, method="bulk").to_array().min())
    tail = float(az.ess(ds, method="tail").to_array().min())
    return bulk, tail


def run(problem, chains, warmup, draws, method):
    w, f, a = (jnp.asarray(problem[k]) for k in ("w", "f", "a"))
    b, t = problem["b"], problem["t"]

    def potential(x):
        r = jnp.dot(w, x) + b - t
        return r * r + jnp.sum(f * (x - a) ** 2)

    def mcmc():
        kernel = NUTS(potential_fn=potential, dense_mass=False, target_accept_prob=0.8, max_tree_depth=10)
        return MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains, chain_method=method,
                    progress_bar=False)

    d = problem["dimension"]
    init = jnp.asarray(np.random.default_rng(1).normal(size=(chains, d)))
    # Draws and gradient counts: warm-up and sampling as separate phases (first call compiles).
    counted = mcmc()
    t0 = time.perf_counter()
    counted.warmup(jax.random.PRNGKey(0), init_params=init, extra_fields=("num_steps",), collect_warmup=True)
    warm_steps = int(np.asarray(counted.get_extra_fields(group_by_chain=True)["num_steps"]).sum())
    counted.run(counted.post_warmup_state.rng_key, extra_fields=("num_steps",))
    x = np.asarray(counted.get_samples(group_by_chain=True))
    first = time.perf_counter() - t0
    steps = warm_steps + int(np.asarray(counted.get_extra_fields(group_by_chain=True)["num_steps"]).sum())
    # The time compared: warm-up and sampling in one call, the second call of an MCMC object
    # (its compiled code reused).
    timed = mcmc()
    timed.run(jax.random.PRNGKey(0), init_params=init)
    t0 = time.perf_counter()
    timed.run(jax.random.PRNGKey(0), init_params=init)
    jax.block_until_ready(timed.get_samples())
    seconds = time.perf_counter() - t0
    return x, steps, seconds, first


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dir", required=True, help="where probefarm-bench mixing wrote its problems and draws")
    p.add_argument("--dimensions", default="20,100")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--methods", default="vectorized,sequential")
    p.add_argument("--probefarm", help="ProbeFarm's rows (probefarm-bench mixing --json)")
    args = p.parse_args()
    ours = {r["dimension"]: r for r in json.load(open(args.probefarm))} if args.probefarm else {}
    print(f"jax {jax.__version__}, devices {jax.devices()}")
    table = []
    for d in map(int, args.dimensions.split(",")):
        problem = json.load(open(os.path.join(args.dir, f"mixing-problem-{d}.json")))
        for method in args.methods.split(","):
            x, steps, seconds, first = run(problem, args.chains, args.warmup, args.draws, method)
            bulk, tail = min_ess(x)
            ess = min(bulk, tail)
            print(f"numpyro {method:10s} d={d:3d}  {seconds:7.2f} s (first run with compile {first:.1f} s)  {steps:8d} gradients"
                  f"  min ESS bulk {bulk:7.1f} tail {tail:7.1f}  ESS/gradient {ess / steps:.4f}  ESS/s {ess / seconds:8.1f}")
            table.append((d, f"NumPyro NUTS ({method})", ess, steps, seconds))
        if d in ours:
            r = ours[d]
            bulk, tail = min_ess(np.load(r["drawsFile"]))
            table.append((d, "ProbeFarm NUTS", min(bulk, tail), r["gradientEvaluations"], r["seconds"]))
    print("\n| d | sampler | min ESS (bulk, tail) | gradients | ESS/gradient | s | ESS/s |")
    print("|---|---|---|---|---|---|---|")
    for d, name, ess, steps, seconds in table:
        print(f"| {d} | {name} | {ess:.0f} | {steps} | {ess / steps:.5f} | {seconds:.2f} | {ess / seconds:.0f} |")
    for d in sorted({row[0] for row in table}):
        rows = [row for row in table if row[0] == d]
        pf = [row for row in rows if row[1].startswith("ProbeFarm")]
        peers = [row for row in rows if not row[1].startswith("ProbeFarm")]
        if pf and peers:
            best_g = max(peers, key=lambda r: r[2] / r[3])
            best_s = max(peers, key=lambda r: r[2] / r[4])
            print(f"d={d}: ProbeFarm/NumPyro ESS per gradient {pf[0][2] / pf[0][3] / (best_g[2] / best_g[3]):.2f}x"
                  f" (vs {best_g[1]}), ESS/s {pf[0][2] / pf[0][4] / (best_s[2] / best_s[4]):.2f}x (vs {best_s[1]})")


if __name__ == "__main__":
    main()
