"""The console agent: a resident, pre-imported console that runs headless verbs for scripts.

A script that calls ``console --headless show …`` in a loop pays, on every call, for the
interpreter's start-up and for importing the verb's modules (tens of milliseconds each time, most
of the verb's wall time). ``console agent start`` starts one process per user and install that
has imported everything once; each later command line is handed to it over a Unix socket (with
the caller's stdin, stdout and stderr, working directory, environment and umask) and run in a
fresh ``fork`` of it, so a verb still runs in a process of its own, exactly as it would have from
the command line. Without an agent, or when it answers anything unexpected, the command line runs
in the calling process as always: the agent can only make a verb faster, never change it.

Modules: ``address`` (where the socket lives; imported by the launcher, so builtins only),
``client`` (the launcher's side), ``server`` (the agent), ``control`` (start, stop, status).
"""
