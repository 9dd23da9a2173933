"""Labelled case types, one function each, listed in :mod:`flowgraph.synthetic.cases.registry`."""
