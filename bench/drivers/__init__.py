"""One adapter per library, all with the interface of :class:`bench.drivers.base.Driver`.

Every module here runs in its library's own environment (``python -m bench.drivers.<name>``):
it may import the standard library, ``bench.drivers.base``, ``bench.drivers.tasks``,
``bench.scenarios`` and its own library, nothing else.
"""
