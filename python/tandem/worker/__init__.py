"""The worker that hosts one Python environment for a Tandem server.

Modules, by job: ``protocol`` (the framing), ``spaces`` (spaces, observations
and actions in the protocol's form), ``values`` (infos and keyboard mappings
reduced to JSON), ``hosting`` (making and driving environments from the three
sources) and ``main`` (the command line and the request loop). Nothing is
imported here, so that ``python -m tandem.worker --stdio`` can redirect its
standard output before any library that might print is loaded.
"""
