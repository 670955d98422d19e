"""The run side: verified bundles loaded and executed.  Imports the compile side only
through the bundle format (mtcc.bundle).

    loader    mtcc.load: verify, load the library, LoadedBundle (run, select variants)
    executor  PlanExecutor: the call plan run call by call, any range, any variant
"""
