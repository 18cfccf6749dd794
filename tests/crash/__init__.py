"""The crash-safety test (issue 6): the real engine killed with -9 at every point of the trade
lifecycle, again and again, over a chain, a database and a Redis that outlive it; then the
database and the chain are read directly and must agree."""
