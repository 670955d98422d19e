#!/usr/bin/env python3
"""A/B on the real server: model-fcfs against block-adaptive with and without the block
rule's "keep a core for a tighter model" (policies.KEEP_CORE_FOR_TIGHTER), on the light
mix's x86-64-v3 bundles, two targets (2x@all, 4x@1c) and two rates, rounds interleaved.
Prints one JSON line per trial (worst model's share within target, per-model share and
p99, conflict rate) and the vCPU-sharing readings.  A benchmark: it asserts nothing.

Usage: benchmarks/policy_ab.py   (needs build/squeezenet-x86-64-v3.mtcc and
       build/transformer-x86-64-v3.mtcc: `mtcc bench --mix light` packs them)
"""
import json
import mtcc
from mtcc.runtime import policies
from mtcc.bench.baselines import random_feeds
from mtcc.bench.qos import trial, trial_length, parse_target
from mtcc.interference import machine
B={"squeezenet":"build/squeezenet-x86-64-v3.mtcc","transformer":"build/transformer-x86-64-v3.mtcc"}
states=[machine.vcpu_sharing().get("state")]
systems={"model-fcfs":("model-fcfs",True),"block-adaptive old":("block-adaptive",False),"block-adaptive new":("block-adaptive",True)}
servers={k: mtcc.Server(B, policy=p) for k,(p,_) in systems.items()}
first=servers["model-fcfs"]
iso={n: m.isolated_by_cores for n,m in first.models.items()}
targets={t: {n: parse_target(t).ms(iso[n], 2) for n in B} for t in ("2","4@1")}
feeds={n: random_feeds(m.profile.inputs) for n,m in first.models.items()}
print(iso, targets, flush=True)
out=[]
for rnd in range(2):
    for t,qos in targets.items():
        for rate in (4.0, 15.0):
            for k,(pol,keep) in systems.items():
                policies.KEEP_CORE_FOR_TIGHTER=keep
                s=servers[k]; s.set_qos(qos)
                r=trial(s, list(B), rate, trial_length(rate, 4.0, 100), 100*rnd+int(rate), feeds, qos)
                row={"round":rnd,"qos":t,"rate":rate,"system":k,"share":r["share"],"conflicts":r["conflict_rate"],
                     "models":{n:(v["within_qos"],v["p99_ms"]) for n,v in r["models"].items()}}
                out.append(row); print(json.dumps(row), flush=True)
        states.append(machine.vcpu_sharing().get("state"))
for s in servers.values(): s.close()
states.append(machine.vcpu_sharing().get("state"))
print("vcpu", states)
