"""Tuning: MetaSchedule's search over every task of a model, into a schedules folder.

    driver    `mtcc tune`: tasks -> tune contexts -> MetaSchedule (XGBoost cost model,
              gradient task scheduler), progress, tune.json, RPC measurement
    database  the schedules folder's files: repair, read-only views, line reader
    refine    which tasks a second search goes back to (`--refine K`)
    builder   WarmBuilder: MetaSchedule builder with warm worker processes
    compile   one build path (untuned or with a database's best records) and a VM session
"""
