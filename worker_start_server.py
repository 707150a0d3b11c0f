"""Imported first by the worker server (:func:`scai.worker_start.start_worker_server` lists it
before the workers' modules), and only there: the server ends with the program that started it.

The server is the program's child, started by ``exec``; it spends its first seconds importing
torch, Pyro and ArviZ for the workers. If the program is killed then, the server would import
on for those seconds before it noticed (its "alive" pipe closes, read only once it serves). So
before anything heavy, it asks the kernel for the parent-death signal and exits on it if its
parent is gone (:func:`scai.worker_start.die_with_parent`). No thread: the server must hold
none when it forks a worker.

Ctrl-C is the program's to handle: a terminal sends it to the whole process group, server
included, and the server is exec'd with Python's default handler whatever mask its parent
held, so a Ctrl-C while it imports would raise KeyboardInterrupt in the middle of an import
and kill it (the program would see a dead server). So it ignores Ctrl-C from here on
(multiprocessing's own loop then ignores it too, and the workers it forks start ignoring it:
:func:`scai.worker_start.start_worker`).
"""

import gc
import signal
import warnings

from scai.worker_start import die_with_parent

# No cyclic garbage collection while the server imports the workers' modules: the collections
# those imports trigger cost ~0.3 s of CPU before the first worker can start, and free little.
# The server's last import, scai.worker_start_ready, freezes what was imported and turns
# collection back on.
gc.disable()
signal.signal(signal.SIGINT, signal.SIG_IGN)
die_with_parent()
# ArviZ announces its 1.0 refactor on import; the program hides it (scai.experiments.cli), and
# the server, which imports ArviZ for the workers, printed it to the terminal the program shares.
warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
