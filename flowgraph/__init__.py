"""flowgraph: loan fund flow-back detection on time-ordered transfer graphs."""

__version__ = "0.1.0"
