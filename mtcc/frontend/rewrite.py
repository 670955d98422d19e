"""Running a Relax expression rewriter (a PyExprMutator) over a module's main."""
from __future__ import annotations


def rewrite_main(mod, rewriter, found: list):
    """`mod` with main as `rewriter` (made over `mod`) rewrites it, or `mod` itself when
    the visit left `found` empty: the very same module, so a model the rewrite does not
    touch lowers, and keys its tuning records, exactly as before."""
    main = rewriter.visit_expr(mod["main"])
    if not found:
        return mod
    out = rewriter.builder_.get()
    out["main"] = main
    return out
