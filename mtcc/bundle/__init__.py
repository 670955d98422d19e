"""The bundle format: what the compile side (mtcc.packing) writes and the run side
(mtcc.runtime) reads -- the only thing the two sides share.

    container  one uncompressed tar, fixed member order, manifest with the sha256 of
               every member, integrity and CPU checks before anything is loaded
    plan       the call plan (calls, buffers, weights) as plain data
See docs/bundle-format.md.
"""
