"""Imported last by the worker server (:func:`scai.worker_start.start_worker_server` lists it
after the workers' modules), and only there: what the server imported is frozen, then cyclic
garbage collection, off while it imported (:mod:`scai.worker_start_server`), is on again.

Frozen (``gc.freeze``), the ~300,000 objects of those imports are never walked by a
collection: not by the server's, and not by its workers', which inherit them. Walked, every full
collection in a worker cost CPU and wrote to those objects' pages, each write copying a page
the worker still shared with the server. The little garbage the imports left (~7,000
objects) is frozen with them and never freed: a collection first would delay the first
worker by ~0.1 s.
"""

import gc

gc.freeze()
gc.enable()
