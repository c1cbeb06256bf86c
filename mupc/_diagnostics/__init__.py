"""Diagnostics of inference and learning: the activity Hessian, the coordinate check and the
closed-form theory of linear networks (callable from Python; `mupc diagnose` draws them)."""
