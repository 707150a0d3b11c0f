"""Imported first by the worker server (:func:`scai.worker_start.start_worker_server` lists it
before the workers' modules), and only there: the server ends with the program that started it.

The server is the program's child, started by ``exec``; it spends its first seconds importing
torch, Pyro and ArviZ for the workers. If the program is killed then, the server would import
on for those seconds before it noticed (its "alive" pipe closes, read only once it serves). So
before anything heavy, it asks the kernel for the parent-death signal and exits on it if its
parent is gone (:func:`scai.worker_start.die_with_parent`). No thread: the server must hold
none when it forks a worker.
"""

from scai.worker_start import die_with_parent

die_with_parent()
